import { KObject } from '../kernel/object.js';
import { SOCK_STREAM } from './unix-sockets.js';

/** include/net/tcp_states.h, by number. */
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

/** An AF_INET/AF_INET6 socket as `ss` would summarize it. */
export interface InetSocket {
  proto: 'TCP' | 'UDP';
  /** TCP_* state name, or its number when unknown. */
  state: string;
}

/** The inet socket behind a struct file of a socket. */
export function inetSocket(file: KObject): InetSocket {
  const sk = KObject.struct(file.prog, 'socket', file.member('private_data').value()).member('sk').deref();
  const state = sk.member('__sk_common.skc_state').num();
  return { proto: sk.member('sk_type').num() === SOCK_STREAM ? 'TCP' : 'UDP', state: TCP_STATES[state] ?? String(state) };
}

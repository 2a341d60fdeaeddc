import { AF_INET6, InetSocket, TCP_CLOSE, TCP_LISTEN, inetSocket } from '../../linux/inet-sockets.js';
import { REPAIRED_STATES } from '../../linux/tcp-half-closed.js';
import { openFileState } from '../../linux/open-file.js';
import { tcpStream } from './tcp-stream.js';
import { FdDumped, FdDumper, FdToDump, fdProblem } from './fd-dumper.js';
import { socketNsId } from './socket-netns.js';
import { DumpProblem } from '../problem.js';

/** "TCP socket in state LISTEN 127.0.0.1:80": how problems name a socket. */
function describe(sk: InetSocket): string {
  const addr = (words: number[], port: number) => {
    const b = Buffer.alloc(words.length * 4);
    words.forEach((w, i) => b.writeUInt32LE(w, i * 4));
    if (words.length === 1) return `${[...b].join('.')}:${port}`;
    const groups = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16));
    return `[${groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::')}]:${port}`;
  };
  const peer = sk.dstPort ? ` -> ${addr(sk.dstAddr, sk.dstPort)}` : '';
  return `${sk.proto} socket in state ${sk.stateName} ${addr(sk.srcAddr, sk.srcPort)}${peer}`;
}

/** What CRIU 3.17 refuses to dump, or would refuse to restore, of an inet socket (can_dump_inet_sk and the option readers). */
function refusals(sk: InetSocket, fd: FdToDump, tcpClose: boolean, tcpEstablished: boolean): DumpProblem[] {
  const name = describe(sk);
  const out: string[] = [];
  if (sk.proto !== 'TCP' && sk.proto !== 'UDP') out.push(`${name}: only TCP and UDP sockets are supported (raw sockets are not)`);
  else if (sk.proto === 'TCP' && sk.state === TCP_LISTEN && sk.receiveQueued) out.push(`${name} has ${sk.receiveQueued} connections not yet accepted`);
  // criu/sk-inet.c can_dump_inet_sk takes as connected exactly the states soccr repairs.
  else if (sk.proto === 'TCP' && REPAIRED_STATES.has(sk.state) && !tcpClose && !tcpEstablished) {
    out.push(`${name}: a connected TCP socket needs --tcp-close (restore closes it) or --tcp-established (restore repairs it; the tree must not run on)`);
  } else if (sk.proto === 'TCP' && sk.state !== TCP_LISTEN && sk.state !== TCP_CLOSE && !REPAIRED_STATES.has(sk.state)) out.push(`${name}: unknown state`);
  if (sk.corked) out.push(`${name} is corked (UDP_CORK)`);
  if (sk.extras.filter) out.push(`${name} has a socket filter attached (not supported)`);
  if (sk.extras.boundDevIf) out.push(`${name} is bound to interface ${sk.extras.boundDevIf} (SO_BINDTODEVICE is not supported)`);
  // CRIU binds a link-local IPv6 address with the device it names (ifname); ovmigrate does not look that name up.
  if (sk.family === AF_INET6 && sk.srcPort && needsScopeId(sk.srcAddr)) out.push(`${name}: a link-local address needs its interface (not supported)`);
  return out.map((d) => fdProblem(fd, d));
}

/** criu/sk-inet.c needs_scope_id: a link-local address, fe80::/10 (its multicast test masks with 0xFF00000 and never matches). */
function needsScopeId(words: number[]): boolean {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(words[0]);
  return b[0] === 0xfe && (b[1] & 0xc0) === 0x80;
}

/**
 * TCP and UDP sockets, v4 and v6 (criu/sk-inet.c do_dump_one_inet_fd): the
 * inet_sk_entry CRIU writes from sock_diag and getsockopt. A connected TCP
 * socket, ESTABLISHED, SYN_SENT or half-closed (its state and shutdown as they are), is
 * written as CRIU does with --tcp-close (no tcp-stream image; restore creates
 * the socket and shuts it down) or with --tcp-established (the same entry and
 * a tcp-stream image: restore repairs the connection, FINs included);
 * listening and bound sockets restore as they were.
 */
export const inetSocketFd: FdDumper = {
  kinds: ['inet-socket'],
  dump(files, fd): FdDumped {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'INETSK' } };
    const sk = inetSocket(fd.file);
    const problems = refusals(sk, fd, files.tcpClose, files.tcpEstablished);
    const ns = socketNsId(files, fd, sk.net, sk.hashed);
    if (ns.problem) problems.push(ns.problem);
    // criu/sk-tcp.c dump_one_tcp: --tcp-close wins; a connection (dst_port set) gets its tcp-stream image.
    if (!problems.length && files.tcpEstablished && !files.tcpClose && sk.proto === 'TCP' && sk.dstPort) {
      const problem = tcpStream(files, fd, sk, describe(sk));
      if (problem) problems.push(problem);
    }
    if (problems.length) return { problems };
    const tcp = sk.proto === 'TCP';
    const isk: Record<string, unknown> = {
      id,
      ino: sk.ino,
      family: sk.family,
      type: sk.type,
      proto: sk.protocol,
      state: sk.state,
      src_port: sk.srcPort,
      dst_port: sk.dstPort,
      flags: openFileState(fd.file).flags,
      backlog: sk.backlog,
      src_addr: sk.srcAddr,
      dst_addr: sk.dstAddr,
      fown: files.fown(fd.file),
      opts: sk.opts,
      ...(sk.v6only !== undefined ? { v6only: sk.v6only } : {}),
      ip_opts: sk.freebind ? { freebind: true } : {},
      ...(ns.ns_id !== undefined ? { ns_id: ns.ns_id } : {}),
      // CRIU records TCP's shutdown only when set, UDP's always through sk_encode_shutdown (both skip NONE).
      ...(sk.shutdown && (tcp || sk.proto === 'UDP') ? { shutdown: sk.shutdown } : {}),
    };
    files.entries.push({ type: 'INETSK', id, isk });
    return { opened: { id, type: 'INETSK' } };
  },
};

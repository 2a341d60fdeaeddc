import fs from 'node:fs';
import net from 'node:net';
import { QmpClient } from '../../introspect/qemu/qmp.js';

/**
 * How the proxy fails: `refuse` closes every connection at once; `stop`
 * and `cont` answer that command with a QMP error (once, for cont: a VM
 * left stopped then is the backend's to resume); `pass` fails nothing
 * (the hooks do the harm).
 */
export type QmpFault = 'refuse' | 'stop' | 'cont' | 'pass';

/** Run inside the proxy, synchronously, while the VM is stopped by the client. */
export interface QmpHooks {
  /** Once QEMU has answered the client's stop, before the client hears it. */
  afterStop?: () => void;
  /** Before a client's cont reaches QEMU. */
  beforeCont?: () => void;
}

/**
 * A QMP socket in front of a VM's real one, for a backend to be given
 * instead: everything passes through but the fault. Commands are JSON
 * lines from the client; the one faulted is answered here with its id.
 */
export class QmpFaultProxy {
  private readonly server: net.Server;
  private readonly conns = new Set<net.Socket>();
  /** Commands answered with an injected error. */
  injected = 0;

  private constructor(readonly socket: string, private readonly target: string, private readonly fault: QmpFault, private readonly hooks: QmpHooks) {
    this.server = net.createServer((client) => this.serve(client));
  }

  static async start(socket: string, target: string, fault: QmpFault, hooks: QmpHooks = {}): Promise<QmpFaultProxy> {
    fs.rmSync(socket, { force: true });
    const proxy = new QmpFaultProxy(socket, target, fault, hooks);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(socket, resolve);
    });
    return proxy;
  }

  private serve(client: net.Socket): void {
    this.conns.add(client);
    client.on('close', () => this.conns.delete(client));
    client.on('error', () => undefined);
    if (this.fault === 'refuse') {
      client.destroy();
      return;
    }
    const upstream = net.createConnection(this.target);
    this.conns.add(upstream);
    upstream.on('close', () => { this.conns.delete(upstream); client.destroy(); });
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    /** Ids of the client's stop commands QEMU has not answered yet. */
    const stops = new Set<unknown>();
    if (this.hooks.afterStop) {
      let fromQemu = '';
      upstream.setEncoding('utf8').on('data', (chunk: string) => {
        fromQemu += chunk;
        let nl: number;
        while ((nl = fromQemu.indexOf('\n')) >= 0) {
          const line = fromQemu.slice(0, nl + 1);
          fromQemu = fromQemu.slice(nl + 1);
          let reply: { id?: unknown; return?: unknown } = {};
          try {
            reply = JSON.parse(line) as typeof reply;
          } catch {
            // Passed on as it is.
          }
          if (reply.id !== undefined && stops.delete(reply.id) && reply.return !== undefined) {
            this.injected++;
            this.hooks.afterStop!();
          }
          client.write(line);
        }
      });
    } else {
      upstream.pipe(client);
    }
    let buffer = '';
    client.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl + 1);
        buffer = buffer.slice(nl + 1);
        let msg: { execute?: string; id?: unknown } = {};
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          // Passed on as it is: QEMU answers it.
        }
        if (msg.execute === this.fault && !(this.fault === 'cont' && this.injected > 0)) {
          this.injected++;
          client.write(JSON.stringify({ error: { class: 'GenericError', desc: `injected fault: ${this.fault} refused` }, id: msg.id }) + '\n');
        } else {
          if (msg.execute === 'stop') stops.add(msg.id);
          if (msg.execute === 'cont') this.hooks.beforeCont?.();
          upstream.write(line);
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socket, { force: true });
  }
}

/** The VM's run state as QEMU reports it (query-status), over its real QMP socket. */
export async function vmStatus(qmpSocket: string): Promise<{ running: boolean; status: string }> {
  const qmp = await QmpClient.connect(qmpSocket);
  try {
    return await qmp.execute<{ running: boolean; status: string }>('query-status');
  } finally {
    qmp.close();
  }
}

/** Resumes a VM a fault left stopped (so that later cases find it running); what it found. */
export async function contIfStopped(qmpSocket: string): Promise<string> {
  const qmp = await QmpClient.connect(qmpSocket);
  try {
    const { status, running } = await qmp.execute<{ running: boolean; status: string }>('query-status');
    if (!running) await qmp.execute('cont');
    return status;
  } finally {
    qmp.close();
  }
}

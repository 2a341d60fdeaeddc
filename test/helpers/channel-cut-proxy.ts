import fs from 'node:fs';
import net from 'node:net';

/**
 * A socket in front of a VM's channel chardev (QEMU's server socket), for
 * a backend to be given instead: bytes pass both ways until cut() closes
 * both sides, which is what the guest and the backend see when the host's
 * end of the channel goes away. It keeps listening, so the backend
 * connects again as it would to QEMU.
 */
export class ChannelCutProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Connections made through the proxy, and how many cut() closed. */
  connections = 0;
  cuts = 0;

  private constructor(readonly socket: string, private readonly target: string) {
    this.server = net.createServer((backend) => this.join(backend));
  }

  static async start(socket: string, target: string): Promise<ChannelCutProxy> {
    fs.rmSync(socket, { force: true });
    const proxy = new ChannelCutProxy(socket, target);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(socket, resolve);
    });
    return proxy;
  }

  private join(backend: net.Socket): void {
    const qemu = net.createConnection(this.target);
    const pair: [net.Socket, net.Socket] = [backend, qemu];
    this.pairs.add(pair);
    this.connections++;
    const end = () => {
      this.pairs.delete(pair);
      backend.destroy();
      qemu.destroy();
    };
    for (const s of pair) {
      s.on('error', end);
      s.on('close', end);
    }
    backend.pipe(qemu);
    qemu.pipe(backend);
  }

  /** Closes every connection through the proxy, both sides; how many there were. */
  cut(): number {
    const n = this.pairs.size;
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.cuts += n;
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socket, { force: true });
  }
}

/**
 * The keeper: one host process per lab guest. It owns the QEMU process,
 * holds the guest's control port (a QEMU chardev takes one connection) and
 * lets any number of `lab exec` clients share it over a unix socket. When
 * QEMU ends, or the keeper is told to stop, it removes the guest's files.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { Frame, FrameDecoder, FrameType, encodeFrame, encodeJson } from './wire.js';
import { layoutFromMtree } from '../../introspect/memory/physical-memory.js';
import { QmpClient } from '../../introspect/qemu/qmp.js';
import { RAM_BLOCK, removeVmDescription, writeVmDescription } from '../../introspect/vm/index.js';
import { GuestSpec, GuestState, encodeLayout, writeState } from './guest.js';
import { GuestPaths, guestPaths } from './paths.js';
import { rootVirtiofsdCommand, virtiofsdCommand } from './qemu-args.js';
import { NodeBackendOptions, startNodeBackend } from './kubernetes/node-backend.js';

export interface KeeperOptions {
  spec: GuestSpec;
  qemu: string;
  args: string[];
  kernel: string;
  /** `ovmigrate serve` for this guest (a Kubernetes node), for as long as it runs. */
  backend?: NodeBackendOptions;
}

/** What the keeper reports on its stdout once, to the `lab up` that started it. */
export type KeeperReport = { ok: true; state: GuestState } | { ok: false; error: string };

interface Client {
  socket: net.Socket;
  sessions: Map<number, number>;
}

export class Keeper {
  private readonly paths: GuestPaths;
  private qemu?: ChildProcess;
  private readonly virtiofsd: ChildProcess[] = [];
  private backend?: ChildProcess;
  private control?: net.Socket;
  private server?: net.Server;
  private nextSession = 1;
  /** Guest session id -> the client and its own session id. */
  private readonly routes = new Map<number, { client: Client; local: number }>();
  private stopping = false;
  private failure?: string;
  private ready = false;

  constructor(private readonly opts: KeeperOptions, private readonly report: (r: KeeperReport) => void) {
    this.paths = guestPaths(opts.spec.name);
  }

  async start(): Promise<void> {
    const deadline = Date.now() + this.opts.spec.bootTimeoutMs;
    try {
      const log = fs.openSync(this.paths.keeperLog, 'a');
      const virtiofs = (this.opts.spec.virtiofs ?? []).map((dir, i) => ({ socket: this.paths.virtiofs(i), ...virtiofsdCommand(dir, this.paths.virtiofs(i)) }));
      if (this.opts.spec.rootShare === 'virtiofs') virtiofs.push({ socket: this.paths.rootVirtiofs, ...rootVirtiofsdCommand(this.paths.rootVirtiofs) });
      // QEMU connects to each virtiofsd's socket as it starts: they listen first.
      for (const d of virtiofs) this.virtiofsd.push(spawn(d.command, d.args, { stdio: ['ignore', log, log] }));
      try {
        await waitFor(() => virtiofs.every((v) => fs.existsSync(v.socket)), deadline, 'virtiofsd sockets');
        this.qemu = spawn(this.opts.qemu, this.opts.args, { stdio: ['ignore', log, log] });
      } finally {
        fs.closeSync(log);
      }
      this.qemu.on('exit', (code, signal) => this.onQemuExit(code, signal));
      await waitFor(() => fs.existsSync(this.paths.qmp) && fs.existsSync(this.paths.control), deadline, 'QEMU sockets');
      const layout = await this.readLayout();
      await this.connectControl(deadline);
      this.server = await this.listen();
      const state: GuestState = {
        ...this.opts.spec,
        qemuPid: this.qemu.pid!,
        keeperPid: process.pid,
        memoryFile: this.paths.memory,
        qmpSocket: this.paths.qmp,
        channelSocket: this.paths.channel,
        execSocket: this.paths.exec,
        console: this.paths.console,
        kernel: this.opts.kernel,
        layout: encodeLayout(layout),
        startedAt: new Date().toISOString(),
      };
      writeState(state);
      // How the product's `--vm NAME` finds this guest.
      writeVmDescription({
        name: state.name, memoryFile: state.memoryFile, ramLayout: layout,
        qmpSocket: state.qmpSocket, channelSocket: state.channelSocket, shares: [...state.shares, ...(state.virtiofs ?? [])],
      });
      if (this.opts.backend) this.backend = startNodeBackend(state.name, this.opts.backend);
      this.ready = true;
      this.report({ ok: true, state });
    } catch (err) {
      // Reported once QEMU is gone and the files are removed, so `lab up` fails with nothing left behind.
      this.failure = `${errorMessage(err)}\n--- console tail ---\n${consoleTail(this.paths.console)}`;
      this.stop();
    }
  }

  /** Stops QEMU; cleanup follows its exit. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.qemu || this.qemu.exitCode !== null || this.qemu.signalCode !== null) return this.cleanup();
    this.qemu.kill('SIGTERM');
    setTimeout(() => this.qemu?.kill('SIGKILL'), 5000).unref();
  }

  private async readLayout() {
    const qmp = await QmpClient.connect(this.paths.qmp);
    try {
      return layoutFromMtree(await qmp.hmp('info mtree -f'), RAM_BLOCK);
    } finally {
      qmp.close();
    }
  }

  private async connectControl(deadline: number): Promise<void> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(this.paths.control, () => resolve(s));
      s.once('error', reject);
    });
    this.control = socket;
    const decoder = new FrameDecoder();
    let ready: (() => void) | undefined;
    const readyPromise = new Promise<void>((resolve) => { ready = resolve; });
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        log.error(`control channel of ${this.opts.spec.name}: ${errorMessage(err)}`);
        this.stop();
        return;
      }
      for (const frame of frames) {
        if (frame.type === FrameType.Pong) {
          if (frame.session === 0 && !ready) this.failAll('the guest agent restarted');
          ready?.();
          ready = undefined;
        } else {
          this.toClient(frame);
        }
      }
    });
    socket.on('error', (err) => log.error(`control channel of ${this.opts.spec.name}: ${err.message}`));
    socket.on('close', () => this.stop());
    // The agent answers once node has started in the guest; pings sent earlier are lost or queued.
    const ping = setInterval(() => socket.write(encodeFrame(FrameType.Ping, 1)), 500);
    try {
      await Promise.race([readyPromise, sleep(deadline - Date.now()).then(() => {
        throw new Error(`guest ${this.opts.spec.name} did not boot within ${this.opts.spec.bootTimeoutMs / 1000} s`);
      })]);
    } finally {
      clearInterval(ping);
    }
  }

  private listen(): Promise<net.Server> {
    const server = net.createServer((socket) => this.onClient(socket));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.paths.exec, () => resolve(server));
    });
  }

  private onClient(socket: net.Socket): void {
    const client: Client = { socket, sessions: new Map() };
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        let guestSession = client.sessions.get(frame.session);
        if (frame.type === FrameType.Exec) {
          guestSession = this.nextSession++;
          client.sessions.set(frame.session, guestSession);
          this.routes.set(guestSession, { client, local: frame.session });
        }
        if (guestSession !== undefined) this.control?.write(encodeFrame(frame.type, guestSession, frame.payload));
      }
    });
    const drop = () => {
      for (const guestSession of client.sessions.values()) {
        if (!this.routes.delete(guestSession)) continue;
        this.control?.write(encodeJson(FrameType.Kill, guestSession, { signal: 'SIGKILL' }));
      }
      client.sessions.clear();
    };
    socket.on('close', drop);
    socket.on('error', drop);
  }

  private toClient(frame: Frame): void {
    const route = this.routes.get(frame.session);
    if (!route) return;
    route.client.socket.write(encodeFrame(frame.type, route.local, frame.payload));
    if (frame.type === FrameType.Exit) {
      this.routes.delete(frame.session);
      route.client.sessions.delete(route.local);
    }
  }

  private failAll(reason: string): void {
    for (const [guestSession, route] of this.routes) {
      route.client.socket.write(encodeJson(FrameType.Exit, route.local, { code: null, signal: null, error: reason }));
      this.routes.delete(guestSession);
    }
  }

  private onQemuExit(code: number | null, signal: string | null): void {
    log.info(`QEMU of ${this.opts.spec.name} exited (code ${code}, signal ${signal})`);
    if (!this.ready && this.failure === undefined) {
      this.failure = `QEMU exited (code ${code}, signal ${signal}) while booting:\n${consoleTail(this.paths.keeperLog, 10)}` +
        `\n--- console tail ---\n${consoleTail(this.paths.console)}`;
    }
    this.failAll('the guest stopped');
    this.cleanup();
  }

  private cleanup(): void {
    if (this.backend && this.backend.exitCode === null && this.backend.signalCode === null) this.backend.kill('SIGTERM');
    for (const d of this.virtiofsd) if (d.exitCode === null && d.signalCode === null) d.kill('SIGTERM');
    this.server?.close();
    this.control?.destroy();
    removeVmDescription(this.opts.spec.name);
    fs.rmSync(this.paths.memory, { force: true });
    fs.rmSync(this.paths.dir, { recursive: true, force: true });
    if (this.failure !== undefined) this.report({ ok: false, error: this.failure });
    process.exit(0);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function waitFor(check: () => boolean, deadline: number, what: string): Promise<void> {
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function consoleTail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no console output)';
  }
}

/**
 * The lab's guest agent: runs commands for `lab exec` and streams
 * their output back over the virtio-serial port named `ovmigrate.ctl`.
 * Started by the guest's init from the checkout's dist/ (the guest sees the host root); test bench, not product.
 * It writes its few messages to the guest console with console.error rather
 * than winston: loading winston over the guest's 9p root costs 1-5 s of
 * every guest's boot.
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import {
  ExecExit, ExecRequest, Frame, FrameDecoder, FrameType, decodeJson, encodeData, encodeJson,
} from '../wire.js';
import { findVirtioPort } from '../../../shim/channel/virtio-port.js';

const PORT_NAME = 'ovmigrate.ctl';
const read = promisify(fs.read);

class Agent {
  private readonly sessions = new Map<number, ChildProcess>();
  private readonly out: fs.WriteStream;
  /** A virtio-serial port opens once (EBUSY after that): one fd serves both ways. */
  private readonly fd: number;

  constructor(device: string) {
    this.fd = fs.openSync(device, 'r+');
    this.out = fs.createWriteStream('', { fd: this.fd, autoClose: false, highWaterMark: 1 << 20 });
  }

  /** Reads the port forever; it reads as end-of-file while no host is connected, so retry then. */
  async run(): Promise<void> {
    const decoder = new FrameDecoder();
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const { bytesRead } = await read(this.fd, buf, 0, buf.length, null);
      if (bytesRead === 0) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      let frames: Frame[];
      try {
        frames = decoder.push(Buffer.from(buf.subarray(0, bytesRead)));
      } catch (err) {
        // A broken stream cannot be resynchronised; init starts a fresh agent and the host sees its hello.
        console.error(`lab-agent: ${(err as Error).message}; restarting`);
        process.exit(1);
      }
      for (const frame of frames) this.handle(frame);
    }
  }

  hello(): void {
    this.send(encodeJson(FrameType.Pong, 0, { release: os.release(), uptime: os.uptime() }));
  }

  private send(buf: Buffer): void {
    this.out.write(buf);
  }

  private handle(frame: Frame): void {
    switch (frame.type) {
      case FrameType.Ping:
        this.send(encodeJson(FrameType.Pong, frame.session, { release: os.release(), uptime: os.uptime() }));
        break;
      case FrameType.Exec:
        this.exec(frame.session, decodeJson<ExecRequest>(frame));
        break;
      case FrameType.Stdin:
        this.sessions.get(frame.session)?.stdin?.write(frame.payload);
        break;
      case FrameType.StdinEof:
        this.sessions.get(frame.session)?.stdin?.end();
        break;
      case FrameType.Kill: {
        const child = this.sessions.get(frame.session);
        const { signal } = decodeJson<{ signal: NodeJS.Signals }>(frame);
        if (child?.pid) killGroup(child.pid, signal);
        break;
      }
      default:
        console.error(`lab-agent: unexpected frame ${FrameType[frame.type]}`);
    }
  }

  private exec(session: number, req: ExecRequest): void {
    if (this.sessions.has(session)) return this.exit(session, { code: null, signal: null, error: `session ${session} is in use` });
    if (!Array.isArray(req.argv) || req.argv.length === 0) {
      return this.exit(session, { code: null, signal: null, error: 'empty command' });
    }
    let timedOut = false;
    const child = spawn(req.argv[0], req.argv.slice(1), {
      cwd: req.cwd ?? '/',
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', ...req.env },
      stdio: [req.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.sessions.set(session, child);
    const timer = req.timeoutMs
      ? setTimeout(() => { timedOut = true; if (child.pid) killGroup(child.pid, 'SIGKILL'); }, req.timeoutMs)
      : undefined;
    child.stdout!.on('data', (d: Buffer) => encodeData(FrameType.Stdout, session, d).forEach((f) => this.send(f)));
    child.stderr!.on('data', (d: Buffer) => encodeData(FrameType.Stderr, session, d).forEach((f) => this.send(f)));
    child.stdin?.on('error', () => undefined);
    let finished = false;
    const finish = (status: ExecExit): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      this.exit(session, status);
    };
    // A command that cannot start gets 'error' and, depending on the failure, maybe no 'close'.
    child.on('error', (err) => { if (child.pid === undefined) finish({ code: null, signal: null, error: err.message }); });
    child.on('close', (code, signal) => finish({ code, signal, timedOut }));
  }

  private exit(session: number, status: ExecExit): void {
    this.sessions.delete(session);
    this.send(encodeJson(FrameType.Exit, session, status));
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

const agent = new Agent(findVirtioPort(PORT_NAME));
// Unasked, so the host knows that sessions of an earlier agent are gone.
agent.hello();
agent.run().catch((err: Error) => {
  console.error(`lab-agent: reading ${PORT_NAME}: ${err.message}`);
  process.exit(1);
});
console.error(`lab-agent: serving on ${PORT_NAME}`);

import net from 'node:net';
import os from 'node:os';
import { Writable } from 'node:stream';
import { ExternalError, TimeoutError } from '../../common/errors.js';
import {
  ExecExit, ExecRequest, FrameDecoder, FrameType, decodeJson, encodeData, encodeFrame, encodeJson,
} from './wire.js';
import { requireGuest } from './lab.js';

export interface ExecOptions {
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
  stdin?: NodeJS.ReadableStream;
  stdout?: Writable;
  stderr?: Writable;
}

export interface ExecResult extends ExecExit {
  /** The exit code a shell would report: 128+N for signal N, 124 on timeout, 127 if it did not start. */
  exitCode: number;
}

/** Grace beyond the guest-side timeout before the host gives up on a silent guest. */
const HOST_GRACE_MS = 15_000;

/** Runs a command in a lab guest, streaming its output, and resolves with how it ended. */
export function exec(name: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const guest = requireGuest(name);
  const request: ExecRequest = { argv, env: opts.env, cwd: opts.cwd, timeoutMs: opts.timeoutMs, stdin: !!opts.stdin };
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(guest.execSocket);
    const decoder = new FrameDecoder();
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = opts.timeoutMs !== undefined
      ? setTimeout(() => settle(() => reject(new TimeoutError(`lab ${name}: ${argv[0]} gave no answer within ${opts.timeoutMs} ms`))),
        opts.timeoutMs + HOST_GRACE_MS)
      : undefined;
    socket.on('connect', () => {
      socket.write(encodeJson(FrameType.Exec, 1, request));
      if (opts.stdin) {
        opts.stdin.on('data', (d: Buffer | string) => encodeData(FrameType.Stdin, 1, Buffer.from(d)).forEach((f) => socket.write(f)));
        opts.stdin.on('end', () => socket.write(encodeFrame(FrameType.StdinEof, 1)));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.type === FrameType.Stdout) opts.stdout?.write(frame.payload);
          else if (frame.type === FrameType.Stderr) opts.stderr?.write(frame.payload);
          else if (frame.type === FrameType.Exit) {
            const exit = decodeJson<ExecExit>(frame);
            settle(() => resolve({ ...exit, exitCode: exitCode(exit) }));
          }
        }
      } catch (err) {
        settle(() => reject(err));
      }
    });
    socket.on('error', (err) => settle(() => reject(new ExternalError(`lab ${name}: ${err.message}`, { cause: err }))));
    socket.on('close', () => settle(() => reject(new ExternalError(`lab ${name}: connection to the guest closed before ${argv[0]} ended`))));
  });
}

function exitCode(exit: ExecExit): number {
  if (exit.timedOut) return 124;
  if (exit.code !== null) return exit.code;
  if (exit.signal) return 128 + (os.constants.signals[exit.signal as NodeJS.Signals] ?? 0);
  return 127;
}

/** Runs a command and collects its output: for tests and for host code that asks the guest something. */
export async function execCapture(name: string, argv: string[], opts: Omit<ExecOptions, 'stdout' | 'stderr'> = {}) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (into: Buffer[]) => new Writable({ write(chunk, _enc, cb) { into.push(chunk as Buffer); cb(); } });
  const result = await exec(name, argv, { ...opts, stdout: sink(out), stderr: sink(err) });
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

import assert from 'node:assert/strict';
import { ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExternalError } from '../../common/errors.js';
import { HELPER_SCRIPT, ProcessHelper } from '../../shim/subreaper/index.js';
import { missingComponent } from '../helpers/cli.js';
import { quietLogs } from './helpers/quiet-logs.js';

/**
 * The child subreaper.py runs (in production, the shim): its fd 3 (the
 * helper's answers and events) goes to its stdout, its stdin to fd 4 (the
 * requests), byte for byte. A stdin line starting with "!" is run by sh in
 * the background instead, so its processes are orphaned to the helper. It
 * exits 5 at the end of its stdin.
 */
const BRIDGE = `
const net = require('net'), cp = require('child_process');
new net.Socket({ fd: 3, readable: true, writable: false }).pipe(process.stdout);
const requests = new net.Socket({ fd: 4, readable: false, writable: true });
let buf = Buffer.alloc(0);
process.stdin.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  let i;
  while ((i = buf.indexOf(10)) >= 0) {
    const line = buf.subarray(0, i + 1);
    buf = buf.subarray(i + 1);
    if (line[0] === 33) cp.spawn('sh', ['-c', line.subarray(1, -1).toString() + ' &'], { stdio: 'ignore' });
    else requests.write(line);
  }
});
process.stdin.on('end', () => process.exit(5));
`;

/** Takes a pty's master to the helper's console socket as runc does, then works the slave side as told on stdin. */
const TERMINAL = `
import fcntl, os, pty, socket, struct, sys, termios
master, slave = pty.openpty()
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
socket.send_fds(c, [b"t"], [master])
c.close()
os.close(master)
os.write(slave, b"hello from the container")
print("typed:", os.read(slave, 100).decode().strip(), flush=True)
for line in sys.stdin:
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\\0" * 8))
    print("size:", cols, rows, flush=True)
`;

interface Helper {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
}

function startHelper(): Helper {
  const child = spawn('python3', [HELPER_SCRIPT, process.execPath, '-e', BRIDGE]);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return { child, stderr: () => stderr };
}

async function until<T>(what: string, get: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Reads a stream line by line. */
class Lines {
  private text = '';
  constructor(stream: NodeJS.ReadableStream) {
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (this.text += d));
  }

  async next(what = 'a line'): Promise<string> {
    return until(what, () => {
      const nl = this.text.indexOf('\n');
      if (nl < 0) return undefined;
      const line = this.text.slice(0, nl);
      this.text = this.text.slice(nl + 1);
      return line;
    });
  }

  get pending(): string {
    return this.text;
  }
}

const fdTarget = (pid: number, fd: number): string | undefined => {
  try {
    return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
};

describe('subreaper.py: the line protocol, against the real helper', function () {
  this.timeout(20_000);
  let dir: string;
  let helper: Helper;
  let answers: Lines;
  const send = (line: string | Buffer): void => void helper.child.stdin.write(Buffer.concat([Buffer.from(line), Buffer.from('\n')]));

  before(function () {
    try {
      execFileSync('python3', ['-c', 'import socket; socket.send_fds']);
    } catch {
      missingComponent(this, 'python3 (3.9 or later) is needed for the subreaper helper');
    }
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-subreaper-'));
    helper = startHelper();
    answers = new Lines(helper.child.stdout);
  });
  afterEach(() => {
    helper.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pipe: makes an anonymous pipe whose ends open through /proc; close: closes them there', async () => {
    send('pipe');
    const m = /^pipe (\d+) (\d+)$/.exec(await answers.next());
    assert.ok(m, 'pipe R W');
    const [r, w] = [Number(m[1]), Number(m[2])];
    const pid = helper.child.pid!;
    assert.match(fdTarget(pid, r)!, /^pipe:\[\d+\]$/);
    assert.equal(fdTarget(pid, r), fdTarget(pid, w), 'both ends of one pipe');
    const write = fs.openSync(`/proc/${pid}/fd/${w}`, fs.constants.O_WRONLY);
    const read = fs.openSync(`/proc/${pid}/fd/${r}`, fs.constants.O_RDONLY);
    fs.writeSync(write, 'through the pipe');
    const buf = Buffer.alloc(64);
    assert.equal(buf.subarray(0, fs.readSync(read, buf)).toString(), 'through the pipe');
    fs.closeSync(write);
    fs.closeSync(read);
    send(`close ${r} ${w}`);
    await until('the helper to close its ends', () => (fdTarget(pid, r) === undefined && fdTarget(pid, w) === undefined ? true : undefined));
  });

  it('console: listens, takes the terminal runc sends, copies it to and from the FIFOs; resize: sets its size', async () => {
    const socket = path.join(dir, 'console.sock');
    const stdin = path.join(dir, 'stdin');
    const stdout = path.join(dir, 'stdout');
    execFileSync('mkfifo', [stdin, stdout]);
    send(`console c1/init ${socket} ${stdin} ${stdout}`);
    assert.equal(await answers.next(), 'console c1/init listening');
    // The FIFOs as containerd holds them: it reads stdout and writes stdin.
    const out = new Lines(new net.Socket({ fd: fs.openSync(stdout, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), readable: true, writable: false }));
    const terminal = spawn('python3', ['-c', TERMINAL, socket]);
    const said = new Lines(terminal.stdout);
    assert.equal(await answers.next(), 'console c1/init ok');
    assert.ok(!fs.existsSync(socket), 'the socket is removed once runc has been');
    await until('the container\'s output in the stdout FIFO', () => (out.pending.includes('hello from the container') ? true : undefined));
    const input = fs.openSync(stdin, fs.constants.O_WRONLY);
    fs.writeSync(input, 'typed in\n');
    assert.equal(await said.next(), 'typed: typed in');
    send('resize c1/init 132 43');
    // The resize has no answer: ask the terminal until it sees the new size (the test's timeout guards a hang).
    for (let size = ''; size !== 'size: 132 43';) {
      terminal.stdin.write('\n');
      size = await said.next();
    }
    terminal.stdin.end();
    fs.closeSync(input);
  });

  it('console: answers error when the socket cannot be made, or runc sends no terminal', async () => {
    const taken = path.join(dir, 'taken');
    fs.writeFileSync(taken, '');
    send(`console k1 ${taken} - -`);
    assert.match(await answers.next(), /^console k1 error .*Address already in use/);
    const socket = path.join(dir, 'console.sock');
    send(`console k2 ${socket} - -`);
    assert.equal(await answers.next(), 'console k2 listening');
    net.createConnection(socket).end('no fd here');
    assert.equal(await answers.next(), 'console k2 error runc sent no terminal');
  });

  it('reports each orphaned process\'s exit: its code, or 128 + the signal', async () => {
    const pidFile = (n: string) => path.join(dir, n);
    send(`!sh -c 'echo $$ > ${pidFile('a')}; sleep 0.2; exit 7'`);
    send(`!sh -c 'echo $$ > ${pidFile('b')}; sleep 0.4; kill -TERM $$'`);
    // In either order: which exits first is the scheduler's business on a loaded machine.
    const got = [await answers.next(), await answers.next()].sort();
    const pid = (n: string) => Number(fs.readFileSync(pidFile(n), 'utf8').trim());
    assert.deepEqual(got, [`exit ${pid('a')} 7`, `exit ${pid('b')} ${128 + 15}`].sort());
  });

  it('logs a line it cannot take, answers nothing to it, and goes on', async () => {
    for (const bad of ['frobnicate', '', 'close nine', 'console only-a-key', 'resize no-such-console 80 24']) send(bad);
    send(Buffer.from([0xff, 0xfe, 0x20, 0x70]));
    send('pipe');
    assert.match(await answers.next(), /^pipe \d+ \d+$/, 'the first answer is the pipe\'s');
    const log = helper.stderr();
    // Python's repr of each line's bytes.
    for (const bad of ["b'frobnicate'", "b''", "b'close nine'", "b'console only-a-key'", "b'\\xff\\xfe p'"]) {
      assert.ok(log.includes(`subreaper: ${bad}: `), `${bad} logged in:\n${log}`);
    }
    assert.ok(!log.includes('no-such-console'), 'resizing a terminal that is gone is no error');
  });

  it('exits with its child\'s status', async () => {
    helper.child.stdin.end();
    const code = await new Promise((resolve) => helper.child.once('exit', resolve));
    assert.equal(code, 5);
  });
});

describe('ProcessHelper: the shim\'s side of the protocol, against the real helper', function () {
  this.timeout(20_000);
  quietLogs();
  let dir: string;
  let helper: Helper;
  let client: ProcessHelper;
  let gone: boolean;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-subreaper-'));
    helper = startHelper();
    gone = false;
    client = new ProcessHelper(helper.child.pid!, helper.child.stdout, helper.child.stdin, () => (gone = true));
  });
  afterEach(() => {
    helper.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('pipe() gives both ends as fds of this process and has the helper close its own', async () => {
    const pid = helper.child.pid!;
    // Once the helper answers, it has all the fds it keeps.
    const first = await client.pipe();
    const firstPipe = `pipe:[${fs.fstatSync(first.read).ino}]`;
    fs.closeSync(first.read);
    fs.closeSync(first.write);
    // Not a pause: until the helper holds no end of that pipe (its fds are then the ones it keeps).
    const links = () => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
      try {
        return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    await until('the helper to close its ends of the first pipe', () => (links().includes(firstPipe) ? undefined : true));
    const before = fs.readdirSync(`/proc/${pid}/fd`).sort().join(' ');
    const pipes = await Promise.all([client.pipe(), client.pipe()]);
    for (const [i, p] of pipes.entries()) {
      fs.writeSync(p.write, `pipe ${i}`);
      const buf = Buffer.alloc(16);
      assert.equal(buf.subarray(0, fs.readSync(p.read, buf)).toString(), `pipe ${i}`);
      fs.closeSync(p.read);
      fs.closeSync(p.write);
    }
    await until('the helper to close its ends', () => (fs.readdirSync(`/proc/${pid}/fd`).sort().join(' ') === before ? true : undefined));
  });

  it('console() resolves once the socket listens (or rejects with the helper\'s error); ready settles with the terminal or the error', async () => {
    const socket = path.join(dir, 'console.sock');
    const { ready } = await client.console('c1/e1', socket, '', '');
    assert.ok(fs.existsSync(socket), 'listening');
    net.createConnection(socket).end('no fd here');
    await assert.rejects(ready, (err: unknown) => err instanceof ExternalError && /terminal of c1\/e1: runc sent no terminal/.test(err.message));
    const taken = path.join(dir, 'taken');
    fs.writeFileSync(taken, '');
    // An error before listening rejects console() itself.
    await assert.rejects(client.console('c1/e2', taken, '', ''), /terminal of c1\/e2: .*Address already in use/);
  });

  it('emits exit for an orphaned process, and onGone when the helper ends', async () => {
    const exits: [number, number][] = [];
    client.on('exit', (pid, status) => exits.push([pid, status]));
    const pidFile = path.join(dir, 'pid');
    helper.child.stdin.write(`!sh -c 'echo $$ > ${pidFile}; exit 3'\n`);
    await until('the exit', () => (exits.length ? true : undefined));
    assert.deepEqual(exits, [[Number(fs.readFileSync(pidFile, 'utf8').trim()), 3]]);
    helper.child.stdin.end();
    await until('onGone', () => (gone ? true : undefined));
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TimeoutError } from '../../common/errors.js';
import { QmpClient } from '../../introspect/qemu/qmp.js';
import { QmpPause } from '../../introspect/qemu/vm-pause.js';

/** A QEMU monitor that answers what the pause sends, records every command, and can ignore some. */
class FakeQmp {
  readonly commands: { command: string; at: number }[] = [];
  running = true;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(readonly path: string, private readonly ignore: Set<string> = new Set()) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.write(JSON.stringify({ QMP: { version: {}, capabilities: [] } }) + '\n');
      let buf = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const msg = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: string };
          buf = buf.slice(nl + 1);
          this.commands.push({ command: msg.execute, at: Date.now() });
          if (this.ignore.has(msg.execute)) continue;
          let ret: unknown = {};
          if (msg.execute === 'query-status') ret = { running: this.running, status: this.running ? 'running' : 'paused' };
          if (msg.execute === 'stop') this.running = false;
          if (msg.execute === 'cont') this.running = true;
          socket.write(JSON.stringify({ return: ret, id: msg.id }) + '\n');
        }
      });
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.server.listen(this.path, resolve));
  }

  count(command: string): number {
    return this.commands.filter((c) => c.command === command).length;
  }

  /** When `command` first came; waits for it with no deadline of its own (the test's timeout is only a hang guard). */
  async waitFor(command: string): Promise<number> {
    for (;;) {
      const hit = this.commands.find((c) => c.command === command);
      if (hit) return hit.at;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

describe('QMP pause: the VM is never left stopped', function () {
  this.timeout(20_000);
  let dir: string;
  let qmp: FakeQmp | undefined;
  beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-qmp-')); });
  afterEach(async () => {
    await qmp?.close();
    qmp = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const start = async (ignore: string[] = []) => {
    qmp = new FakeQmp(path.join(dir, 'qmp.sock'), new Set(ignore));
    await qmp.listen();
    return qmp;
  };

  it('a command with no answer fails with a timeout instead of waiting forever', async () => {
    const q = await start(['stop']);
    const client = await QmpClient.connect(q.path);
    try {
      await assert.rejects(client.execute('stop', undefined, 200), TimeoutError);
      assert.deepEqual(await client.execute('query-status'), { running: true, status: 'running' });
    } finally {
      client.close();
    }
  });

  it('stop then cont: one cont, and the watchdog sends none after the budget', async () => {
    const q = await start();
    const pause = await QmpPause.connect(q.path);
    await pause.stop(300);
    assert.equal(q.running, false);
    await pause.cont();
    pause.close();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.equal(q.count('cont'), 1);
    assert.equal(q.running, true);
  });

  it('a dump that hangs while the VM is stopped: the watchdog resumes it when the pause budget runs out', async () => {
    const q = await start();
    const pause = await QmpPause.connect(q.path);
    const t = Date.now();
    await pause.stop(400);
    const hang = new Promise<void>(() => undefined); // the dump never comes back
    void hang;
    const at = await q.waitFor('cont');
    // A lower bound, which load only makes easier to meet: the watchdog's timer starts after t.
    assert.ok(at - t >= 350, `cont after ${at - t} ms, not before the budget`);
    assert.equal(q.running, true);
    // The dump's own cont, late, still succeeds.
    await pause.cont();
    pause.close();
  });

  it('a backend that dies while the VM is stopped: the watchdog resumes it at once', async () => {
    const q = await start();
    const vmPause = path.join(__dirname, '..', '..', 'introspect', 'qemu', 'vm-pause.js');
    // A budget of setTimeout's longest (24 days): a cont can only come from the watchdog seeing its backend die.
    const script = `require(${JSON.stringify(vmPause)}).QmpPause.connect(${JSON.stringify(q.path)})` +
      `.then((p) => p.stop(${2 ** 31 - 1})).then(() => process.kill(process.pid, "SIGKILL"))`;
    const child = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
    await new Promise((resolve) => child.on('exit', resolve));
    await q.waitFor('stop');
    await q.waitFor('cont');
    assert.equal(q.running, true);
  });

  it('a cont that gets no answer is retried on a fresh connection', async () => {
    const q = await start();
    const pause = await QmpPause.connect(q.path);
    await pause.stop(10_000);
    // The first connection's cont goes unanswered (a monitor stuck on that connection): the pause reconnects.
    (pause as unknown as { qmp: QmpClient }).qmp.execute = function (this: QmpClient, command: string) {
      return command === 'cont' ? Promise.reject(new TimeoutError('no answer')) : QmpClient.prototype.execute.call(this, command);
    } as QmpClient['execute'];
    await pause.cont();
    pause.close();
    assert.equal(q.running, true);
    assert.equal(q.count('cont'), 1);
  });
});

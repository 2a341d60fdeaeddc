import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PortWaiter } from '../../shim/channel/port-waiter.js';
import { quietLogs } from './helpers/quiet-logs.js';

/** Resolves true once `wake` is called within `ms`, false otherwise. */
function woken(waiter: PortWaiter, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    assert.ok(waiter.whenReadable(() => {
      clearTimeout(timer);
      resolve(true);
    }));
  });
}

describe('guest channel relay: the port readiness helper', function () {
  quietLogs();
  this.timeout(20_000);
  let dir: string;
  let fd: number;
  let waiter: PortWaiter | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-port-waiter-'));
    // A FIFO opened read-write and non-blocking polls as a port does: readable while bytes wait.
    const fifo = path.join(dir, 'port');
    execFileSync('mkfifo', [fifo]);
    fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  });

  afterEach(() => {
    waiter?.stop();
    waiter = undefined;
    fs.closeSync(fd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('wakes once per arming when bytes wait, and not before', async () => {
    waiter = new PortWaiter(fd);
    const first = woken(waiter, 10_000);
    // The helper's start, then nothing to read: no wake.
    await sleep(1000);
    fs.writeSync(fd, Buffer.from('x'));
    assert.equal(await first, true);
    fs.readSync(fd, Buffer.alloc(16));
    assert.equal(await woken(waiter, 500), false, 'woken with nothing to read');
    const late = woken(waiter, 10_000);
    fs.writeSync(fd, Buffer.from('y'));
    assert.equal(await late, true);
  });

  it('a later arming before the wake only replaces the callback', async () => {
    waiter = new PortWaiter(fd);
    let calls = 0;
    assert.ok(waiter.whenReadable(() => assert.fail('the replaced callback was called')));
    const woke = new Promise<void>((resolve) => waiter!.whenReadable(() => {
      calls++;
      resolve();
    }));
    fs.writeSync(fd, Buffer.from('x'));
    await woke;
    await sleep(300);
    assert.equal(calls, 1);
  });

  it('without python3, wakes the caller once and then answers false: it polls', async () => {
    waiter = new PortWaiter(fd, path.join(dir, 'no-python3'));
    assert.equal(await woken(waiter, 5000), true);
    assert.equal(waiter.whenReadable(() => undefined), false);
  });

  it('stopped, answers false', () => {
    waiter = new PortWaiter(fd);
    waiter.stop();
    assert.equal(waiter.whenReadable(() => undefined), false);
  });
});

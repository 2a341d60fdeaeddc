import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import {
  VmDescription, formatVmDescription, parseVmDescription, readVmDescription, removeVmDescription, vmDescriptionPath, writeVmDescription,
} from '../../introspect/vm/index.js';

const PRODUCT_CLI = path.resolve(__dirname, '..', '..', 'introspect', 'cli', 'main.js');

const full: VmDescription = {
  name: 'vm1',
  memoryFile: '/dev/shm/vm1.mem',
  ramLayout: [{ gpa: 0n, size: 0x8000_0000n, fileOffset: 0n }, { gpa: 0x1_0000_0000n, size: 0x4000_0000n, fileOffset: 0x8000_0000n }],
  qmpSocket: '/run/vm1/qmp.sock',
  channelSocket: '/run/vm1/channel.sock',
  shares: ['/srv/vm1/images'],
};

function rejects(doc: unknown, pattern: RegExp): void {
  assert.throws(() => parseVmDescription('vm1', typeof doc === 'string' ? doc : JSON.stringify(doc)),
    (err: unknown) => err instanceof InvalidArgumentError && pattern.test(err.message));
}

describe('VM description ($OVMIGRATE_VM_DIR/NAME.json)', () => {
  let dir: string;
  let saved: string | undefined;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-vms-'));
    saved = process.env.OVMIGRATE_VM_DIR;
    process.env.OVMIGRATE_VM_DIR = dir;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.OVMIGRATE_VM_DIR;
    else process.env.OVMIGRATE_VM_DIR = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('round-trips through its file, addresses as bigint', () => {
    assert.equal(writeVmDescription(full), path.join(dir, 'vm1.json'));
    assert.deepEqual(readVmDescription('vm1'), full);
    removeVmDescription('vm1');
    assert.throws(() => readVmDescription('vm1'), NotFoundError);
  });

  it('needs only the memory file; the rest is optional', () => {
    assert.deepEqual(parseVmDescription('vm1', '{"version": 1, "memoryFile": "/dev/shm/x.mem"}'), { name: 'vm1', memoryFile: '/dev/shm/x.mem' });
    assert.deepEqual(parseVmDescription('vm1', formatVmDescription({ name: 'vm1', memoryFile: '/m' })), { name: 'vm1', memoryFile: '/m' });
  });

  it('refuses names that are not plain file names', () => {
    for (const name of ['../etc/passwd', '.hidden', 'a/b', '', 'x'.repeat(65)]) {
      assert.throws(() => vmDescriptionPath(name), InvalidArgumentError, name);
    }
  });

  it('refuses what an operator may get wrong: unknown keys, versions, relative paths, bad numbers', () => {
    const ok = JSON.parse(formatVmDescription(full)) as Record<string, unknown>;
    rejects('{"version": 1, ', /not JSON/);
    rejects([], /not a JSON object/);
    rejects({ ...ok, memoryfile: '/x' }, /unknown key "memoryfile"/);
    rejects({ ...ok, version: 2 }, /version 2/);
    rejects({ ...ok, version: undefined }, /version undefined/);
    rejects({ ...ok, memoryFile: 'vm1.mem' }, /memoryFile must be an absolute path/);
    rejects({ ...ok, memoryFile: 7 }, /memoryFile must be an absolute path/);
    rejects({ ...ok, qmpSocket: 'qmp.sock' }, /qmpSocket must be an absolute path/);
    rejects({ ...ok, channelSocket: '/a\0b' }, /channelSocket must be an absolute path/);
    rejects({ ...ok, shares: '/srv' }, /shares must be a list/);
    rejects({ ...ok, shares: ['/srv', 'rel'] }, /shares\[1\] must be an absolute path/);
    rejects({ ...ok, ramLayout: [] }, /ramLayout must be a list of 1 to 64/);
    rejects({ ...ok, ramLayout: [{ gpa: 0, size: '0x1000', fileOffset: '0x0' }] }, /ramLayout\[0\]\.gpa must be a hex string/);
    rejects({ ...ok, ramLayout: [{ gpa: '0x0', size: '0x0', fileOffset: '0x0' }] }, /ramLayout\[0\]\.size is 0/);
    rejects({ ...ok, ramLayout: [{ gpa: '0x0', size: '0x1000', fileOffset: '0x0', x: 1 }] }, /ramLayout\[0\]: unknown key "x"/);
    rejects({ ...ok, ramLayout: [{ gpa: '0xffffffffffffffff', size: '0x1000', fileOffset: '0x0' }] }, /past the 64-bit address space/);
    rejects({ ...ok, ramLayout: [{ gpa: '0x10000000000000000', size: '0x1000', fileOffset: '0x0' }] }, /gpa must be a hex string/);
  });

  it('refuses a description that is a symbolic link or far too large', () => {
    fs.writeFileSync(path.join(dir, 'real.json'), formatVmDescription({ ...full, name: 'real' }));
    fs.symlinkSync(path.join(dir, 'real.json'), path.join(dir, 'link.json'));
    assert.throws(() => readVmDescription('link'), /symbolic link/);
    fs.writeFileSync(path.join(dir, 'big.json'), ' '.repeat(1 << 20));
    assert.throws(() => readVmDescription('big'), /more than a VM description holds/);
  });

  it('is how the product CLI finds a VM: no lab, no guest control', async function () {
    // Four CLI processes: node's start-up alone can take seconds on a loaded machine.
    this.timeout(60_000);
    fs.writeFileSync(path.join(dir, 'small.mem'), Buffer.alloc(1 << 20));
    writeVmDescription({ name: 'small', memoryFile: path.join(dir, 'small.mem') });
    const run = (args: string[]) => new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [PRODUCT_CLI, ...args], { env: { ...process.env, OVMIGRATE_VM_DIR: dir } }, (err, _stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr: String(stderr) });
      });
    });
    const unknown = await run(['info', '--vm', 'nosuch']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no VM named nosuch/);
    // The file is read (its RAM holds no kernel), so the description resolved.
    const info = await run(['info', '--vm', 'small']);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /vmcoreinfo/i);
    const dump = await run(['dump', '--vm', 'small', '--pid', '1', '-D', path.join(dir, 'img')]);
    assert.equal(dump.code, 2, 'killing the tree needs a way into the guest, which the product has not');
    assert.match(dump.stderr, /--vm and no guest control.*--leave-running/);
    const lab = await run(['lab', 'ls']);
    assert.notEqual(lab.code, 0, 'the product has no lab commands');
    assert.match(lab.stderr, /unknown command 'lab'/);
  });
});

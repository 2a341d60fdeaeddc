import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { forEachFd, openFiles } from '../../introspect/linux/files.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM } from './helpers/fake-program.js';
import { FakeVfs } from './helpers/fake-vfs.js';

const O_CLOEXEC = 0o2000000;

/** A task with an fd table of `maxFds` slots holding `files` (fd -> struct file), `closed` set in fd[] but not in open_fds. */
function fdTable(k: FakeKernel, maxFds: number, files: Map<number, bigint>, cloexec: number[] = [], closed: Map<number, bigint> = new Map()) {
  const fd = k.alloc(maxFds * 8, 8);
  const bytes = Math.ceil(maxFds / 64) * 8;
  const open = Buffer.alloc(bytes);
  const coe = Buffer.alloc(bytes);
  for (const [n, file] of [...files, ...closed]) k.u64(fd + BigInt(n * 8), file);
  for (const n of files.keys()) open[n >> 3] |= 1 << (n & 7);
  for (const n of cloexec) coe[n >> 3] |= 1 << (n & 7);
  const openFds = k.alloc(bytes, 8);
  const closeOnExec = k.alloc(bytes, 8);
  k.put(openFds, open);
  k.put(closeOnExec, coe);
  const fdt = k.new('fdtable', { max_fds: maxFds, fd, open_fds: openFds, close_on_exec: closeOnExec });
  return { task: k.new('task_struct', { pid: 50, files: k.new('files_struct', { fdt }) }), fdt };
}

function setup() {
  const k = new FakeKernel();
  const pipefifoFops = k.symbol('pipefifo_fops');
  const pipefsDname = k.symbol('pipefs_dname');
  const vfs = new FakeVfs(k);
  return { k, vfs, pipefifoFops, pipefsDname };
}

const task = (k: FakeKernel, t: bigint) => KObject.struct(k.program(), 'task_struct', t);

describe('open files on a fake kernel', () => {
  it('lists open fds with path, flags, position and kind', () => {
    const { k, vfs, pipefifoFops, pipefsDname } = setup();
    const passwd = vfs.file(vfs.dentry('passwd', vfs.path('etc'), { d_inode: vfs.inode(0o100644, 31n) }), vfs.rootMount, { f_flags: 0o2, f_pos: 77, f_mode: 0x1f });
    const pipeOps = k.new('dentry_operations', { d_dname: pipefsDname });
    const pipe = vfs.file(vfs.dentry('', vfs.rootDentry, { d_op: pipeOps, d_inode: vfs.inode(0o010600, 500n) }), vfs.rootMount, { f_op: pipefifoFops, f_flags: 0o1 });
    const fifo = vfs.file(vfs.dentry('fifo', vfs.path('run'), { d_inode: vfs.inode(0o010644, 501n) }), vfs.rootMount, { f_op: pipefifoFops });
    const sock = k.new('socket', { sk: k.new('sock', { '__sk_common.skc_family': 1 }) });
    const unix = vfs.file(vfs.dentry('sock', vfs.path('tmp'), { d_inode: vfs.inode(0o140777, 502n) }), vfs.rootMount, { private_data: sock });
    const stale = vfs.file(vfs.path('old'));
    const { task: t } = fdTable(k, 64, new Map([[0, passwd], [1, pipe], [3, unix], [63, fifo]]), [3, 4], new Map([[4, stale]]));
    assert.deepEqual([...forEachFd(task(k, t))].map((f) => [f.fd, f.file.address, f.cloexec]), [[0, passwd, false], [1, pipe, false], [3, unix, true], [63, fifo, false]]);
    const files = openFiles(task(k, t), vfs.root);
    assert.deepEqual(files.map((f) => [f.fd, f.path, f.kind, f.flags]), [
      [0, '/etc/passwd', 'regular', 0o2], [1, 'pipe:[500]', 'pipe', 0o1], [3, '/tmp/sock', 'unix-socket', O_CLOEXEC], [63, '/run/fifo', 'fifo', 0],
    ]);
    assert.deepEqual([files[0].pos, files[0].mode, files[0].file], [77n, 0x1f, passwd]);
  });

  it('a task without a files_struct has no fds', () => {
    const { k } = setup();
    assert.deepEqual([...forEachFd(task(k, k.new('task_struct')))], []);
  });

  describe('hostile values end in typed errors', () => {
    it('max_fds beyond any fd table', () => {
      for (const maxFds of [(1 << 20) + 1, 0xffff_ffff]) {
        const { k } = setup();
        const { task: t, fdt } = fdTable(k, 8, new Map());
        k.write(fdt, 'fdtable', { max_fds: maxFds });
        assertOvmError(() => forEachFd(task(k, t)), BadDataError);
      }
    });

    it('the largest max_fds allowed, over an array that runs out of RAM', () => {
      const { k } = setup();
      const { task: t, fdt } = fdTable(k, 8, new Map());
      k.write(fdt, 'fdtable', { max_fds: 1 << 20 });
      assertOvmError(() => forEachFd(task(k, t)), PageFaultError);
    });

    it('fd array and bitmaps that are NULL or outside RAM', () => {
      for (const member of ['fd', 'open_fds', 'close_on_exec']) {
        for (const ptr of [0n, OUTSIDE_RAM]) {
          const { k } = setup();
          const { task: t, fdt } = fdTable(k, 64, new Map([[0, k.new('file')]]));
          k.write(fdt, 'fdtable', { [member]: ptr });
          assertOvmError(() => forEachFd(task(k, t)), PageFaultError);
        }
      }
    });

    it('a NULL fdtable', () => {
      const { k } = setup();
      const t = k.new('task_struct', { files: k.new('files_struct') });
      assertOvmError(() => forEachFd(task(k, t)), BadDataError);
    });

    it('an open fd whose struct file is outside RAM or misaligned into garbage', () => {
      for (const file of [OUTSIDE_RAM, 0x7fff_0000_0000n]) {
        const { k, vfs } = setup();
        const { task: t } = fdTable(k, 8, new Map([[2, file]]));
        assertOvmError(() => openFiles(task(k, t), vfs.root), PageFaultError);
      }
      const { k, vfs } = setup();
      const good = vfs.file(vfs.path('etc'));
      const { task: t } = fdTable(k, 8, new Map([[2, good + 4n]]));
      assertOvmError(() => openFiles(task(k, t), vfs.root));
    });
  });
});

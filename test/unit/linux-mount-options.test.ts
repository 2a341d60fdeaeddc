import assert from 'node:assert/strict';
import { PageFaultError } from '../../introspect/arch/x86-64.js';
import { KObject } from '../../introspect/kernel/object.js';
import { superOptions, superblockFlags } from '../../introspect/linux/mount-options.js';
import { assertOvmError } from './helpers/assert-ovm.js';
import { FakeKernel, OUTSIDE_RAM, Values } from './helpers/fake-program.js';

const SB_RDONLY = 1;
const SB_LAZYTIME = 1 << 25;

/** A kernel with 1000 pages of RAM (tmpfs defaults are half of it) and the cgroup v2 root. */
function kernel() {
  const k = new FakeKernel();
  k.u64(k.symbol('_totalram_pages', 8), 1000n);
  const dflRoot = k.global('cgrp_dfl_root', 'cgroup_root');
  return { k, dflRoot };
}

function options(k: FakeKernel, fsType: string, info: bigint, sbValues: Values = {}) {
  const sb = k.new('super_block', { s_fs_info: info, ...sbValues });
  return superOptions(KObject.struct(k.program(), 'super_block', sb), fsType);
}

describe('mount options on a fake kernel', () => {
  it('rebuilds tmpfs options, defaults left out', () => {
    const { k } = kernel();
    const info = k.new('shmem_sb_info', { max_blocks: 256, max_inodes: 500, mode: 0o755, 'uid.val': 1000, full_inums: 1, huge: 2 });
    assert.deepEqual(options(k, 'tmpfs', info, { s_flags: SB_LAZYTIME }), ['lazytime', 'size=1024k', 'mode=755', 'uid=1000', 'inode64', 'huge=within_size']);
    const defaults = k.new('shmem_sb_info', { max_blocks: 500, max_inodes: 500, mode: 0o1777 });
    assert.deepEqual(options(k, 'tmpfs', defaults), ['inode32']);
  });

  it('rebuilds proc, devpts and cgroup2 options; none for sysfs; undefined for others', () => {
    const { k, dflRoot } = kernel();
    assert.deepEqual(options(k, 'proc', k.new('proc_fs_info', { 'pid_gid.val': 5, hide_pid: 2, pidonly: 1 })), ['gid=5', 'hidepid=invisible', 'subset=pid']);
    const pts = k.new('pts_fs_info', { 'mount_opts.setgid': 1, 'mount_opts.gid.val': 5, 'mount_opts.mode': 0o620, 'mount_opts.ptmxmode': 0o666, 'mount_opts.max': 1 << 20 });
    assert.deepEqual(options(k, 'devpts', pts), ['gid=5', 'mode=620', 'ptmxmode=666']);
    k.write(dflRoot, 'cgroup_root', { flags: 8 | 1 << 18 });
    assert.deepEqual(options(k, 'cgroup2', 0n), ['nsdelegate', 'memory_recursiveprot']);
    assert.deepEqual(options(k, 'sysfs', 0n), []);
    assert.equal(options(k, 'ext4', 0n), undefined);
    const sb = KObject.struct(k.program(), 'super_block', k.new('super_block', { s_flags: SB_RDONLY }));
    assert.deepEqual(superblockFlags(sb), { readonly: true, sync: false, dirsync: false, mand: false, lazytime: false });
  });

  describe('hostile values', () => {
    it('out-of-range enums print as numbers', () => {
      const { k } = kernel();
      assert.deepEqual(options(k, 'proc', k.new('proc_fs_info', { hide_pid: 0xffff_ffff })), ['hidepid=4294967295']);
      assert.deepEqual(options(k, 'tmpfs', k.new('shmem_sb_info', { max_blocks: 500, max_inodes: 500, mode: 0o1777, huge: 200 })), ['inode32', 'huge=200']);
    });

    it('a NULL or outside-RAM s_fs_info is a typed error', () => {
      for (const fsType of ['tmpfs', 'proc', 'devpts']) {
        for (const info of [0n, OUTSIDE_RAM]) {
          const { k } = kernel();
          assertOvmError(() => options(k, fsType, info), PageFaultError);
        }
      }
    });
  });
});

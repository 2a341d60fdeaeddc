import { KObject } from '../kernel/object.js';

/** include/linux/fs.h superblock flags shown by show_sb_opts (fs/proc_namespace.c). */
const SB_RDONLY = 1;
const SB_SYNCHRONOUS = 16;
const SB_MANDLOCK = 64;
const SB_DIRSYNC = 128;
const SB_LAZYTIME = 1 << 25;
/** include/linux/tty.h: NR_UNIX98_PTY_MAX; devpts shows max= only below it. */
const NR_UNIX98_PTY_MAX = 1 << 20;
const HIDEPID = ['off', 'noaccess', 'invisible', '', 'ptraceable'];

/** A superblock's flags as /proc/PID/mountinfo shows them before the file system's own options. */
export function superblockFlags(sb: KObject): { readonly: boolean; sync: boolean; dirsync: boolean; mand: boolean; lazytime: boolean } {
  const f = Number(sb.member('s_flags').value() & 0xffffffffn);
  return { readonly: (f & SB_RDONLY) !== 0, sync: (f & SB_SYNCHRONOUS) !== 0, dirsync: (f & SB_DIRSYNC) !== 0, mand: (f & SB_MANDLOCK) !== 0, lazytime: (f & SB_LAZYTIME) !== 0 };
}

function totalramPages(prog: KObject['prog']): bigint {
  return prog.u64(prog.symbols.address('_totalram_pages'), '_totalram_pages');
}

/** mm/shmem.c shmem_show_options (6.1): non-default size, inodes, mode, owner; inode64/32; huge. */
function tmpfsOptions(sb: KObject): string[] {
  const info = KObject.struct(sb.prog, 'shmem_sb_info', sb.member('s_fs_info').value());
  const half = totalramPages(sb.prog) / 2n;
  const out: string[] = [];
  const blocks = info.member('max_blocks').value();
  if (blocks !== half) out.push(`size=${blocks << 2n}k`);
  const inodes = info.member('max_inodes').value();
  if (inodes !== half) out.push(`nr_inodes=${inodes}`);
  const mode = info.member('mode').num();
  if (mode !== 0o1777) out.push(`mode=${mode.toString(8).padStart(3, '0')}`);
  const uid = info.member('uid.val').num();
  const gid = info.member('gid.val').num();
  if (uid !== 0) out.push(`uid=${uid}`);
  if (gid !== 0) out.push(`gid=${gid}`);
  // Shown when CONFIG_TMPFS_INODE64 is set (Debian's kernels) or the mount asked for inode64.
  out.push(info.bitfield('full_inums') ? 'inode64' : 'inode32');
  const huge = info.member('huge').num();
  const HUGE = ['never', 'always', 'within_size', 'advise'];
  if (huge) out.push(`huge=${HUGE[huge] ?? huge}`);
  return out;
}

/** fs/proc/root.c proc_show_options. */
function procOptions(sb: KObject): string[] {
  const info = KObject.struct(sb.prog, 'proc_fs_info', sb.member('s_fs_info').value());
  const out: string[] = [];
  const gid = info.member('pid_gid.val').num();
  if (gid !== 0) out.push(`gid=${gid}`);
  const hide = info.member('hide_pid').num();
  if (hide !== 0) out.push(`hidepid=${HIDEPID[hide] ?? hide}`);
  if (info.member('pidonly').num() !== 0) out.push('subset=pid');
  return out;
}

/** fs/devpts/inode.c devpts_show_options. */
function devptsOptions(sb: KObject): string[] {
  const opts = KObject.struct(sb.prog, 'pts_fs_info', sb.member('s_fs_info').value()).member('mount_opts');
  const out: string[] = [];
  if (opts.bitfield('setuid')) out.push(`uid=${opts.member('uid.val').num()}`);
  if (opts.bitfield('setgid')) out.push(`gid=${opts.member('gid.val').num()}`);
  out.push(`mode=${opts.member('mode').num().toString(8).padStart(3, '0')}`);
  out.push(`ptmxmode=${opts.member('ptmxmode').num().toString(8).padStart(3, '0')}`);
  const max = opts.member('max').num();
  if (max < NR_UNIX98_PTY_MAX) out.push(`max=${max}`);
  return out;
}

/** kernel/cgroup/cgroup.c cgroup_show_options: the flags of the one cgroup v2 hierarchy (cgrp_dfl_root). */
function cgroup2Options(sb: KObject): string[] {
  const prog = sb.prog;
  const root = KObject.struct(prog, 'cgroup_root', prog.symbols.address('cgrp_dfl_root'));
  const flags = root.member('flags').value();
  const e = prog.btf.byName('cgroup_root_flag', 'enum');
  const bit = (name: string) => (e && e.kind === 'enum' ? e.values.find((v) => v.name === name)?.value : undefined);
  const names: [string, string][] = [['CGRP_ROOT_NS_DELEGATE', 'nsdelegate'], ['CGRP_ROOT_FAVOR_DYNMODS', 'favordynmods'],
    ['CGRP_ROOT_MEMORY_LOCAL_EVENTS', 'memory_localevents'], ['CGRP_ROOT_MEMORY_RECURSIVE_PROT', 'memory_recursiveprot']];
  return names.filter(([flag]) => {
    const v = bit(flag);
    return v !== undefined && (flags & v) !== 0n;
  }).map(([, opt]) => opt);
}

/** File systems whose options ovmigrate reproduces; their show_options print nothing for those without a function. */
const SHOW: Record<string, ((sb: KObject) => string[]) | undefined> = {
  tmpfs: tmpfsOptions, proc: procOptions, devpts: devptsOptions, cgroup2: cgroup2Options, sysfs: undefined, mqueue: undefined,
};

/**
 * The super options of a mount as the last field of /proc/PID/mountinfo
 * shows them, without rw/ro, sync and dirsync (which CRIU keeps as
 * sb_flags): what the file system's show_options prints, rebuilt from its
 * superblock. Undefined for file systems not covered.
 */
export function superOptions(sb: KObject, fsType: string): string[] | undefined {
  if (!(fsType in SHOW)) return undefined;
  const flags = superblockFlags(sb);
  return [...(flags.mand ? ['mand'] : []), ...(flags.lazytime ? ['lazytime'] : []), ...(SHOW[fsType]?.(sb) ?? [])];
}

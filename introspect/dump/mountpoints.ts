import { UnsupportedError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { taskRoot } from '../linux/d-path.js';
import { superOptions, superblockFlags } from '../linux/mount-options.js';
import { mountRootMode } from '../linux/mount-root.js';
import { MountInfo, mounts } from '../linux/mounts.js';
import { tmpfsEntries } from '../linux/tmpfs.js';
import { ContainerSpec } from './container.js';
import { DumpProblem } from './problem.js';
import { tmpfsTarball } from './tmpfs-image.js';
import { S_IFDIR, S_IFMT } from '../linux/stat.js';

/** images/mnt.proto fstype, by file system name (criu/filesystems.c fstypes). */
const FSTYPES: Record<string, number> = {
  proc: 1, sysfs: 2, devtmpfs: 3, binfmt_misc: 4, tmpfs: 5, devpts: 6, pstore: 8, securityfs: 9, fusectl: 10, debugfs: 11,
  cgroup: 12, mqueue: 14, fuse: 15, overlay: 17, autofs: 18, tracefs: 19, cgroup2: 23,
};
/** What CRIU records for a file system it does not know (criu/filesystems.c: fstypes[0], "unsupported"). */
const FSTYPE_UNSUPPORTED = 0;
/** include/linux/mount.h mnt_flags, and the MS_* flags CRIU records for them (criu/proc_parse.c parse_mnt_flags). */
const MNT = { NOSUID: 0x1, NODEV: 0x2, NOEXEC: 0x4, NOATIME: 0x8, NODIRATIME: 0x10, RELATIME: 0x20, READONLY: 0x40, SHARED: 0x1000, UNBINDABLE: 0x2000 };
const MS = { RDONLY: 1, NOSUID: 2, NODEV: 4, NOEXEC: 8, DIRSYNC: 128, NOATIME: 0x400, NODIRATIME: 0x800, UNBINDABLE: 1 << 17, SLAVE: 1 << 19, SHARED: 1 << 20, RELATIME: 1 << 21, STRICTATIME: 1 << 24 };
/** criu/proc_parse.c parse_sb_opt maps "sync" to MS_SYNC of <sys/mman.h> (msync's 4), not MS_SYNCHRONOUS (16): matched as written. */
const CRIU_SYNC = 4;

export interface MountImages {
  entries: Record<string, unknown>[];
  /** tmpfs-dev-N.tar.gz.img files, by s_dev. */
  tmpfs: Map<number, Buffer>;
  problems: DumpProblem[];
}

function msFlags(m: MountInfo): number {
  const f = m.flags;
  let out = 0;
  if (f & MNT.READONLY) out |= MS.RDONLY;
  if (f & MNT.NOSUID) out |= MS.NOSUID;
  if (f & MNT.NODEV) out |= MS.NODEV;
  if (f & MNT.NOEXEC) out |= MS.NOEXEC;
  if (f & MNT.NOATIME) out |= MS.NOATIME;
  if (f & MNT.NODIRATIME) out |= MS.NODIRATIME;
  if (f & MNT.RELATIME) out |= MS.RELATIME;
  // mountinfo lists no "strictatime"; CRIU adds it when neither relatime nor noatime is there.
  if (!(out & (MS.RELATIME | MS.NOATIME))) out |= MS.STRICTATIME;
  if (m.shared) out |= MS.SHARED;
  if (m.master) out |= MS.SLAVE;
  if (f & MNT.UNBINDABLE) out |= MS.UNBINDABLE;
  return out;
}

/**
 * mountpoints-ID.img of a container's mount namespace and the contents of
 * its tmpfs mounts, as CRIU writes them for runc (criu/mount.c
 * dump_one_mountpoint, criu/filesystems.c tmpfs_dump): every mount of the
 * namespace, children before parents; bind mounts from the bundle and
 * masked files external under runc's keys; other mounts rebuilt from their
 * file system type, source and options. The root mount is the container's
 * rootfs, which runc hands to CRIU on restore.
 */
/**
 * A cgroup mount's root as the container sees it: relative to its cgroup
 * namespace's root (the kernel's cgroup_show_path; runc mounts cgroup2 from
 * inside the new namespace, so the root is "/"). Written as the whole-hierarchy
 * path, CRIU restores it as a bind of a subtree and refuses, having no mount of
 * the hierarchy's root to bind from ("doesn't have a proper root mount").
 */
export function cgroupRootInNs(root: string, nsRoot: string): string {
  if (nsRoot === '/' || !(root === nsRoot || root.startsWith(`${nsRoot}/`))) return root;
  return root.slice(nsRoot.length) || '/';
}

/** `cgroupNsRoot`: the root of the container's cgroup namespace in the whole hierarchy ("/" without one). */
export function mountImages(rootTask: KObject, spec: ContainerSpec, maxHoleBytes?: number, cgroupNsRoot = '/'): MountImages {
  const list = mounts(rootTask, taskRoot(rootTask));
  const problems: DumpProblem[] = [];
  // Problems of the container's mounts name no task: they are the container's, as runc configured it.
  const task = 'container';
  const entries: Record<string, unknown>[] = [];
  const tmpfs = new Map<number, Buffer>();
  for (const m of [...list].reverse()) {
    const isRoot = m.mountPoint === '/';
    const rootIsDir = (mountRootMode(m.mount) & S_IFMT) === S_IFDIR;
    const extKey = spec.externalMounts.get(m.mountPoint) ?? (spec.maskedPaths.has(m.mountPoint) && !rootIsDir ? '/dev/null' : undefined);
    const sb = superblockFlags(m.sb);
    const entry: Record<string, unknown> = {
      fstype: FSTYPES[m.fsType] ?? FSTYPE_UNSUPPORTED,
      mnt_id: m.id,
      root_dev: m.sDev,
      parent_mnt_id: m.parentId,
      flags: msFlags(m),
      root: m.fsType === 'cgroup2' || m.fsType === 'cgroup' ? cgroupRootInNs(m.root, cgroupNsRoot) : m.root,
      mountpoint: m.mountPoint,
      source: m.source,
      options: '',
      shared_id: m.shared,
      master_id: m.master,
      sb_flags: (sb.readonly ? MS.RDONLY : 0) | (sb.sync ? CRIU_SYNC : 0) | (sb.dirsync ? MS.DIRSYNC : 0),
    };
    const options = superOptions(m.sb, m.fsType);
    if (options) {
      // criu/filesystems.c devpts_parse: a devpts mount is restored with -o newinstance.
      entry.options = [...options, ...(m.fsType === 'devpts' ? ['newinstance'] : [])].join(',');
    } else if (!extKey && !isRoot) {
      problems.push(new DumpProblem(task, 'mount', `of type ${m.fsType} (not supported yet)`, { object: `mount ${m.mountPoint}`, sentence: true }));
    }
    if (extKey) entry.ext_key = extKey;
    entries.push(entry);
    if (m.fsType === 'tmpfs' && !extKey && !tmpfs.has(m.sDev)) {
      try {
        tmpfs.set(m.sDev, tmpfsTarball(tmpfsEntries(m.sb, { maxHoleBytes })));
      } catch (err) {
        if (!(err instanceof UnsupportedError)) throw err;
        problems.push(new DumpProblem(task, 'tmpfs', err.message, { object: `tmpfs ${m.mountPoint}` }));
      }
    }
  }
  return { entries, tmpfs, problems };
}

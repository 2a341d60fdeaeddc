import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFMT } from '../linux/stat.js';

/**
 * Ids of shared objects, assigned as CRIU 3.17 assigns them, so that images
 * of the same tree from `criu dump` and from ovmigrate carry the same ids:
 *
 * - vm, files, fs and sighand: one counter each; the dumper's own objects
 *   are 1 (criu/cr-dump.c dump_task_kobj_ids, kcmp trees).
 * - namespaces: one counter for all kinds, in the order pid, net, ipc, uts,
 *   time, mnt, user, cgroup per task, the dumper's first
 *   (criu/namespaces.c dump_task_ns_ids).
 * - files: one counter. An open file (fd) is one id per struct file (kcmp
 *   KCMP_FILE). exe, mapped files, cwd and root are "special" ids, shared by
 *   (mount, device, inode), except that directories and devices always get
 *   a new one (criu/file-ids.c fd_id_generate_special: its S_IFCHR|S_IFBLK
 *   test matches S_IFDIR too). A new fd id is remembered for special
 *   lookups as well.
 * - cgroup sets: by the set of paths, the dumper's being 1 (criu/cgroup.c).
 */
export type KobjKind = 'vm' | 'files' | 'fs' | 'sighand';
export const NS_KINDS = ['pid', 'net', 'ipc', 'uts', 'time', 'mnt', 'user', 'cgroup'] as const;
export type NsKind = (typeof NS_KINDS)[number];

/** A file as the special-id cache keys it. */
export interface FileKey {
  mntId: number;
  dev: number;
  ino: bigint;
  mode: number;
}

export class IdAllocator {
  private readonly kobj = new Map<KobjKind, Map<bigint, number>>();
  private readonly ns = new Map<bigint, number>();
  private nextNs = 1;
  private readonly files = new Map<bigint, number>();
  private readonly special = new Map<string, number>();
  private nextFile = 1;
  private readonly cgSets = new Map<string, number>();
  private nextCgSet = 1;

  /** Id of a task's vm/files/fs/sighand object, by its kernel address; `fresh` tells whether it is new. */
  kobjId(kind: KobjKind, address: bigint): { id: number; fresh: boolean } {
    let ids = this.kobj.get(kind);
    if (!ids) {
      ids = new Map();
      this.kobj.set(kind, ids);
    }
    const known = ids.get(address);
    if (known !== undefined) return { id: known, fresh: false };
    const id = ids.size + 1;
    ids.set(address, id);
    return { id, fresh: true };
  }

  /** Id of a namespace, by its ns_common.inum (unique per namespace on a running kernel). */
  nsId(inum: bigint): number {
    let id = this.ns.get(inum);
    if (id === undefined) {
      id = this.nextNs++;
      this.ns.set(inum, id);
    }
    return id;
  }

  /** Id of an open file, by its struct file; `fresh` tells whether its entry must be written. */
  fileId(file: bigint, key: FileKey): { id: number; fresh: boolean } {
    const known = this.files.get(file);
    if (known !== undefined) return { id: known, fresh: false };
    const id = this.nextFile++;
    this.files.set(file, id);
    this.special.set(specialKey(key), id);
    return { id, fresh: true };
  }

  /** Id of an exe, mapped file, cwd or root; `fresh` tells whether its entry must be written. */
  specialId(key: FileKey): { id: number; fresh: boolean } {
    const type = key.mode & S_IFMT;
    const k = specialKey(key);
    const known = this.special.get(k);
    if (known !== undefined && type !== S_IFDIR && type !== S_IFCHR && type !== S_IFBLK) return { id: known, fresh: false };
    const id = this.nextFile++;
    if (known === undefined) this.special.set(k, id);
    return { id, fresh: true };
  }

  /** A file id for an object with no file of its own to key it by. */
  newFileId(): number {
    return this.nextFile++;
  }

  /** Id of a set of cgroup paths; the first set asked for (the dumper's) is 1. */
  cgSetId(paths: string): { id: number; fresh: boolean } {
    const known = this.cgSets.get(paths);
    if (known !== undefined) return { id: known, fresh: false };
    const id = this.nextCgSet++;
    this.cgSets.set(paths, id);
    return { id, fresh: true };
  }

  /** A set id no lookup will find again. */
  newCgSetId(): { id: number; fresh: boolean } {
    return { id: this.nextCgSet++, fresh: true };
  }
}

function specialKey(k: FileKey): string {
  return `${k.mntId}:${k.dev}:${k.ino}`;
}

import { KObject, containerOf } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { PathRoot, dPath } from '../linux/d-path.js';
import { fileKind, forEachFd } from '../linux/files.js';
import { readCachedFile } from '../linux/page-cache.js';
import { PageInfo } from '../linux/pages.js';
import { pipeContents } from '../linux/pipes.js';
import { SOCK_STREAM, TCP_LISTEN, UnixSocket, unixSocket } from '../linux/unix-sockets.js';
import { FileKey, IdAllocator } from './ids.js';
import { S_IFCHR, S_IFMT, S_IFREG } from '../linux/stat.js';

/** include/uapi/linux/fcntl.h */
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_APPEND = 0o2000;
const FD_CLOEXEC = 1;
/** FMODE_READ, FMODE_WRITE of struct file's f_mode. */
const FMODE_READ = 1;
const FMODE_WRITE = 2;
/** include/uapi/linux/major.h: /dev/null, /dev/zero and friends, which CRIU reopens by path. */
const MEM_MAJOR = 1;
/** criu/files-reg.c BUILD_ID_MAP_SIZE: the build-id is looked for in the first MiB. */
const BUILD_ID_SCAN = 1 << 20;
const PT_NOTE = 4;
const NT_GNU_BUILD_ID = 3;

/** What the CRIU file entry of an fd is (images/fdinfo.proto fd_types). */
type FdType = 'REG' | 'PIPE' | 'UNIXSK';

export interface FileTableOptions {
  prog: Program;
  ids: IdAllocator;
  pages: PageInfo;
  /** Paths are named as a reader at this root sees them: the dumper's, or a container's root when its mounts are dumped. */
  root: PathRoot;
  /** The tree's mount namespace is dumped: files name their mount (reg_file_entry.mnt_id). */
  mntIds: boolean;
  /** Id of a network namespace by its struct net. */
  netNsId(net: bigint): number;
  /** Number of a struct pid in the tree's pid namespace, 0 if it has none there. */
  vpid(pid: bigint): number;
}

/** How an open file is owned for SIGIO (fown_entry), as F_GETOWN_EX/F_GETSIG/F_GETOWNER_UIDS report it. */
function fown(file: KObject, vpid: (pid: bigint) => number): Record<string, number> {
  const o = file.member('f_owner');
  const pid = o.member('pid').value();
  return {
    uid: o.member('uid.val').num(),
    euid: o.member('euid.val').num(),
    signum: o.member('signum').num(),
    pid_type: o.member('pid_type').num(),
    pid: pid === 0n ? 0 : vpid(pid),
  };
}

const NO_OWNER = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

/**
 * The GNU build-id of an ELF file, read from its page cache the way CRIU
 * reads it from the file (criu/files-reg.c get_build_id_64): the first
 * PT_NOTE segment holding an NT_GNU_BUILD_ID note. Undefined when the file
 * is no ELF or its pages are not cached (then, like CRIU, only the size is
 * kept for validation).
 */
function elfBuildId(inode: KObject, size: number): number[] | undefined {
  const mapping = inode.member('i_mapping').deref();
  const mapped = Math.min(size, BUILD_ID_SCAN);
  const read = (off: number, len: number) => (off < 0 || len < 0 || off + len > mapped ? undefined : readCachedFile(mapping, off, len));
  const ehdr = read(0, 64);
  if (!ehdr || ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return undefined;
  const phoff = Number(ehdr.readBigUInt64LE(32));
  const phnum = ehdr.readUInt16LE(56);
  for (let i = 0; i < phnum && i < 256; i++) {
    const ph = read(phoff + i * 56, 56);
    if (!ph) return undefined;
    if (ph.readUInt32LE(0) !== PT_NOTE) continue;
    const offset = Number(ph.readBigUInt64LE(8));
    const filesz = Number(ph.readBigUInt64LE(32));
    const notes = read(offset, Math.min(filesz, mapped - offset));
    if (!notes) return undefined;
    for (let at = 0; at + 12 <= notes.length;) {
      const namesz = notes.readUInt32LE(at);
      const descsz = notes.readUInt32LE(at + 4);
      const type = notes.readUInt32LE(at + 8);
      const desc = at + 12 + ((namesz + 3) & ~3);
      if (type === NT_GNU_BUILD_ID) {
        if (descsz === 0 || descsz > 512 || desc + descsz > notes.length) return undefined;
        const bytes = Buffer.alloc((descsz + 3) & ~3);
        notes.copy(bytes, 0, desc, desc + descsz);
        return Array.from({ length: bytes.length / 4 }, (_, k) => bytes.readUInt32LE(k * 4));
      }
      at = desc + ((descsz + 3) & ~3);
    }
  }
  return undefined;
}

/**
 * The files of a dump: files.img entries (regular files, pipes, unix
 * sockets), the fdinfo of each files table, pipe contents and socket
 * queues. Ids follow CRIU's (ids.ts); what CRIU could not restore either
 * is collected in `problems` rather than thrown, so one refusal lists all.
 */
export class FileTable {
  /** files.img entries, in the order written. */
  readonly entries: Record<string, unknown>[] = [];
  readonly pipesData: { entry: Record<string, unknown>; data: Buffer }[] = [];
  readonly skQueues: { entry: Record<string, unknown>; data: Buffer }[] = [];
  readonly problems: string[] = [];
  private readonly pipesDumped = new Set<bigint>();
  private readonly unix = new Map<bigint, { id: number; sk: UnixSocket; who: string }>();

  constructor(private readonly o: FileTableOptions) {}

  get root(): PathRoot {
    return this.o.root;
  }

  private key(path: KObject): { key: FileKey; inode: KObject } {
    const inode = path.member('dentry').deref().member('d_inode').deref();
    const mount = containerOf(this.o.prog, path.member('mnt').value(), 'mount', 'mnt');
    return {
      inode,
      key: {
        mntId: mount.member('mnt_id').num(),
        dev: inode.member('i_sb').deref().member('s_dev').num(),
        ino: inode.member('i_ino').value(),
        mode: inode.member('i_mode').num(),
      },
    };
  }

  /** reg_file_entry of a path (criu/files-reg.c dump_one_reg_file). */
  private regEntry(id: number, path: KObject, key: FileKey, inode: KObject, flags: number, pos: bigint, owner: Record<string, number>, who: string,
    dataInode = inode): void {
    const name = dPath(path, this.o.root);
    if (name.endsWith(' (deleted)')) this.problems.push(`${who}: ${name} is deleted (not supported yet)`);
    const mode = inode.member('i_mode').num();
    const reg: Record<string, unknown> = { id, flags, pos, fown: owner, name, mode, ...(this.o.mntIds ? { mnt_id: key.mntId } : {}) };
    // Size (and build-id) let restore check it reopens the same file; not for files only appended to (logs).
    if ((mode & S_IFMT) === S_IFREG && !((flags & O_ACCMODE) === O_WRONLY && flags & O_APPEND)) {
      const size = inode.member('i_size').value();
      reg.size = size;
      const buildId = size >= 5n ? elfBuildId(dataInode, Number(size)) : undefined;
      if (buildId) reg.build_id = buildId;
    }
    this.entries.push({ type: 'REG', id, reg });
  }

  /** Id of a cwd or root (a struct path), or of an exe or mapped file (a struct file). */
  special(pathOrFile: KObject, who: string): number {
    const file = pathOrFile.type.kind === 'struct' && pathOrFile.type.name === 'file' ? pathOrFile : undefined;
    const path = file ? file.member('f_path') : pathOrFile;
    const { key, inode } = this.key(path);
    const { id, fresh } = this.o.ids.specialId(key);
    // The data behind a file is its f_inode's: for overlayfs that is the real inode (the path shows the overlay one).
    if (fresh) this.regEntry(id, path, key, inode, 0, 0n, NO_OWNER, who, file?.member('f_inode').deref());
    return id;
  }

  /** fdinfo entries of a task's files table, with the files they open. */
  fdinfo(task: KObject, who: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const { fd, file, cloexec } of forEachFd(task)) {
      const type = this.openFile(file, `${who} fd ${fd}`);
      if (!type) continue;
      out.push({ id: type.id, flags: cloexec ? FD_CLOEXEC : 0, type: type.type, fd });
    }
    return out;
  }

  private openFile(file: KObject, who: string): { id: number; type: FdType } | undefined {
    const path = file.member('f_path');
    const name = dPath(path, this.o.root);
    const kind = fileKind(file, name);
    const { key, inode } = this.key(path);
    const flags = file.member('f_flags').num();
    switch (kind) {
      case 'regular': case 'directory': case 'chardev': {
        if (kind === 'chardev' && (inode.member('i_rdev').num() >>> 20) !== MEM_MAJOR) {
          this.problems.push(`${who}: character device ${name} (not supported)`);
          return undefined;
        }
        const { id, fresh } = this.o.ids.fileId(file.address, key);
        if (fresh) this.regEntry(id, path, key, inode, flags, file.member('f_pos').value(), fown(file, this.o.vpid), who, file.member('f_inode').deref());
        return { id, type: 'REG' };
      }
      case 'pipe': {
        const { id, fresh } = this.o.ids.fileId(file.address, key);
        if (fresh) this.entries.push({ type: 'PIPE', id, pipe: { id, pipe_id: key.ino, flags, fown: fown(file, this.o.vpid) } });
        // criu/pipes.c dump_one_pipe_data: the contents once per pipe, from a read end.
        if ((flags & O_WRONLY) === 0 && !this.pipesDumped.has(key.ino)) {
          this.pipesDumped.add(key.ino);
          const pipe = pipeContents(inode, this.o.pages);
          this.pipesData.push({ entry: { pipe_id: pipe.ino, bytes: pipe.data.length, size: pipe.size }, data: pipe.data });
        }
        return { id, type: 'PIPE' };
      }
      case 'unix-socket': {
        const { id, fresh } = this.o.ids.fileId(file.address, key);
        if (fresh) this.unixEntry(id, file, who);
        return { id, type: 'UNIXSK' };
      }
      case 'inet-socket':
        this.problems.push(`${who}: ${this.inetDescription(file)} (TCP/UDP sockets are not supported yet)`);
        return undefined;
      default:
        this.problems.push(`${who}: ${name} is a ${kind} (not supported yet)`);
        return undefined;
    }
  }

  private inetDescription(file: KObject): string {
    const sk = KObject.struct(file.prog, 'socket', file.member('private_data').value()).member('sk').deref();
    const states = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
    const state = sk.member('__sk_common.skc_state').num();
    const proto = sk.member('sk_type').num() === SOCK_STREAM ? 'TCP' : 'UDP';
    return `${proto} socket in state ${states[state] ?? state}`;
  }

  private unixEntry(id: number, file: KObject, who: string): void {
    const sk = unixSocket(file, this.o.pages);
    if (sk.passesFds) this.problems.push(`${who}: unix socket has file descriptors in flight (SCM_RIGHTS)`);
    if (sk.pendingConnections) this.problems.push(`${who}: listening unix socket has ${sk.pendingConnections} connections not yet accepted`);
    const usk: Record<string, unknown> = {
      id,
      ino: sk.ino,
      type: sk.type,
      state: sk.state,
      flags: file.member('f_flags').num(),
      uflags: 0,
      backlog: sk.backlog,
      peer: sk.peer,
      fown: fown(file, this.o.vpid),
      opts: sk.opts,
      name: sk.name,
      ...(sk.shutdown ? { shutdown: sk.shutdown } : {}),
      ns_id: this.o.netNsId(sk.net),
    };
    this.unix.set(sk.ino, { id, sk, who });
    this.entries.push({ type: 'UNIXSK', id, usk });
    for (const packet of sk.queue) this.skQueues.push({ entry: { id_for: id, length: packet.length }, data: packet });
    if (sk.state === TCP_LISTEN && sk.type !== SOCK_STREAM) this.problems.push(`${who}: a listening unix socket that is not SOCK_STREAM`);
  }

  /** Checks what only the whole dump shows: every connected unix socket's peer is in it. */
  finish(): void {
    for (const { sk, who } of this.unix.values()) {
      if (sk.peer !== 0n && !this.unix.has(sk.peer)) {
        this.problems.push(`${who}: unix socket connected to socket:[${sk.peer}] outside the dumped tree (external unix sockets are not supported)`);
      }
    }
  }
}

/** O_RDONLY/O_WRONLY/O_RDWR from a struct file's f_mode, as /proc/PID/map_files' link mode shows it to CRIU. */
export function mappedFileFlags(file: KObject): number {
  const mode = file.member('f_mode').num();
  if (mode & FMODE_READ && mode & FMODE_WRITE) return 2;
  return mode & FMODE_WRITE ? 1 : 0;
}

/** Whether a struct file is a character device (mappings of devices are refused). */
export function isCharDevice(file: KObject): boolean {
  return (file.member('f_inode').deref().member('i_mode').num() & S_IFMT) === S_IFCHR;
}

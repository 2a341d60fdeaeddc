import { log, logSafe } from '../../common/log.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { PathRoot, dPath } from '../linux/d-path.js';
import { isPseudoFile } from '../linux/deleted-file.js';
import { elfBuildId } from '../linux/elf-build-id.js';
import { FileIdentity, pathIdentity } from '../linux/file-identity.js';
import { fileOwner } from '../linux/file-owner.js';
import { fileKind, forEachFd } from '../linux/files.js';
import { inodeLinks } from '../linux/inode-times.js';
import { inodeSize, isStructFile, openFileState } from '../linux/open-file.js';
import { PageInfo } from '../linux/pages.js';
import { S_IFMT, S_IFREG } from '../linux/stat.js';
import { UnixSocket } from '../linux/unix-sockets.js';
import { fdDumper } from './fds/index.js';
import { GhostFiles } from './ghost-files.js';
import { IdAllocator } from './ids.js';
import { linkedName } from './linked-files.js';
import { ShmemTable } from './shmem.js';
import { TtyTable } from './ttys.js';
import { DumpProblem } from './problem.js';

/** include/uapi/linux/fcntl.h */
const O_ACCMODE = 3;
const O_WRONLY = 1;
const O_APPEND = 0o2000;
const FD_CLOEXEC = 1;

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
  /** Sockets' network namespaces CRIU would know: the dumped tasks' (inode numbers); `own` when the tree's is not the dumper's. */
  netNamespaces?: { tree: ReadonlySet<bigint>; own: boolean };
  /** Connected TCP sockets are dumped for restore to close them (criu --tcp-close). */
  tcpClose?: boolean;
  /** Established TCP sockets are dumped with their repair state and queues (criu --tcp-established). */
  tcpEstablished?: boolean;
  /** The tree's session leaders (their pids there): a dumped tty's session must be one of them. */
  sessionLeaders?: ReadonlySet<number>;
}

const NO_OWNER = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

/**
 * The files of a dump: files.img entries, the fdinfo of each files table,
 * pipe contents and socket queues. Each fd goes to the dumper of its kind
 * (fds/index.ts); ids follow CRIU's (ids.ts). What CRIU could not restore
 * either is collected in `problems` rather than thrown, so one refusal
 * lists all.
 */
export class FileTable {
  /** files.img entries, in the order written. */
  readonly entries: Record<string, unknown>[] = [];
  readonly pipesData: { entry: Record<string, unknown>; data: Buffer }[] = [];
  readonly fifoData: { entry: Record<string, unknown>; data: Buffer }[] = [];
  readonly skQueues: { entry: Record<string, unknown>; data: Buffer }[] = [];
  /** tcp-stream images of established TCP sockets (--tcp-established), by socket inode number. */
  readonly tcpStreams: { ino: bigint; entry: Record<string, unknown>; data: Buffer }[] = [];
  readonly problems: DumpProblem[] = [];
  /** Deleted files' contents and the remaps to them. */
  readonly ghosts = new GhostFiles();
  /** Pipes whose contents are dumped, by inode number. */
  readonly pipesDumped = new Set<bigint>();
  /** FIFOs whose contents are dumped, by inode number. */
  readonly fifosDumped = new Set<bigint>();
  /** Unix sockets dumped, by inode number, to check their peers at the end. */
  readonly unix = new Map<bigint, { id: number; sk: UnixSocket; task: string; fd: string }>();
  /** Shared memory objects met through fds and mappings (memfds, MAP_SHARED|MAP_ANONYMOUS). */
  readonly shmem = new ShmemTable();
  /** Ttys' tty-info entries. */
  readonly ttys = new TtyTable();

  constructor(private readonly o: FileTableOptions) {}

  get root(): PathRoot {
    return this.o.root;
  }

  get ids(): IdAllocator {
    return this.o.ids;
  }

  get pages(): PageInfo {
    return this.o.pages;
  }

  netNsId(net: bigint): number {
    return this.o.netNsId(net);
  }

  get netNamespaces(): { tree: ReadonlySet<bigint>; own: boolean } | undefined {
    return this.o.netNamespaces;
  }

  /** The tree's mount namespace is dumped: files name their mount. */
  get mntIds(): boolean {
    return this.o.mntIds;
  }

  get tcpClose(): boolean {
    return this.o.tcpClose ?? false;
  }

  get tcpEstablished(): boolean {
    return this.o.tcpEstablished ?? false;
  }

  /** Number of a struct pid in the tree's pid namespace, 0 if it has none there. */
  vpid(pid: bigint): number {
    return this.o.vpid(pid);
  }

  /** fown_entry of a file (SIGIO owner), its pid in the tree's pid namespace. */
  fown(file: KObject): Record<string, number> {
    const o = fileOwner(file);
    return { uid: o.uid, euid: o.euid, signum: o.signum, pid_type: o.pidType, pid: o.pid === 0n ? 0 : this.o.vpid(o.pid) };
  }

  /** reg_file_entry of a path (criu/files-reg.c dump_one_reg_file); `dataInode` is where its contents are (overlayfs' real inode). */
  regEntry(id: number, path: KObject, identity: FileIdentity, flags: number, pos: bigint, owner: Record<string, number>, task: string,
    object: string | undefined, dataInode = identity.inode): void {
    let name = dPath(path, this.o.root);
    if (name.endsWith(' (deleted)') && isPseudoFile(path)) {
      this.problems.push(new DumpProblem(task, 'deleted-file', `${name} is an internal shared memory file (not supported yet)`, { object }));
    } else if (name.endsWith(' (deleted)')) {
      name = name.slice(0, -' (deleted)'.length);
      if (inodeLinks(identity.inode) > 0) {
        const linked = linkedName(path, this.o.root, name, task, object);
        if (linked.problem) this.problems.push(linked.problem);
        else name = linked.name;
      } else {
        // criu/files-reg.c: the entry keeps the old name, a ghost file the contents.
        const problem = this.ghosts.remap(id, identity, dataInode, name, task, object);
        if (problem) this.problems.push(problem);
      }
    }
    const mode = identity.mode;
    const reg: Record<string, unknown> = { id, flags, pos, fown: owner, name, mode, ...(this.o.mntIds ? { mnt_id: identity.mntId } : {}) };
    // Size (and build-id) let restore check it reopens the same file; not for files only appended to (logs).
    if ((mode & S_IFMT) === S_IFREG && !((flags & O_ACCMODE) === O_WRONLY && flags & O_APPEND)) {
      const size = inodeSize(identity.inode);
      reg.size = size;
      const buildId = size >= 5n ? elfBuildId(dataInode, Number(size)) : 'none';
      if (typeof buildId === 'object') reg.build_id = buildId.words;
      // As criu dump keeps only the size when it cannot read a build-id (criu/files-reg.c store_validation_data).
      else if (buildId === 'uncached') log.info(`${logSafe(name)}: ELF header not in the guest's page cache; only its size is kept for restore to check`);
    }
    this.entries.push({ type: 'REG', id, reg });
  }

  /** Id of a cwd or root (a struct path), or of an exe or mapped file (a struct file); `object` names it in problems. */
  special(pathOrFile: KObject, task: string, object: string | undefined): number {
    const file = isStructFile(pathOrFile) ? openFileState(pathOrFile) : undefined;
    const path = file ? file.path : pathOrFile;
    const identity = pathIdentity(path);
    const { id, fresh } = this.o.ids.specialId(identity);
    // The data behind a file is its f_inode's: for overlayfs that is the real inode (the path shows the overlay one).
    if (fresh) this.regEntry(id, path, identity, 0, 0n, NO_OWNER, task, object, file?.inode);
    return id;
  }

  /** fdinfo entries of a task's files table, with the files they open. */
  fdinfo(task: KObject, who: string): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const { fd, file, cloexec } of forEachFd(task)) {
      const { path } = openFileState(file);
      const name = dPath(path, this.o.root);
      const kind = fileKind(file, name);
      const toDump = { file, name, kind, identity: pathIdentity(path), owner: task, task: who, fd: `fd ${fd}` };
      const dumper = fdDumper(kind);
      if (!dumper) {
        this.problems.push(new DumpProblem(who, kind, `${name} is a ${kind} (not supported yet)`, { object: toDump.fd }));
        continue;
      }
      const { opened, problems } = dumper.dump(this, toDump);
      if (problems) this.problems.push(...problems);
      if (opened) out.push({ id: opened.id, flags: cloexec ? FD_CLOEXEC : 0, type: opened.type, fd });
    }
    return out;
  }

  /** Checks what only the whole dump shows: every connected unix socket's peer is in it. */
  finish(): void {
    this.problems.push(...this.ttys.finish(this.o.sessionLeaders));
    for (const { sk, task, fd } of this.unix.values()) {
      if (sk.peer !== 0n && !this.unix.has(sk.peer)) {
        this.problems.push(new DumpProblem(task, 'unix-socket',
          `unix socket connected to socket:[${sk.peer}] outside the dumped tree (external unix sockets are not supported)`, { object: fd }));
      }
    }
  }
}

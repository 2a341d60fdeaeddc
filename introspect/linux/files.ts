import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { Program } from '../kernel/program.js';
import { PathRoot, dPath } from './d-path.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from './stat.js';

/** Largest fd table walked; the kernel's own sysctl_nr_open maximum is 1 << 30, real tables are far smaller. */
const MAX_FDS = 1 << 20;
const KINDS_BY_MODE: Record<number, FileKind> = {
  [S_IFREG]: 'regular', [S_IFDIR]: 'directory', [S_IFIFO]: 'fifo', [S_IFSOCK]: 'socket', [S_IFCHR]: 'chardev', [S_IFBLK]: 'blockdev', [S_IFLNK]: 'symlink',
};

export type FileKind = 'regular' | 'directory' | 'fifo' | 'pipe' | 'socket' | 'unix-socket' | 'inet-socket' | 'netlink-socket' | 'chardev' | 'tty' | 'blockdev'
  | 'symlink' | 'eventfd' | 'epoll' | 'signalfd' | 'timerfd' | 'memfd' | 'anon-inode' | 'unknown'
  | 'inotify' | 'io-uring'
  | 'fanotify';

/** What the file operations of a struct file say it is, by the symbol its f_op points at. */
const KINDS_BY_FOPS: Record<string, FileKind> = {
  pipefifo_fops: 'pipe', eventfd_fops: 'eventfd', eventpoll_fops: 'epoll', signalfd_fops: 'signalfd', timerfd_fops: 'timerfd',
  inotify_fops: 'inotify',
  tty_fops: 'tty', hung_up_tty_fops: 'tty', ptmx_fops: 'tty', console_fops: 'tty',
  io_uring_fops: 'io-uring',
  fanotify_fops: 'fanotify',
};

/** One open file of a process, as /proc/PID/fd and fdinfo show it. */
export interface OpenFile {
  fd: number;
  path: string;
  /** f_flags, with O_CLOEXEC from the close-on-exec bitmap (as fdinfo prints it). */
  flags: number;
  pos: bigint;
  mode: number;
  kind: FileKind;
  /** The struct file, for callers that dig further (pipes, sockets). */
  file: bigint;
  inode: bigint;
}

const O_CLOEXEC = 0o2000000;

function bit(bitmap: Buffer, n: number): boolean {
  return (bitmap[n >> 3] & (1 << (n & 7))) !== 0;
}

const fopsCache = new WeakMap<Program, Map<bigint, string>>();

/** The f_op symbols that tell a file's kind, by address, looked up once per kernel. */
function fopsNames(prog: Program): Map<bigint, string> {
  let names = fopsCache.get(prog);
  if (!names) {
    names = new Map();
    for (const name of Object.keys(KINDS_BY_FOPS)) {
      const sym = prog.symbols.lookup(name);
      if (sym) names.set(sym.address, name);
    }
    fopsCache.set(prog, names);
  }
  return names;
}

/** The kind of an open file: its f_op symbol first, then its inode's mode. */
export function fileKind(file: KObject, path: string): FileKind {
  const fops = fopsNames(file.prog).get(file.member('f_op').value());
  if (fops && KINDS_BY_FOPS[fops]) {
    // A FIFO opened by path shares pipefifo_fops with pipes; its inode is not on pipefs.
    if (KINDS_BY_FOPS[fops] === 'pipe' && !path.startsWith('pipe:[')) return 'fifo';
    return KINDS_BY_FOPS[fops];
  }
  if (path.startsWith('/memfd:')) return 'memfd';
  if (path.startsWith('anon_inode:')) return 'anon-inode';
  const mode = file.member('f_inode').deref().member('i_mode').num() & S_IFMT;
  const kind = KINDS_BY_MODE[mode] ?? 'unknown';
  if (kind === 'socket') {
    const sock = file.member('private_data').value();
    if (sock === 0n) return 'socket';
    const sk = KObject.struct(file.prog, 'socket', sock).member('sk').value();
    if (sk === 0n) return 'socket';
    const family = KObject.struct(file.prog, 'sock', sk).member('__sk_common.skc_family').num();
    return family === 1 ? 'unix-socket' : family === 2 || family === 10 ? 'inet-socket' : family === 16 ? 'netlink-socket' : 'socket';
  }
  return kind;
}

/** The open fds of a task, in fd order (files->fdt->fd, open_fds, close_on_exec). */
export function* forEachFd(task: KObject): Generator<{ fd: number; file: KObject; cloexec: boolean }> {
  const prog = task.prog;
  if (task.member('files').value() === 0n) return;
  const fdt = task.member('files').deref().member('fdt').deref();
  const maxFds = fdt.member('max_fds').num();
  if (maxFds > MAX_FDS) throw new BadDataError(`${fdt.path}.max_fds is ${maxFds}`);
  const fdArray = prog.read(fdt.member('fd').value(), maxFds * 8, `${fdt.path}.fd`);
  const bytes = Math.ceil(maxFds / 8);
  const openBits = prog.read(fdt.member('open_fds').value(), bytes, `${fdt.path}.open_fds`);
  const cloexec = prog.read(fdt.member('close_on_exec').value(), bytes, `${fdt.path}.close_on_exec`);
  for (let fd = 0; fd < maxFds; fd++) {
    const ptr = fdArray.readBigUInt64LE(fd * 8);
    if (ptr === 0n || !bit(openBits, fd)) continue;
    yield { fd, file: KObject.struct(prog, 'file', ptr), cloexec: bit(cloexec, fd) };
  }
}

/** The open files of a task, in fd order. */
export function openFiles(task: KObject, root: PathRoot): OpenFile[] {
  return [...forEachFd(task)].map(({ fd, file, cloexec }) => {
    const path = dPath(file.member('f_path'), root);
    return {
      fd,
      path,
      flags: file.member('f_flags').num() | (cloexec ? O_CLOEXEC : 0),
      pos: file.member('f_pos').value(),
      mode: file.member('f_mode').num(),
      kind: fileKind(file, path),
      file: file.address,
      inode: file.member('f_inode').value(),
    };
  });
}

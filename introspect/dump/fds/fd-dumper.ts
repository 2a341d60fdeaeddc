import { KObject } from '../../kernel/object.js';
import { FileIdentity } from '../../linux/file-identity.js';
import { FileKind } from '../../linux/files.js';
import type { FileTable } from '../files.js';
import { DumpProblem } from '../problem.js';

/** What the CRIU file entry of an fd is: a name of images/fdinfo.proto's fd_types ('REG', 'PIPE', 'UNIXSK'; the codec checks it). */
export type FdType = string;

/** An open file to dump, as the table hands it to the dumper of its kind. */
export interface FdToDump {
  file: KObject;
  /** Its path as readlink(/proc/PID/fd/N) shows it. */
  name: string;
  kind: FileKind;
  identity: FileIdentity;
  /** The task_struct whose fd table holds it (epoll targets are fds of that table). */
  owner: KObject;
  /** The task, "pid 12 (sh)", and the fd, "fd 3": how problems name it. */
  task: string;
  fd: string;
}

export interface FdDumped {
  /** The file entry the fd refers to; absent when it cannot be dumped. */
  opened?: { id: number; type: FdType };
  problems?: DumpProblem[];
}

/**
 * The dumper of some kinds of open file (linux/files.ts fileKind), as CRIU
 * keys its fd types (criu/files.c): it writes the file's entry into the
 * table (once per struct file) and returns its id, or what it cannot dump.
 */
export interface FdDumper {
  kinds: readonly FileKind[];
  dump(files: FileTable, fd: FdToDump): FdDumped;
}

/** A problem about one fd: "pid 12 (sh) fd 3: DETAIL". */
export function fdProblem(fd: FdToDump, detail: string): DumpProblem {
  return new DumpProblem(fd.task, fd.kind, detail, { object: fd.fd });
}

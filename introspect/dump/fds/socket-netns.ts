import { FileTable } from '../files.js';
import { FdToDump, fdProblem } from './fd-dumper.js';
import { DumpProblem } from '../problem.js';

/**
 * The ns_id of a socket's entry as CRIU 3.17 sets it: the namespace it
 * collected the socket in through sock_diag (one of the dumped tasks'), or,
 * for a socket sock_diag does not list (unbound), the socket's own namespace
 * only when the tree has a network namespace of its own (root_ns_mask &
 * CLONE_NEWNET). A socket of a namespace no dumped task is in is refused:
 * CRIU finds it in no namespace it collected.
 */
export function socketNsId(files: FileTable, fd: FdToDump, net: bigint, listed: boolean): { ns_id?: number; problem?: DumpProblem } {
  const nets = files.netNamespaces;
  if (nets && !nets.tree.has(net)) {
    return { problem: fdProblem(fd, `socket of a network namespace no dumped task is in (struct net 0x${net.toString(16)})`) };
  }
  return listed || nets?.own ? { ns_id: files.netNsId(net) } : {};
}

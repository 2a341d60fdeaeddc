import { KObject } from '../kernel/object.js';
import { PathRoot } from '../linux/d-path.js';
import { otherName } from '../linux/inode-path.js';
import { DumpProblem } from './problem.js';

/**
 * A file open after the name it was opened by was unlinked, while the inode
 * keeps another (a hard link). criu dump 3.17 links it back in the guest at
 * dump time (--link-remap: link_remap.N beside the old name, a reg-file
 * entry for it and a LINKED remap; without the option it refuses), which a
 * dump from outside cannot do. The other name is already such a link: the
 * entry names it, and stock `criu restore` opens the same inode by it (same
 * contents, writes seen through either). The restored fd shows that name
 * instead of "OLD (deleted)"; the files restore finds must carry it, as for
 * every file opened by name. `name` is the old name, " (deleted)" stripped.
 */
export function linkedName(path: KObject, root: PathRoot, name: string, task: string, object: string | undefined):
  { name: string; problem?: undefined } | { name?: undefined; problem: DumpProblem } {
  const other = otherName(path, root);
  if (other !== undefined) return { name: other };
  return {
    problem: new DumpProblem(task, 'deleted-file', `${name} (deleted) still has another name, but none under its mount is in the guest's ` +
      'dentry cache to open it by (CRIU would link it back at dump time, which needs the guest\'s file system: not supported)', { object }),
  };
}

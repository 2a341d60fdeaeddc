import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from '../kernel/object.js';

/** A kernfs directory with more entries than this is corrupt data (a cgroup directory has a few dozen). */
const MAX_CHILDREN = 1 << 14;

/** Mode and owner of a kernfs node as stat() shows them (fs/kernfs/inode.c: iattr when set, else root). */
export function kernfsPerms(kn: KObject): { mode: number; uid: number; gid: number } {
  const iattr = kn.member('iattr').value();
  const attrs = iattr === 0n ? undefined : KObject.struct(kn.prog, 'kernfs_iattrs', iattr);
  return {
    mode: kn.member('mode').num(),
    uid: attrs ? attrs.member('ia_uid.val').num() : 0,
    gid: attrs ? attrs.member('ia_gid.val').num() : 0,
  };
}

/** The children of a kernfs directory (kn->dir.children, an rbtree through kernfs_node.rb). */
export function* kernfsChildren(kn: KObject): Generator<KObject> {
  const prog = kn.prog;
  const rootNode = kn.member('dir.children.rb_node').value();
  const stack = rootNode === 0n ? [] : [rootNode];
  const seen = new Set<bigint>();
  while (stack.length) {
    const node = stack.pop()!;
    if (seen.has(node) || seen.size >= MAX_CHILDREN) throw new BadDataError(`children of ${kn.path} loop or exceed ${MAX_CHILDREN}`);
    seen.add(node);
    yield containerOf(prog, node, 'kernfs_node', 'rb');
    for (const side of ['rb_left', 'rb_right']) {
      const next = KObject.struct(prog, 'rb_node', node).member(side).value();
      if (next !== 0n) stack.push(next);
    }
  }
}

export function kernfsName(kn: KObject): string {
  return kn.prog.cstring(kn.member('name').value(), 256, `${kn.path}.name`);
}

/** The kernfs directory of a task's cgroup v2 cgroup. */
export function taskCgroupNode(task: KObject): KObject {
  return task.member('cgroups').deref().member('dfl_cgrp').deref().member('kn').deref();
}

import { BadDataError } from '../../common/errors.js';
import { KObject, containerOf } from './object.js';
import { Program } from './program.js';

/**
 * Entries of a kernel rbtree (struct rb_root at `root`) of `structName`
 * linked through the rb_node `memberPath`, in key order (rb_first, rb_next).
 * Walked by child pointers with a stack, so parent colours packed into
 * __rb_parent_color are never needed. Bounded and cycle-checked.
 */
export function* rbInOrder(prog: Program, root: bigint, structName: string, memberPath: string, bound = 1 << 20): Generator<KObject> {
  const left = prog.btf.memberOffset('rb_node', 'rb_left');
  const right = prog.btf.memberOffset('rb_node', 'rb_right');
  const where = `rbtree of ${structName}.${memberPath} at 0x${root.toString(16)}`;
  const seen = new Set<bigint>();
  const stack: bigint[] = [];
  let node = prog.u64(root, `${where}.rb_node`);
  while (node !== 0n || stack.length) {
    while (node !== 0n) {
      if (seen.has(node)) throw new BadDataError(`${where} loops at 0x${node.toString(16)}`);
      if (seen.size >= bound) throw new BadDataError(`${where} has more than ${bound} entries`);
      seen.add(node);
      stack.push(node);
      node = prog.u64(node + BigInt(left), `${where}: rb_left of 0x${node.toString(16)}`);
    }
    const next = stack.pop()!;
    yield containerOf(prog, next, structName, memberPath);
    node = prog.u64(next + BigInt(right), `${where}: rb_right of 0x${next.toString(16)}`);
  }
}

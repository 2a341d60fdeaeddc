import assert from 'node:assert/strict';
import { KObject } from '../../introspect/kernel/object.js';
import { FakeKernel, PAGE_OFFSET, VMEMMAP_BASE } from './helpers/fake-program.js';
import { KERNEL_STRUCTS } from './helpers/kernel-structs.js';

/** The fake kernel the linux/ reader tests stand on: its BTF must say what its writer lays out. */
describe('fake kernel for reader tests', () => {
  const k = new FakeKernel();
  const prog = k.program();

  it('writes BTF whose sizes and member offsets match the layout objects are written with', () => {
    for (const name of Object.keys(KERNEL_STRUCTS)) {
      const layout = k.types.layout(name);
      const t = prog.btf.struct(name);
      assert.equal(t.size, layout.size, `sizeof(struct ${name})`);
      for (const f of layout.fields) {
        const m = prog.btf.member(t, f.name);
        assert.deepEqual([m?.bitOffset, m?.bitSize], [f.bitOffset, f.bitSize], `${name}.${f.name}`);
      }
    }
  });

  it('reads back through the Program what was written, in the image, the direct map and the vmemmap', () => {
    const task = k.new('task_struct', { pid: 42, comm: 'init', frozen: 1, 'tasks.next': 0x1234n });
    const obj = KObject.struct(prog, 'task_struct', task);
    assert.deepEqual([obj.member('pid').num(), obj.member('comm').string(), obj.bitfield('frozen'), obj.member('tasks.next').value()], [42, 'init', 1, 0x1234n]);
    assert.equal(prog.pageOffset, PAGE_OFFSET);
    assert.equal(prog.toPhys(task), task - PAGE_OFFSET);
    const page = k.allocPage();
    k.write(page.page, 'page', { index: 99 });
    assert.ok(page.page >= VMEMMAP_BASE);
    assert.equal(KObject.struct(prog, 'page', page.page).member('index').value(), 99n);
    assert.equal(prog.kernelRoot, k.kernelRoot);
  });
});

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError } from '../../common/errors.js';
import { FileMemory, PhysicalFaultError, layoutFromMtree, q35Layout } from '../../introspect/memory/physical-memory.js';

const GiB = 1n << 30n;
const fixture = (name: string) => fs.readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', name), 'utf8');

describe('guest RAM layout', () => {
  it('q35 keeps RAM of up to 2.75 GiB in one piece at offset 0', () => {
    assert.deepEqual(q35Layout(GiB), [{ gpa: 0n, size: GiB, fileOffset: 0n }]);
    assert.deepEqual(q35Layout(0xb000_0000n - 1n), [{ gpa: 0n, size: 0xb000_0000n - 1n, fileOffset: 0n }]);
  });

  it('q35 puts RAM beyond 2 GiB above 4 GiB once RAM reaches 2.75 GiB', () => {
    assert.deepEqual(q35Layout(3n * GiB), [
      { gpa: 0n, size: 2n * GiB, fileOffset: 0n },
      { gpa: 4n * GiB, size: GiB, fileOffset: 2n * GiB },
    ]);
    assert.deepEqual(q35Layout(4n * GiB)[1], { gpa: 4n * GiB, size: 2n * GiB, fileOffset: 2n * GiB });
  });

  it('q35 honours max-ram-below-4g', () => {
    assert.deepEqual(q35Layout(2n * GiB, GiB)[1], { gpa: 4n * GiB, size: GiB, fileOffset: GiB });
  });

  it('reads the layout from a real `info mtree -f` of a 4 GiB q35 guest', () => {
    const layout = layoutFromMtree(fixture('mtree-q35-4g.txt'), 'mem');
    assert.deepEqual(layout, [
      { gpa: 0n, size: 0xc0000n, fileOffset: 0n },
      { gpa: 0x100000n, size: 0x7ff00000n, fileOffset: 0x100000n },
      { gpa: 4n * GiB, size: 2n * GiB, fileOffset: 2n * GiB },
    ]);
  });

  it('takes only the first flat view, tolerates CRLF, merges contiguous ranges', () => {
    const text = [
      'FlatView #0',
      '  0000000000000000-0000000000000fff (prio 0, ram): mem\r',
      '  0000000000001000-0000000000001fff (prio 0, ram): mem @0000000000001000 KVM\r',
      '  0000000000002000-0000000000002fff (prio 0, ram): other',
      'FlatView #1',
      '  0000000000010000-0000000000010fff (prio 0, ram): mem @0000000000010000',
    ].join('\n');
    assert.deepEqual(layoutFromMtree(text, 'mem'), [{ gpa: 0n, size: 0x2000n, fileOffset: 0n }]);
  });

  it('rejects an mtree without the RAM block', () => {
    assert.throws(() => layoutFromMtree('FlatView #0\n  0-fff (prio 0, ram): pc.ram\n', 'mem'), /no RAM of block mem/);
  });
});

describe('FileMemory', () => {
  let dir: string;
  let file: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-mem-'));
    file = path.join(dir, 'ram');
    const data = Buffer.alloc(3 * 4096);
    for (let i = 0; i < data.length; i++) data[i] = i & 0xff;
    fs.writeFileSync(file, data);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('maps guest-physical addresses through the segments', () => {
    const mem = new FileMemory(file, [
      { gpa: 0n, size: 4096n, fileOffset: 0n },
      { gpa: 0x1_0000_0000n, size: 8192n, fileOffset: 4096n },
    ]);
    try {
      assert.deepEqual([...mem.read(0x10n, 2)], [0x10, 0x11]);
      assert.deepEqual([...mem.read(0x1_0000_0001n, 2)], [(4097) & 0xff, (4098) & 0xff]);
    } finally {
      mem.close();
    }
  });

  it('faults on holes and on reads running past a segment, naming what and where', () => {
    const mem = new FileMemory(file, [{ gpa: 0n, size: 4096n, fileOffset: 0n }]);
    try {
      assert.throws(() => mem.read(0x5000n, 8, 'task_struct'), (err: unknown) =>
        err instanceof PhysicalFaultError && err.address === 0x5000n && /task_struct at guest-physical 0x5000/.test(err.message));
      assert.throws(() => mem.read(4090n, 8), PhysicalFaultError);
      assert.throws(() => mem.read(0n, -1), InvalidArgumentError);
      assert.throws(() => mem.read(0n, 1 << 30), InvalidArgumentError);
    } finally {
      mem.close();
    }
  });

  it('refuses segments beyond the file or overlapping', () => {
    assert.throws(() => new FileMemory(file, [{ gpa: 0n, size: 4n * 4096n, fileOffset: 0n }]), /past the end/);
    assert.throws(() => new FileMemory(file, [
      { gpa: 0n, size: 8192n, fileOffset: 0n },
      { gpa: 4096n, size: 4096n, fileOffset: 8192n },
    ]), /overlap/);
  });
});

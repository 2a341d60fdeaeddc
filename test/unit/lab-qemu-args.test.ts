import assert from 'node:assert/strict';
import { kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { GuestSpec } from '../lab/guest.js';
import { guestPaths } from '../lab/paths.js';
import { qemuArgs } from '../lab/qemu-args.js';

describe('lab QEMU command line by kernel choice', () => {
  const kernel = { version: 'v', root: '/k', vmlinuz: '/k/vmlinuz', modules: '/k/lib/modules/v' };
  const cpu = (kernelChoice: string, paging: 4 | 5 = 5): string => {
    const spec: GuestSpec = { name: 'g', memoryMiB: 1024, cpus: 2, paging, shares: [], virtiofs: [], bootTimeoutMs: 1000, kernelChoice };
    const args = qemuArgs(spec, guestPaths('g'), kernel, '/k/initrd');
    return args[args.indexOf('-cpu') + 1];
  };

  it('hides CX16 from the 6.12 cloud build only (its SLUB fast path under this TCG), with either paging', () => {
    assert.equal(cpu('6.12-cloud'), 'max,cx16=off');
    assert.equal(cpu('6.12-cloud', 4), 'max,la57=off,cx16=off');
    for (const k of ['6.1', '6.12', '6.1-rt', '6.12-rt', '6.1-cloud']) assert.equal(cpu(k), 'max', k);
    assert.equal(cpu('6.1', 4), 'max,la57=off');
  });

  it('names suites and pooled guests of each build apart, 6.1 as before', () => {
    assert.deepEqual(['6.1', '6.12', '6.1-rt', '6.12-cloud'].map(kernelTag), ['', '612', '61rt', '612cloud']);
    assert.equal(kernelTitle('6.1'), '');
    assert.equal(kernelTitle('6.12-rt'), ' (kernel 6.12-rt)');
  });
});

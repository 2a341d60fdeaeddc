import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OvmError } from '../../common/errors.js';
import { Btf } from '../../introspect/btf/index.js';
import { Program } from '../../introspect/kernel/program.js';
import { parseVmcoreinfoText } from '../../introspect/kernel/vmcoreinfo.js';
import { forEachProcess, processInfo } from '../../introspect/linux/tasks.js';
import { AttachRegions, attachableKernel } from '../fuzz/attachable-kernel.js';
import { Rng, describeReport, fuzz, fuzzCases, fuzzSeed, interesting } from '../fuzz/harness.js';
import { RamPatcher } from '../fuzz/ram-patcher.js';

const CASES = fuzzCases();
/** Reads one case may make, in multiples of the uncorrupted attach's reads. */
const WORK_FACTOR = 20;

/** Whatever a typed error says, the caller carries on: only untyped errors fail the run. */
function typedOnly(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof OvmError)) throw err;
  }
}

/** Uses what an attach returned the way callers do: every BTF type, and the task list. */
function exercise(prog: Program): void {
  const btf = prog.btf;
  for (let id = 0; id < btf.count; id++) {
    typedOnly(() => {
      btf.type(id);
      btf.resolve(id);
      btf.sizeof(id);
    });
  }
  typedOnly(() => btf.struct('task_struct'));
  typedOnly(() => {
    for (const task of forEachProcess(prog)) processInfo(task);
  });
}

/** A vmcoreinfo text corrupted line by line: values replaced, lines dropped, doubled or garbled. */
function mutateVmcoreinfoText(rng: Rng, text: string): string {
  const lines = text.split('\n');
  for (let n = 1 + rng.int(3); n > 0; n--) {
    const i = rng.int(lines.length);
    const [key] = lines[i].split('=');
    switch (rng.int(6)) {
      case 0: lines.splice(i, 1); break;
      case 1: lines.splice(i, 0, lines[i]); break;
      case 2: lines[i] = `${key}=${interesting(rng).toString(16)}`; break;
      case 3: lines[i] = `${key}=${rng.pick(['', '-1', '-', '0x10', 'ffffffffffffffffff', '99999999999999999999999', 'z', ' 1'])}`; break;
      case 4: lines[i] = `${key}=${BigInt.asIntN(64, interesting(rng))}`; break;
      default: lines[i] = lines[i].slice(0, rng.int(lines[i].length + 1)) + String.fromCharCode(rng.int(256));
    }
  }
  return lines.join('\n');
}

describe('fuzz: attaching to a hostile kernel (vmcoreinfo, kallsyms, BTF)', function () {
  this.timeout(Math.max(60_000, CASES * 100));
  const guest = attachableKernel();
  const ram = guest.kernel.ram;
  const patcher = new RamPatcher(ram.ram);
  const regions: AttachRegions = guest.regions;
  const noteText = ram.ram.toString('latin1', Number(regions.vmcoreinfo.at) + 24, Number(regions.vmcoreinfo.at) + regions.vmcoreinfo.size);
  const symbolValues = guest.symbols.map((s) => s.address);
  let cache: string;
  const saved = process.env.OVMIGRATE_CACHE;
  const listing = () => (fs.existsSync(path.join(cache, 'kallsyms')) ? fs.readdirSync(path.join(cache, 'kallsyms')).sort().join(',') : '');

  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-fuzz-attach-'));
    process.env.OVMIGRATE_CACHE = cache;
  });
  after(() => {
    if (saved === undefined) delete process.env.OVMIGRATE_CACHE;
    else process.env.OVMIGRATE_CACHE = saved;
    fs.rmSync(cache, { recursive: true, force: true });
  });
  afterEach(() => patcher.restore());

  it('the uncorrupted fake guest attaches', () => {
    exercise(Program.attach(ram));
  });

  /** Reads of guest memory by every attach and what used it: the RAM's own, and those each Program's cache served. */
  let programReads = 0;
  const reads = () => ram.reads + programReads;

  /** One case: corrupt, attach, use; a failed attach must leave the host's cache as it was. */
  async function attachCase(corrupt: () => void): Promise<string> {
    patcher.restore();
    corrupt();
    const before = listing();
    let prog: Program;
    try {
      prog = Program.attach(ram);
    } catch (err) {
      assert.equal(listing(), before, 'a failed attach writes nothing to the cache');
      throw err;
    }
    try {
      exercise(prog);
    } finally {
      programReads += prog.mem.reads;
    }
    return 'ok';
  }

  const targets: [string, number, (rng: Rng) => void][] = [
    ['vmcoreinfo note', 0x5eed0001, (rng) => {
      if (rng.chance(0.5)) {
        const text = mutateVmcoreinfoText(rng, noteText);
        const note = Buffer.alloc(24 + text.length);
        note.writeUInt32LE(11, 0);
        note.writeUInt32LE(rng.chance(0.9) ? Buffer.byteLength(text, 'latin1') : Number(interesting(rng) & 0xffffffffn), 4);
        note.write('VMCOREINFO\0', 12, 'latin1');
        note.write(text, 24, 'latin1');
        patcher.write(Number(regions.vmcoreinfo.at), note.subarray(0, Math.min(note.length, 4096)));
      } else {
        for (let n = 1 + rng.int(3); n > 0; n--) patcher.mutate(rng, regions.vmcoreinfo);
      }
      if (rng.chance(0.2)) patcher.mutate(rng, regions.utsname);
    }],
    ['kallsyms tables', 0x5eed0002, (rng) => {
      const parts = [regions.numSyms, regions.tokenIndex, regions.tokenTable, regions.names, regions.names, regions.offsets, regions.relativeBase];
      for (let n = 1 + rng.int(4); n > 0; n--) patcher.mutate(rng, rng.pick(parts), symbolValues);
    }],
    ['BTF', 0x5eed0003, (rng) => {
      for (let n = 1 + rng.int(4); n > 0; n--) {
        // The header and the type records more often than the strings.
        const header = rng.chance(0.2);
        patcher.mutate(rng, header ? { at: regions.btf.at, size: 24 } : regions.btf);
      }
    }],
  ];

  for (const [what, seed, corrupt] of targets) {
    it(`${what}: ${CASES} corruptions give an attach or a typed error, in bounded reads and memory, and write nothing when they fail`, async () => {
      // A case may read a few times what the uncorrupted attach and its use read, never without bound.
      const before = reads();
      await attachCase(() => undefined);
      const clean = reads() - before;
      const work = { count: reads, perCase: WORK_FACTOR * clean, what: 'reads of guest memory' };
      const report = await fuzz({ name: `fuzz-attach ${what}`, seed: fuzzSeed(seed), cases: CASES, work },
        (rng) => attachCase(() => corrupt(rng)));
      console.log(`      ${describeReport(report)}`);
      assert.ok((report.outcomes.ok ?? 0) < CASES, 'some corruptions are caught');
      const files = listing().split(',').filter(Boolean);
      assert.ok(files.length <= 16, `the cache holds ${files.length} files`);
    });
  }

  it(`BTF blobs alone: ${CASES} corruptions parse and decode to types or typed errors`, async () => {
    const blob = Buffer.from(ram.ram.subarray(Number(regions.btf.at), Number(regions.btf.at) + regions.btf.size));
    const report = await fuzz({ name: 'fuzz-attach BTF blob', seed: fuzzSeed(0x5eed0004), cases: CASES * 5 }, (rng) => {
      const b = Buffer.from(blob);
      const p = new RamPatcher(b);
      for (let n = 1 + rng.int(8); n > 0; n--) p.mutate(rng, rng.chance(0.2) ? { at: 0n, size: 24 } : { at: 0n, size: b.length });
      const cut = rng.chance(0.1) ? b.subarray(0, rng.int(b.length)) : b;
      const btf = Btf.parse(cut);
      for (let id = 0; id < btf.count; id++) typedOnly(() => { btf.type(id); btf.sizeof(id); });
      for (const name of ['task_struct', 'mm_struct', 'maple_range_64', 'xa_node']) typedOnly(() => btf.memberOffset(name, 'pid'));
      return 'ok';
    });
    console.log(`      ${describeReport(report)}`);
  });

  it(`vmcoreinfo text alone: ${CASES} corruptions parse or give typed errors`, async () => {
    const report = await fuzz({ name: 'fuzz-attach vmcoreinfo text', seed: fuzzSeed(0x5eed0005), cases: CASES * 5 }, (rng) => {
      parseVmcoreinfoText(mutateVmcoreinfoText(rng, noteText));
      return 'ok';
    });
    console.log(`      ${describeReport(report)}`);
  });
});

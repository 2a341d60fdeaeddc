import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadDataError } from '../../common/errors.js';
import { KALLSYMS_CACHE_LIMITS, writeCachedNames } from '../../introspect/kernel/kallsyms-cache.js';
import { KSYM_NAME_LEN, decodeNames } from '../../introspect/kernel/kallsyms.js';
import { Program } from '../../introspect/kernel/program.js';
import { attachableKernel, plainNames, plainTokens } from '../fuzz/attachable-kernel.js';
import { assertOvmError } from './helpers/assert-ovm.js';

describe('kallsyms from guest RAM, and its host cache', () => {
  let cache: string;
  const saved = process.env.OVMIGRATE_CACHE;
  const cached = () => (fs.existsSync(path.join(cache, 'kallsyms')) ? fs.readdirSync(path.join(cache, 'kallsyms')) : []);
  beforeEach(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-kallsyms-'));
    process.env.OVMIGRATE_CACHE = cache;
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.OVMIGRATE_CACHE;
    else process.env.OVMIGRATE_CACHE = saved;
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('attaches to a kernel found from RAM alone, caching its names only then, and reads them back', () => {
    const g = attachableKernel();
    const prog = Program.attach(g.kernel.ram);
    assert.equal(prog.info.osRelease, g.release);
    for (const s of g.symbols) assert.equal(prog.symbols.lookup(s.name)?.address, s.address, s.name);
    assert.equal(cached().length, 1);
    const again = Program.attach(g.kernel.ram);
    assert.equal(again.symbols.address('init_task'), g.kernel.symbolAddress('init_task'));
    assert.equal(cached().length, 1);
  });

  it('rejects a name that expands past KSYM_NAME_LEN, and writes nothing', () => {
    // One token of 300 bytes: a name of two of them is 600 bytes from a 3-byte entry.
    const g = attachableKernel((symbols) => {
      const tokens = plainTokens();
      tokens[1] = 'x'.repeat(300);
      const names = plainNames(symbols);
      return { tokens, names: Buffer.concat([Buffer.from([2, 1, 1]), names.subarray(names[0] + 1)]) };
    });
    assertOvmError(() => Program.attach(g.kernel.ram), BadDataError);
    assert.deepEqual(cached(), []);
    assert.ok(KSYM_NAME_LEN === 512);
  });

  it('rejects names that together expand far beyond their stream (a disk- and memory-filling kernel), and writes nothing', () => {
    // Names of 500 bytes from 3 stream bytes each: within KSYM_NAME_LEN, but 160 times the stream.
    const tokens = plainTokens();
    tokens[1] = 'T' + 'y'.repeat(249);
    tokens[2] = 'z'.repeat(250);
    const names = Buffer.concat(Array.from({ length: 20_000 }, () => Buffer.from([2, 1, 2])));
    const g = attachableKernel(() => ({ tokens, names, count: 20_000 }));
    assertOvmError(() => Program.attach(g.kernel.ram), BadDataError);
    assert.deepEqual(cached(), []);
    // Refused once the decoded bytes pass 16 times the stream (one name over at most), not after all 10 MB.
    const stats = { decodedBytes: 0 };
    assertOvmError(() => decodeNames(names, 20_000, tokens, stats), BadDataError);
    assert.ok(stats.decodedBytes > 0 && stats.decodedBytes <= 16 * names.length + KSYM_NAME_LEN, `decoded ${stats.decodedBytes} bytes`);
  });

  it('a kernel whose attach fails after its names decode (init_task is not the idle task) writes nothing', () => {
    const g = attachableKernel();
    g.kernel.write(g.kernel.symbolAddress('init_task'), 'task_struct', { pid: 42 });
    assertOvmError(() => Program.attach(g.kernel.ram), BadDataError);
    assert.deepEqual(cached(), []);
  });

  it('a kernel whose BTF is corrupt writes nothing', () => {
    const g = attachableKernel();
    g.kernel.ram.ram.writeUInt16LE(0x1234, Number(g.regions.btf.at));
    assertOvmError(() => Program.attach(g.kernel.ram), BadDataError);
    assert.deepEqual(cached(), []);
  });

  it('keeps the cache within its file limit, dropping the least recently used', () => {
    const keys = Array.from({ length: KALLSYMS_CACHE_LIMITS.files + 5 }, (_, i) => i.toString(16).padStart(32, '0'));
    const old = new Date(Date.now() - 3600_000);
    const limit = KALLSYMS_CACHE_LIMITS.files;
    for (const key of keys.slice(0, limit)) {
      writeCachedNames(key, ['Ta', 'Tb']);
      // Older than the next, whatever the file system's timestamp resolution.
      fs.utimesSync(path.join(cache, 'kallsyms', `${key}.txt`), old, old);
      old.setTime(old.getTime() + 1000);
    }
    writeCachedNames(keys[0], undefined);
    for (const key of keys.slice(limit)) writeCachedNames(key, ['Ta', 'Tb']);
    const left = cached().sort();
    assert.equal(left.length, KALLSYMS_CACHE_LIMITS.files);
    assert.ok(left.includes(`${keys[0]}.txt`), 'a used entry is kept');
    assert.ok(!left.includes(`${keys[1]}.txt`), 'the least recently used goes');
    assert.ok(left.includes(`${keys[keys.length - 1]}.txt`));
  });
});

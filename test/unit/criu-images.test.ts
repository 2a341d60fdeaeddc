import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadDataError, InvalidArgumentError } from '../../common/errors.js';
import { decodeImage, encodeImage, entryObject, makeEntry } from '../../introspect/criu/index.js';
import { requirePrograms } from '../helpers/cli.js';

/** Images written by a real `criu dump` (CRIU 3.17.1) in a lab guest. */
const FIXTURES = path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'criu');

describe('CRIU image codec', () => {
  for (const file of fs.readdirSync(FIXTURES)) {
    it(`decodes ${file} from a real dump and re-encodes it byte for byte`, () => {
      const raw = fs.readFileSync(path.join(FIXTURES, file));
      const image = decodeImage(raw, file);
      assert.ok(image.entries.length > 0);
      assert.ok(encodeImage(image.kind.name, image.entries).equals(raw));
    });
  }

  it('reads the values crit shows', () => {
    const pstree = decodeImage(fs.readFileSync(path.join(FIXTURES, 'pstree.img')));
    assert.equal(pstree.kind.name, 'PSTREE');
    assert.deepEqual(entryObject(pstree, 0).threads, [entryObject(pstree, 0).pid]);
    const inventory = entryObject(decodeImage(fs.readFileSync(path.join(FIXTURES, 'inventory.img'))), 0);
    assert.equal(inventory.img_version, 2);
    assert.equal(inventory.lsmtype, 'NO_LSM');
    const pagemap = decodeImage(fs.readFileSync(path.join(FIXTURES, 'pagemap-167.img')));
    assert.ok('pages_id' in entryObject(pagemap, 0));
    assert.match(String(entryObject(pagemap, 1).vaddr), /^\d+$/);
    const pipes = decodeImage(fs.readFileSync(path.join(FIXTURES, 'pipes-data.img')));
    assert.equal(pipes.entries[0].extra?.length, entryObject(pipes, 0).bytes);
  });

  it('refuses to encode an entry missing a proto2 required field', () => {
    assert.throws(() => makeEntry('pstree_entry', { pid: 1, ppid: 0, pgid: 1 }), (e: unknown) => e instanceof InvalidArgumentError && /sid/.test(e.message));
    const vma = { start: 0n, end: 4096n, pgoff: 0n, shmid: 0n, prot: 3, flags: 0x22, status: 1 };
    assert.throws(() => makeEntry('mm_entry', {
      mm_start_code: 0n, mm_end_code: 0n, mm_start_data: 0n, mm_end_data: 0n, mm_start_stack: 0n, mm_start_brk: 0n, mm_brk: 0n,
      mm_arg_start: 0n, mm_arg_end: 0n, mm_env_start: 0n, mm_env_end: 0n, exe_file_id: 1, vmas: [vma],
    }), /mm_entry.vmas\[0\].fd is required/);
  });

  it('keeps bytes fields given as Buffer (siginfo, unix socket names)', () => {
    const siginfo = Buffer.from([12, 0, 0, 0, 0, 0, 0, 0, 0xff, 1]);
    const core = decodeImage(encodeImage('CORE', [makeEntry('core_entry', {
      mtype: 'X86_64', thread_core: { futex_rla: 0n, futex_rla_len: 24, signals_p: { signals: [{ siginfo }] } },
    })]));
    const msg = core.entries[0].message as unknown as { thread_core: { signals_p: { signals: { siginfo: Uint8Array }[] } } };
    assert.deepEqual(Buffer.from(msg.thread_core.signals_p.signals[0].siginfo), siginfo);
  });

  it('refuses pipe data whose length disagrees with its entry', () => {
    const e = makeEntry('pipe_data_entry', { pipe_id: 5, bytes: 4 }, Buffer.from('abc'));
    assert.throws(() => encodeImage('PIPES_DATA', [e]), InvalidArgumentError);
  });

  it('rejects truncated and oversized images with BadDataError', () => {
    const raw = fs.readFileSync(path.join(FIXTURES, 'mm-167.img'));
    for (let cut = 0; cut < raw.length; cut += 7) {
      try {
        decodeImage(raw.subarray(0, cut));
      } catch (e) {
        assert.ok(e instanceof BadDataError, `cut at ${cut}: ${(e as Error).message}`);
      }
    }
    const huge = Buffer.from(raw);
    huge.writeUInt32LE(0xffffffff, 8);
    assert.throws(() => decodeImage(huge), BadDataError);
    assert.throws(() => decodeImage(Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])), /unknown image magic/);
  });

  it('writes images that crit decodes to the same values', function () {
    requirePrograms(this, ['crit']);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-crit-'));
    try {
      const pstree = encodeImage('PSTREE', [makeEntry('pstree_entry', { pid: 42, ppid: 1, pgid: 42, sid: 42, threads: [42, 43] })]);
      const mm = encodeImage('MM', [makeEntry('mm_entry', {
        mm_start_code: 0x55550000n, mm_end_code: 0x55560000n, mm_start_data: 0n, mm_end_data: 0n, mm_start_stack: 0x7ffff000n,
        mm_start_brk: 0n, mm_brk: 0n, mm_arg_start: 0n, mm_arg_end: 0n, mm_env_start: 0n, mm_env_end: 0n, exe_file_id: 3,
        vmas: [{ start: 0x7fff0000n, end: 0x7ffff000n, pgoff: 0n, shmid: 0n, prot: 3, flags: 0x22, status: 0x41, fd: -1 }],
      })]);
      const pipes = encodeImage('PIPES_DATA', [makeEntry('pipe_data_entry', { pipe_id: 7, bytes: 5, size: 65536 }, Buffer.from('hello'))]);
      fs.writeFileSync(path.join(dir, 'pstree.img'), pstree);
      fs.writeFileSync(path.join(dir, 'mm-42.img'), mm);
      fs.writeFileSync(path.join(dir, 'pipes-data.img'), pipes);
      const crit = (f: string) => JSON.parse(execFileSync('crit', ['decode', '-i', path.join(dir, f)], { encoding: 'utf8' })) as
        { magic: string; entries: Record<string, unknown>[] };
      const t = crit('pstree.img');
      assert.equal(t.magic, 'PSTREE');
      assert.deepEqual(t.entries[0], { pid: 42, ppid: 1, pgid: 42, sid: 42, threads: [42, 43] });
      const m = crit('mm-42.img').entries[0] as { mm_start_code: string; vmas: { start: string; fd: number }[] };
      assert.equal(BigInt(m.mm_start_code), 0x55550000n);
      assert.deepEqual([BigInt(m.vmas[0].start), m.vmas[0].fd], [0x7fff0000n, -1]);
      const p = crit('pipes-data.img').entries[0] as { extra: string };
      assert.equal(Buffer.from(p.extra, 'base64').toString(), 'hello');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

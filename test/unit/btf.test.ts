import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { BadDataError, NotFoundError } from '../../common/errors.js';
import { Btf } from '../../introspect/btf/index.js';
import { missingComponent } from '../helpers/cli.js';
import { BtfBuilder } from './helpers/btf-builder.js';

/** A small kernel-like type graph: anonymous unions, bitfields, qualifier chains, enums, arrays. */
function sample(): Buffer {
  const b = new BtfBuilder();
  const u32 = b.int('unsigned int', 4);
  const s64 = b.int('long long', 8, true);
  const chr = b.int('char', 1, true);
  const u32t = b.typedef('u32', u32);
  const cu32 = b.qual('const', u32t);
  const vcu32 = b.qual('volatile', cu32);
  const listHead = b.fwd('list_head');
  const comm = b.array(chr, u32, 16);
  const inner = b.struct('', 8, [['lo', u32, 0], ['hi', u32, 32]]);
  const anon = b.struct('', 8, [['raw', s64, 0], ['', inner, 0]], true);
  const task = b.struct('task', 48, [['state', vcu32, 0], ['flags', u32, 32, 3], ['prio', u32, 35, 5], ['', anon, 64], ['comm', comm, 128], ['next', 0, 256]]);
  const taskPtr = b.ptr(task);
  const holder = b.struct('holder', 56, [['t', task, 0], ['p', taskPtr, 384]]);
  b.enumType('state', [['RUNNING', 0], ['DEAD', -1]], true);
  b.enum64('big', [['HUGE', 0xfedcba9876543210n]]);
  b.func('do_it', b.funcProto(u32, [['t', taskPtr]]));
  void listHead; void holder;
  return b.build();
}

describe('BTF', () => {
  const btf = Btf.parse(sample());

  it('decodes every kind and looks types up by name and kind', () => {
    assert.equal(btf.struct('task').size, 48);
    assert.equal(btf.byName('state', 'enum')?.kind, 'enum');
    assert.equal(btf.byName('do_it')?.kind, 'func');
    assert.equal(btf.byName('list_head')?.kind, 'fwd');
    assert.equal(btf.byName('task', 'union'), undefined);
    assert.throws(() => btf.struct('nope'), NotFoundError);
    for (let id = 0; id < btf.count; id++) btf.type(id);
  });

  it('finds members inside anonymous unions and structs, with their bit offsets', () => {
    const task = btf.struct('task');
    assert.deepEqual(btf.member(task, 'raw'), { name: 'raw', type: btf.byName('long long')!.id, bitOffset: 64, bitSize: 0 });
    assert.equal(btf.member(task, 'hi')?.bitOffset, 96);
    assert.deepEqual([btf.member(task, 'prio')?.bitOffset, btf.member(task, 'prio')?.bitSize], [35, 5]);
    assert.equal(btf.memberOffset('holder', 't.comm'), 16);
    assert.equal(btf.memberOffset('holder', 't.hi'), 12);
    assert.ok(btf.hasMember('task', 'lo'));
    assert.ok(!btf.hasMember('task', 'missing'));
    assert.throws(() => btf.memberOffset('task', 'flags'), BadDataError);
  });

  it('resolves typedef/const/volatile chains and computes sizes', () => {
    const state = btf.member(btf.struct('task'), 'state')!;
    assert.equal(btf.resolve(state.type).name, 'unsigned int');
    assert.equal(btf.sizeof(state.type), 4);
    assert.equal(btf.sizeof(btf.member(btf.struct('task'), 'comm')!.type), 16);
    assert.equal(btf.sizeof(btf.member(btf.struct('holder'), 'p')!.type), 8);
    assert.throws(() => btf.sizeof(btf.byName('do_it')!.id), BadDataError);
  });

  it('reads signed and 64-bit enum values', () => {
    const e = btf.byName('state', 'enum');
    assert.ok(e?.kind === 'enum');
    assert.deepEqual(e.values.map((v) => v.value), [0n, -1n]);
    const big = btf.byName('big');
    assert.ok(big?.kind === 'enum64');
    assert.equal(big.values[0].value, 0xfedcba9876543210n);
  });

  it('rejects bad headers', () => {
    const good = sample();
    const bad = (f: (b: Buffer) => void) => { const b = Buffer.from(good); f(b); return b; };
    assert.throws(() => Btf.parse(good.subarray(0, 10)), BadDataError);
    assert.throws(() => Btf.parse(bad((b) => b.writeUInt16LE(0x9feb, 0))), /big-endian/);
    assert.throws(() => Btf.parse(bad((b) => { b[2] = 2; })), BadDataError);
    assert.throws(() => Btf.parse(bad((b) => b.writeUInt32LE(0xffffffff, 12))), BadDataError);
    assert.throws(() => Btf.parse(bad((b) => b.writeUInt32LE(0xffffff, 16))), BadDataError);
  });

  it('survives thousands of random corruptions with typed errors only', function () {
    this.timeout(20_000);
    const good = sample();
    let seed = 12345;
    const rand = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    let failures = 0;
    for (let i = 0; i < 5000; i++) {
      const b = Buffer.from(good);
      for (let k = 0; k <= rand(4); k++) {
        const at = 24 + rand(b.length - 28);
        if (rand(2)) b[at] = rand(256);
        else b.writeUInt32LE(rand(2) ? rand(0x7fffffff) : rand(64), at - (at % 4));
      }
      try {
        const t = Btf.parse(b);
        for (let id = 0; id < t.count; id++) {
          const type = t.type(id);
          try { t.sizeof(id); } catch (e) { if (!(e instanceof BadDataError)) throw e; }
          if (type.kind === 'struct' || type.kind === 'union') for (const m of type.members) t.member(type, m.name);
        }
        t.byName('task');
      } catch (e) {
        if (!(e instanceof BadDataError) && !(e instanceof NotFoundError)) throw e;
        failures++;
      }
    }
    assert.ok(failures > 100, `most corruptions are caught (${failures})`);
  });
});

/** Member offsets of a struct as pahole prints them: top-level named, non-bitfield members. */
function paholeLayout(name: string): { size: number; members: Map<string, number> } {
  const out = spawnSync('pahole', ['-C', name, '/sys/kernel/btf/vmlinux'], { encoding: 'utf8' }).stdout;
  const members = new Map<string, number>();
  let depth = 0;
  let size = -1;
  for (const line of out.split('\n')) {
    const m = /^\t(?!\t).*?[\s*]([A-Za-z_]\w*)(\[\d*\])*;\s+\/\*\s+(\d+)\s+\d+\s+\*\//.exec(line);
    if (depth === 1 && m) members.set(m[1], Number(m[3]));
    const s = /\/\* size: (\d+),/.exec(line);
    if (s && depth === 1) size = Number(s[1]);
    depth += (line.match(/{/g) ?? []).length - (line.match(/}/g) ?? []).length;
  }
  return { size, members };
}

describe('BTF against pahole on the host kernel', function () {
  // 18 pahole runs over the host's whole BTF: seconds on a loaded machine.
  this.timeout(120_000);
  const structs = ['task_struct', 'mm_struct', 'vm_area_struct', 'file', 'dentry', 'inode', 'pid', 'upid', 'nsproxy',
    'mount', 'cred', 'signal_struct', 'sighand_struct', 'fs_struct', 'files_struct', 'fdtable', 'maple_tree', 'thread_struct'];

  before(function () {
    const missing = [!fs.existsSync('/sys/kernel/btf/vmlinux') && '/sys/kernel/btf/vmlinux',
      spawnSync('sh', ['-c', 'command -v pahole']).status !== 0 && 'pahole'].filter(Boolean);
    if (missing.length) missingComponent(this, `missing ${missing.join(', ')}`);
  });

  it('gives every struct the size and member offsets pahole gives', () => {
    const btf = Btf.parse(fs.readFileSync('/sys/kernel/btf/vmlinux'));
    let compared = 0;
    for (const name of structs) {
      const expected = paholeLayout(name);
      const struct = btf.struct(name);
      assert.equal(struct.size, expected.size, `sizeof(struct ${name})`);
      assert.ok(expected.members.size > 0, `pahole printed members of ${name}`);
      for (const [member, offset] of expected.members) {
        assert.equal(btf.memberOffset(name, member), offset, `${name}.${member}`);
        compared++;
      }
    }
    assert.ok(compared > 200, `compared ${compared} members`);
  });
});

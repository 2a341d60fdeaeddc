import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OvmError } from '../../common/errors.js';
import { KObject } from '../../introspect/kernel/object.js';
import { Program } from '../../introspect/kernel/program.js';
import { taskRoot } from '../../introspect/linux/d-path.js';
import { openFiles } from '../../introspect/linux/files.js';
import { forEachVma, mapsText } from '../../introspect/linux/mm.js';
import { fpuState } from '../../introspect/arch/x86-fpu.js';
import { userRegisters } from '../../introspect/arch/x86-user-regs.js';
import { credentials } from '../../introspect/linux/credentials.js';
import { namespaces } from '../../introspect/linux/namespaces.js';
import { signalState } from '../../introspect/linux/signals.js';
import { findTask, forEachProcess, processInfo } from '../../introspect/linux/tasks.js';
import { readUserMemory } from '../../introspect/linux/user-memory.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { dumpTree } from '../../introspect/dump/dump.js';
import { treeOfPid } from '../../introspect/dump/tree.js';
import { mounts } from '../../introspect/linux/mounts.js';
import { tmpfsEntries } from '../../introspect/linux/tmpfs.js';
import { describeReport, fuzz, fuzzCases, fuzzSeed } from '../fuzz/harness.js';
import { requirePrograms } from '../helpers/cli.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { OverlayMemory } from '../helpers/overlay-memory.js';

const CASES = 1000;
/**
 * Reads of guest memory one case may make, in multiples of what the same
 * readers read of the uncorrupted snapshot: a walk led astray reads more,
 * a hang reads without end. Work is counted, never timed (CI is loaded).
 */
const WORK_FACTOR = 50;
/** Dumps of corrupted RAM: a short run in `make test`, OVMIGRATE_FUZZ_CASES in `make fuzz`. */
const DUMP_CASES = fuzzCases(60);
const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');

/** Kernel objects worth corrupting: address and size of each, found in the clean snapshot. */
interface Target {
  what: string;
  address: bigint;
  size: number;
  /** Offsets of pointer members (and list_head links): corrupting those exercises the walkers most. */
  pointers: number[];
}

function pointerOffsets(prog: Program, obj: KObject): number[] {
  const t = obj.type;
  if (t.kind !== 'struct' && t.kind !== 'union') return [];
  const out: number[] = [];
  for (const m of t.members) {
    if (m.bitSize || m.bitOffset % 64) continue;
    const mt = prog.btf.resolve(m.type);
    if (mt.kind === 'ptr') out.push(m.bitOffset / 8);
    else if ((mt.kind === 'struct' || mt.kind === 'union') && mt.name === 'list_head') out.push(m.bitOffset / 8, m.bitOffset / 8 + 8);
  }
  return out;
}

function targets(prog: Program, pid: number): Target[] {
  const out: Target[] = [];
  const add = (what: string, obj: KObject) => out.push({ what, address: obj.address, size: obj.size, pointers: pointerOffsets(prog, obj) });
  for (const task of forEachProcess(prog)) add('task_struct', task);
  const task = findTask(prog, pid);
  const mm = task.member('mm').deref();
  add('mm_struct', mm);
  for (const vma of forEachVma(mm)) add('vm_area_struct', vma);
  for (const f of openFiles(task, taskRoot(task))) {
    const file = KObject.struct(prog, 'file', f.file);
    add('file', file);
    add('dentry', file.member('f_path.dentry').deref());
  }
  for (const m of ['cred', 'signal', 'sighand', 'fs', 'files', 'nsproxy', 'thread_pid']) add(m, task.member(m).deref());
  add('maple_tree root node', KObject.struct(prog, 'maple_node', mm.member('mm_mt.ma_root').value() & ~0xffn));
  return out;
}

describe('introspection of corrupted guest RAM', function () {
  const suite = new PoolSuite('fuzz', [{}]);
  const guestSh = suite.sh;
  let snapshot: string;
  let pid: number;
  let dumpPid: number;
  let layout: { gpa: bigint; size: bigint; fileOffset: bigint }[];

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'gcc']);
    const [guest] = await suite.guests();
    pid = Number((await guestSh(guest.name, 'cd /tmp; exec 3>/tmp/fz; setsid sh -c "sleep 1000" 3>&3 </dev/null >/dev/null 2>&1 & echo $!')).trim());
    // A frozen tree for the dump: two processes with a pipe and a socket pair in flight, a file open on tmpfs (with an flock),
    // cwd on tmpfs, a FIFO with data, a deleted file, and an inotify watching the tmpfs (fd 8); below its root, a parent and
    // child sharing anonymous memory, a memfd and a /dev/shm file (test/programs/shmem.c).
    const share = suite.dir;
    for (const name of ['ipc', 'shmem']) execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, name), path.join(PROGRAMS, `${name}.c`)]);
    const cg = `/sys/fs/cgroup${suite.cgroup}/dumpfz`;
    const inotify = 'import ctypes, os, sys; l = ctypes.CDLL(None); os.dup2(l.inotify_init(), 8); l.inotify_add_watch(8, b"/dev/shm/fz", 0x100); os.execv(sys.argv[1], sys.argv[1:])';
    dumpPid = Number((await guestSh(guest.name, `
      mkdir -p ${cg} /dev/shm/fz; cd /dev/shm/fz; echo data > /dev/shm/fz/open; echo gone > /dev/shm/fz/gone; mkfifo /dev/shm/fz/fifo
      setsid sh -c 'echo $$ > ${cg}/cgroup.procs; ${share}/shmem /dev/shm/fz/shm > /dev/null & exec 5</dev/shm/fz/open 6<>/dev/shm/fz/fifo 7</dev/shm/fz/gone; echo queued >&6; flock -s 5;
        exec python3 -c '"'"'${inotify}'"'"' ${share}/ipc' > /dev/shm/fz/ipc.log 2>&1 </dev/null &
      sleep 2; rm /dev/shm/fz/gone; head -1 ${cg}/cgroup.procs`)).trim());
    assert.ok(dumpPid > 1, 'the ipc tree started');
    await guestSh(guest.name, `echo 1 > ${cg}/cgroup.freeze; while ! grep -q 'frozen 1' ${cg}/cgroup.events; do sleep 0.1; done`);
    await guestSh(guest.name, 'sync; sleep 1');
    // A snapshot of the real guest's RAM: the fuzzer corrupts an overlay of it, never the guest.
    snapshot = `/dev/shm/ovmigrate-fuzz-${process.pid}.mem`;
    fs.copyFileSync(guest.memoryFile, snapshot);
    layout = guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) }));
    // The snapshot holds the tree frozen; the guest's own copy goes on, and leave() ends it.
    await guestSh(guest.name, `echo 0 > ${cg}/cgroup.freeze`);
    await suite.leave();
  });
  after(() => fs.rmSync(snapshot, { force: true }));

  it(`gives typed errors, never a crash, a hang or runaway memory, on ${CASES} corruptions of kernel structures`, function () {
    // A hang guard only: the bound that matters is each case's reads.
    this.timeout(CASES * 1000);
    const mem = new OverlayMemory(new FileMemory(snapshot, layout));
    try {
      const prog = Program.attach(mem);
      const objects = targets(prog, pid);
      assert.ok(objects.length > 50, `${objects.length} objects to corrupt`);
      let seed = 0x5eed;
      const rand = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return Math.floor((seed / 2 ** 32) * n); };
      const values = (o: { address: bigint }) => [0n, 1n, (1n << 64n) - 1n, o.address, o.address + 8n, objects[rand(objects.length)].address,
        prog.pageOffset + BigInt(rand(1 << 30)), 0xffffffff80000000n + BigInt(rand(1 << 30)), BigInt(rand(1 << 16)), BigInt(rand(2 ** 31)) << 32n];
      const readAll = () => {
        const procs = [...forEachProcess(prog)].map(processInfo);
        assert.ok(procs.length > 0);
        const task = findTask(prog, pid);
        const root = taskRoot(findTask(prog, 1));
        mapsText(task, root);
        openFiles(task, root);
        userRegisters(task);
        fpuState(task);
        signalState(task);
        credentials(task);
        namespaces(task);
        const vma = [...forEachVma(task.member('mm').deref())][0];
        readUserMemory(task, vma.member('vm_start').value(), 4096);
      };
      let r0 = prog.mem.reads;
      readAll();
      const perCase = WORK_FACTOR * (prog.mem.reads - r0);
      const outcomes = new Map<string, number>();
      const t0 = Date.now();
      let maxRss = 0;
      let maxReads = 0;
      let cases = 0;
      for (; cases < CASES; cases++) {
        mem.reset();
        prog.refresh();
        for (let k = 0, n = 1 + rand(3); k < n; k++) {
          const o = objects[rand(objects.length)];
          const off = BigInt(o.pointers.length && rand(4) ? o.pointers[rand(o.pointers.length)] : rand(Math.max(1, o.size >> 3)) * 8);
          const value = Buffer.alloc(8);
          const choices = values(o);
          value.writeBigUInt64LE(choices[rand(choices.length)] & ((1n << 64n) - 1n));
          mem.patch(prog.toPhys(o.address + off), value);
        }
        prog.refresh();
        let outcome = 'ok';
        r0 = prog.mem.reads;
        try {
          readAll();
        } catch (err) {
          if (!(err instanceof OvmError)) throw new Error(`case ${cases}: untyped ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
          outcome = err.code;
        }
        const reads = prog.mem.reads - r0;
        assert.ok(reads <= perCase, `case ${cases}: ${reads} reads of guest memory, over the bound of ${perCase} (outcome ${outcome})`);
        maxReads = Math.max(maxReads, reads);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
      }
      console.log(`      ${cases} cases in ${Date.now() - t0} ms (most reads ${maxReads}, bound ${perCase}); outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; max RSS ${(maxRss / 2 ** 20).toFixed(0)} MiB`);
      assert.ok(maxRss < 2 * 2 ** 30, 'memory stays bounded');
      assert.ok((outcomes.get('ok') ?? 0) < cases, 'some corruptions are detected');
    } finally {
      mem.close();
    }
  });

  it(`dumps a frozen tree over ${DUMP_CASES} corruptions of RAM into a dump or a typed error, never a crash or a hang, and nothing left behind on error`, async function () {
    this.timeout(DUMP_CASES * 60_000 + 120_000);
    const mem = new OverlayMemory(new FileMemory(snapshot, layout));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-fuzz-dump-'));
    try {
      const prog = Program.attach(mem);
      // The clean snapshot dumps whole: what follows is about the corruptions.
      const r0 = prog.mem.reads;
      await dumpTree(prog, treeOfPid(prog, dumpPid), path.join(out, 'clean'));
      const leader = findTask(prog, dumpPid);
      assert.ok(mounts(leader, taskRoot(leader)).length > 3);
      assert.ok(tmpfsEntries(leader.member('fs').deref().member('pwd.dentry').deref().member('d_sb').deref()).length >= 3, 'the tmpfs of /dev/shm');
      const work = { count: () => prog.mem.reads, perCase: WORK_FACTOR * (prog.mem.reads - r0), what: 'reads of guest memory' };
      // The corruptions below reach the file and shared-memory walkers too: the clean tree holds a FIFO, a lock, a deleted
      // file, an inotify and shared memory.
      const clean = fs.readdirSync(path.join(out, 'clean'));
      for (const image of ['fifo-data.img', 'filelocks.img', 'remap-fpath.img', 'ghost-file-1.img']) assert.ok(clean.includes(image), `${image} in ${clean.join(' ')}`);
      assert.ok(clean.filter((f) => f.startsWith('pagemap-shmem-')).length >= 2, 'the tree\'s shared memory is in the dump');
      fs.rmSync(path.join(out, 'clean'), { recursive: true });
      const tree = treeOfPid(prog, dumpPid);
      const objects: Target[] = [];
      const add = (what: string, obj: KObject) => objects.push({ what, address: obj.address, size: obj.size, pointers: pointerOffsets(prog, obj) });
      for (const p of tree.processes) {
        add('task_struct', p.leader);
        const mm = p.leader.member('mm').deref();
        add('mm_struct', mm);
        for (const vma of forEachVma(mm)) {
          add('vm_area_struct', vma);
          // Mapped files' inodes and page caches: shared memory's pages are read from there (pagemap-shmem).
          if (vma.member('vm_file').value() === 0n) continue;
          const inode = vma.member('vm_file').deref().member('f_inode').deref();
          add('inode', inode);
          add('address_space', inode.member('i_mapping').deref());
        }
        // The top page table: its entries lead every walk of the tree's memory.
        objects.push({ what: 'pgd', address: mm.member('pgd').value(), size: 4096, pointers: [...Array(512).keys()].map((i) => i * 8) });
        for (const f of openFiles(p.leader, taskRoot(p.leader))) {
          const file = KObject.struct(prog, 'file', f.file);
          add('file', file);
          add('dentry', file.member('f_path.dentry').deref());
          add('inode', file.member('f_inode').deref());
          if (file.member('f_inode').deref().member('i_flctx').value() !== 0n) add('file_lock_context', file.member('f_inode').deref().member('i_flctx').deref());
          if (file.member('private_data').value() !== 0n) {
            objects.push({ what: 'private_data', address: file.member('private_data').value(), size: 512, pointers: [...Array(64).keys()].map((i) => i * 8) });
          }
        }
        for (const m of ['cred', 'signal', 'sighand', 'fs', 'files', 'nsproxy', 'thread_pid']) add(m, p.leader.member(m).deref());
      }
      assert.ok(objects.length > 20, `${objects.length} objects to corrupt`);
      const near = objects.map((o) => o.address);
      let caseNo = 0;
      const report = await fuzz({ name: 'introspect-fuzz dump', seed: fuzzSeed(0x5eed0201), cases: DUMP_CASES, heapGrowth: 3 << 29, work }, async (rng) => {
        mem.reset();
        prog.refresh();
        for (let k = 0, n = 1 + rng.int(3); k < n; k++) {
          const o = rng.pick(objects);
          const off = BigInt(o.pointers.length && rng.int(4) ? rng.pick(o.pointers) : rng.int(Math.max(1, o.size >> 3)) * 8);
          const value = Buffer.alloc(8);
          const choices = [0n, 1n, (1n << 64n) - 1n, o.address, o.address + 8n, rng.pick(near), prog.pageOffset + BigInt(rng.int(1 << 30)),
            0xffffffff80000000n + BigInt(rng.int(1 << 30)), BigInt(rng.int(1 << 16)), BigInt(rng.int(2 ** 31)) << 32n];
          value.writeBigUInt64LE(rng.pick(choices) & ((1n << 64n) - 1n));
          // A corruption the kernel's own page tables cannot place is skipped: RAM itself stays as it is.
          let phys: bigint;
          try {
            phys = prog.toPhys(o.address + off);
          } catch {
            continue;
          }
          mem.patch(phys, value);
        }
        prog.refresh();
        const dir = path.join(out, `case-${caseNo++}`);
        try {
          // What a container's dump reads besides: its mounts, and the tmpfs its cwd is on (/dev/shm).
          const leader = findTask(prog, dumpPid);
          mounts(leader, taskRoot(leader));
          tmpfsEntries(leader.member('fs').deref().member('pwd.dentry').deref().member('d_sb').deref());
          await dumpTree(prog, treeOfPid(prog, dumpPid), dir);
        } catch (err) {
          // Nothing partial: neither the images directory nor its staging beside it.
          assert.deepEqual(fs.readdirSync(out), [], `after ${(err as Error).name}: ${(err as Error).message}`);
          throw err;
        }
        fs.rmSync(dir, { recursive: true });
        return 'dumped';
      });
      console.log(`      ${describeReport(report)}`);
      assert.ok((report.outcomes.dumped ?? 0) < DUMP_CASES, 'some corruptions are detected');
    } finally {
      mem.close();
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});

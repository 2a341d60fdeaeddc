/**
 * `make bench`, introspection part: attach time, and user-memory extraction
 * throughput for a process with 1 GiB touched, next to the raw read speed of
 * the guest's memory file measured in the same run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Program } from '../../introspect/kernel/program.js';
import { forEachVma } from '../../introspect/linux/mm.js';
import { findTask } from '../../introspect/linux/tasks.js';
import { readUserMemoryInto } from '../../introspect/linux/user-memory.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { CLI, guestSh } from '../helpers/cli.js';
import { UpResult, downTestGuests, labUp } from '../helpers/lab-guests.js';

const GiB = 1 << 30;
/** Extraction goes through one reused buffer of this size (cache-friendly; measured best among 1-64 MiB). */
const CHUNK = 4 << 20;

function ms(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function openGuest(g: UpResult): FileMemory {
  return new FileMemory(g.memoryFile, g.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) })));
}

function rawRead(file: string): number {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  const size = fs.fstatSync(fd).size;
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < size; off += buf.length) fs.readSync(fd, buf, 0, buf.length, off);
  fs.closeSync(fd);
  return size / (ms(t0) / 1000) / 1e9;
}

async function main(): Promise<void> {
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  progress('booting a 2 GiB guest');
  const guest = await labUp('bench', ['--memory', '2048']);
  try {
    progress('touching 1 GiB in a guest process');
    const pid = Number((await guestSh(guest.name,
      "setsid python3 -c 'import os,time; b=b\"\\x5a\"*(1<<30); print(os.getpid(), flush=True); time.sleep(1000)' > /run/bench.pid 2>/dev/null </dev/null & " +
      'while [ ! -s /run/bench.pid ]; do sleep 0.5; done; cat /run/bench.pid', 600)).trim());

    progress('attach');
    const attach: number[] = [];
    for (let i = 0; i < 5; i++) {
      const mem = openGuest(guest);
      const t0 = process.hrtime.bigint();
      const prog = Program.attach(mem);
      prog.btf.struct('task_struct');
      attach.push(ms(t0));
      mem.close();
    }
    const cold: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      execFileSync(process.execPath, [CLI, 'ps', '--vm', guest.name], { stdio: 'ignore' });
      cold.push(ms(t0));
    }

    progress('raw read of the memory file');
    const raw = Math.max(rawRead(guest.memoryFile), rawRead(guest.memoryFile));

    progress('user-memory extraction');
    const mem = openGuest(guest);
    const prog = Program.attach(mem);
    const task = findTask(prog, pid);
    const mm = task.member('mm').deref();
    const big = [...forEachVma(mm)].map((v) => ({ start: v.member('vm_start').value(), end: v.member('vm_end').value() }))
      .sort((a, b) => Number(b.end - b.start - (a.end - a.start)))[0];
    const len = Number(big.end - big.start);
    let bytes = 0;
    const buf = Buffer.allocUnsafe(CHUNK);
    const t0 = process.hrtime.bigint();
    for (let off = 0; off < len; off += CHUNK) {
      const n = Math.min(CHUNK, len - off);
      readUserMemoryInto(task, big.start + BigInt(off), buf.subarray(0, n));
      bytes += n;
    }
    const secs = ms(t0) / 1000;
    mem.close();
    const user = bytes / secs / 1e9;

    console.log('introspection benchmark (guest: 2 GiB RAM, TCG; process with 1 GiB touched)');
    console.log(`  attach, in process (vmcoreinfo + kallsyms + BTF), median of 5: ${median(attach).toFixed(0)} ms   (target <= 300 ms)`);
    console.log(`  ovmigrate ps, whole cold CLI process (attach + every task), median of 3: ${median(cold).toFixed(0)} ms`);
    console.log(`  raw read of the memory file, 1 MiB reads:                         ${raw.toFixed(2)} GB/s   (baseline)`);
    console.log(`  user memory through page tables, ${(bytes / GiB).toFixed(2)} GiB:                 ${user.toFixed(2)} GB/s   (target >= 4 GB/s)`);
    console.log(`  ratio raw / user memory:                                          ${(raw / user).toFixed(2)}x   (target <= 4x)`);
  } finally {
    await downTestGuests();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

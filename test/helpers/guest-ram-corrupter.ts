import fs from 'node:fs';
import { Program } from '../../introspect/kernel/program.js';
import { findTask } from '../../introspect/linux/tasks.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';
import type { UpResult } from './lab-guests.js';
import { Rng } from '../fuzz/harness.js';

/**
 * Corrupts a live lab guest's RAM through its memory file (QEMU maps it
 * shared: a write is what the guest sees) and puts the bytes back. Meant
 * for while the vCPUs are stopped: the guest's kernel never runs on what
 * was written, only the backend reads it.
 */
export class GuestRamCorrupter {
  private readonly fd: number;
  private readonly saved: { offset: number; bytes: Buffer }[] = [];
  /** Where the corruption strikes: guest-physical addresses found before the fault. */
  private targets: { pgd: bigint; mmField: bigint; pageOffset: bigint } | undefined;

  constructor(private readonly guest: UpResult) {
    this.fd = fs.openSync(guest.memoryFile, 'r+');
  }

  /**
   * Finds what a dump of `pid` walks while the VM is paused (dump/memory.ts
   * planPages): its task_struct.mm and the user half of its top page table.
   */
  aim(pid: number): void {
    const layout = this.guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) }));
    const mem = new FileMemory(this.guest.memoryFile, layout);
    try {
      const prog = Program.attach(mem);
      const task = findTask(prog, pid);
      const mm = task.member('mm');
      this.targets = { pgd: prog.toPhys(mm.deref().member('pgd').value()), mmField: prog.toPhys(mm.address), pageOffset: prog.pageOffset };
    } finally {
      mem.close();
    }
  }

  get corrupted(): boolean {
    return this.saved.length > 0;
  }

  /**
   * The user half of the page-table root (entries 0-255) filled with random
   * bytes, and task->mm pointed at that page table: the walk under the pause
   * reads an mm_struct made of page-table entries, and entries to anywhere.
   */
  strike(rng: Rng): void {
    if (!this.targets || this.corrupted) return;
    const { pgd, mmField, pageOffset } = this.targets;
    const garbage = Buffer.alloc(2048);
    for (let i = 0; i < garbage.length; i++) garbage[i] = rng.int(256);
    this.write(pgd, garbage);
    const mm = Buffer.alloc(8);
    mm.writeBigUInt64LE(pageOffset + pgd);
    this.write(mmField, mm);
  }

  /** Puts back every byte written, last first. */
  restore(): void {
    for (const { offset, bytes } of this.saved.reverse()) fs.writeSync(this.fd, bytes, 0, bytes.length, offset);
    this.saved.length = 0;
  }

  close(): void {
    this.restore();
    fs.closeSync(this.fd);
  }

  private write(gpa: bigint, bytes: Buffer): void {
    const offset = this.offsetOf(gpa, bytes.length);
    const old = Buffer.alloc(bytes.length);
    fs.readSync(this.fd, old, 0, old.length, offset);
    this.saved.push({ offset, bytes: old });
    fs.writeSync(this.fd, bytes, 0, bytes.length, offset);
  }

  private offsetOf(gpa: bigint, length: number): number {
    const seg = this.guest.layout.find((s) => gpa >= BigInt(s.gpa) && gpa + BigInt(length) <= BigInt(s.gpa) + BigInt(s.size));
    if (!seg) throw new Error(`guest-physical 0x${gpa.toString(16)} is in no RAM segment`);
    return Number(BigInt(seg.fileOffset) + gpa - BigInt(seg.gpa));
  }
}

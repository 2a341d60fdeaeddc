import { FileMemory } from '../../introspect/memory/physical-memory.js';
import { Program } from '../../introspect/kernel/program.js';
import { UpResult } from './lab-guests.js';

/** Attaches to a lab guest's kernel in this process (faster than one CLI call per query). */
export function attachGuest(guest: UpResult): { prog: Program; close(): void } {
  const mem = new FileMemory(guest.memoryFile, guest.layout.map((s) => ({ gpa: BigInt(s.gpa), size: BigInt(s.size), fileOffset: BigInt(s.fileOffset) })));
  return { prog: Program.attach(mem), close: () => mem.close() };
}

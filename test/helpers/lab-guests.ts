import fs from 'node:fs';
import { vmDir } from '../../introspect/vm/index.js';
import { cli, cliOk } from './cli.js';

/** Test guests are named t-<pid>-<label>, so cleanup finds exactly this run's guests. */
export const TEST_PREFIX = `t-${process.pid}-`;

export function testGuestName(label: string): string {
  return TEST_PREFIX + label;
}

export interface UpResult {
  name: string;
  qemuPid: number;
  memoryFile: string;
  qmpSocket: string;
  channelSocket: string;
  shares: string[];
  layout: { gpa: string; size: string; fileOffset: string }[];
}

export async function labUp(label: string, args: string[] = []): Promise<UpResult> {
  return JSON.parse(await cliOk(['lab', 'up', testGuestName(label), ...args])) as UpResult;
}

/** Stops every guest of this test run; used by the root hook and by suites' after(). */
export async function downTestGuests(): Promise<void> {
  const out = await cli(['lab', 'ls', '--json']);
  if (out.code !== 0) return;
  const guests = (JSON.parse(out.stdout) as { name: string }[]).filter((g) => g.name.startsWith(TEST_PREFIX));
  await Promise.all(guests.map((g) => cli(['lab', 'down', g.name])));
}

/** QEMU processes, memory files and VM descriptions this run left behind (there should be none). */
export function leftovers(): string[] {
  const found: string[] = [];
  for (const entry of fs.readdirSync('/dev/shm')) if (entry.startsWith(`ovmigrate-lab-${TEST_PREFIX}`)) found.push(`/dev/shm/${entry}`);
  for (const entry of fs.existsSync(vmDir()) ? fs.readdirSync(vmDir()) : []) if (entry.startsWith(TEST_PREFIX)) found.push(`${vmDir()}/${entry}`);
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(`ovmigrate-lab-${TEST_PREFIX}`)) found.push(`pid ${pid}: ${cmdline.split('\0').slice(0, 3).join(' ')}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

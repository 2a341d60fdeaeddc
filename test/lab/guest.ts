import fs from 'node:fs';
import { MemorySegment } from '../../introspect/memory/physical-memory.js';
import { guestPaths } from './paths.js';

/** What `lab up` chose for a guest. */
export interface GuestSpec {
  name: string;
  memoryMiB: number;
  cpus: number;
  paging: 4 | 5;
  shares: string[];
  /** Shares over virtiofs (a virtiofsd each), mounted at the same path: a guest can hold a directory open across a host rename. */
  virtiofs: string[];
  bootTimeoutMs: number;
  /** A Kubernetes node on this containerd (lab up --kubernetes). */
  kubernetes?: '1.6' | '2';
  /** The kernel asked for (`6.1`, `6.12-rt`...); GuestState.kernel is the version that booted. */
  kernelChoice: string;
  /** How the guest mounts the host's root: 9p, or virtiofs where the kernel has no 9p (Debian's cloud flavour). */
  rootShare?: '9p' | 'virtiofs';
}

/** A running lab guest, as recorded in its state.json (and printed by `lab up`). */
export interface GuestState extends GuestSpec {
  qemuPid: number;
  keeperPid: number;
  memoryFile: string;
  qmpSocket: string;
  channelSocket: string;
  execSocket: string;
  console: string;
  kernel: string;
  /** Guest-physical RAM layout as QEMU reported it, addresses as hex strings. */
  layout: { gpa: string; size: string; fileOffset: string }[];
  startedAt: string;
}

export function encodeLayout(segments: readonly MemorySegment[]): GuestState['layout'] {
  return segments.map((s) => ({ gpa: hex(s.gpa), size: hex(s.size), fileOffset: hex(s.fileOffset) }));
}

function hex(v: bigint): string {
  return '0x' + v.toString(16);
}

export function readState(name: string): GuestState | undefined {
  try {
    return JSON.parse(fs.readFileSync(guestPaths(name).state, 'utf8')) as GuestState;
  } catch {
    return undefined;
  }
}

export function writeState(state: GuestState): void {
  const file = guestPaths(state.name).state;
  fs.writeFileSync(file + '.tmp', JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(file + '.tmp', file);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

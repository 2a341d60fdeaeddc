import { NCCS, Termios, TtyState } from '../linux/tty.js';
import { DumpProblem } from './problem.js';

/** include/linux/kdev_t.h new_encode_dev(): a kernel dev_t as stat(2) shows it (st_rdev, st_dev), cut to the u32 CRIU keeps. */
export function statDev(dev: number): number {
  const major = dev >>> 20;
  const minor = dev & 0xfffff;
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/**
 * termios_entry as criu/tty.c termios_copy() fills it: the 32 bytes of
 * glibc's c_cc (the kernel's NCCS, then zeros) memcpy'd over a u32 array of
 * TERMIOS_NCC (19) entries. Only the first 8 entries carry them (restore
 * copies the same 32 bytes back); CRIU leaves the rest uninitialized, they
 * are zeros here. The speeds stay 0: TCGETS fills no c_ispeed/c_ospeed.
 */
export function termiosEntry(t: Termios): Record<string, unknown> {
  const bytes = Buffer.alloc(NCCS * 4);
  t.cc.copy(bytes, 0, 0, Math.min(t.cc.length, NCCS));
  const cc = Array.from({ length: NCCS }, (_, i) => (i < 8 ? bytes.readUInt32LE(i * 4) : 0));
  return { c_iflag: t.iflag, c_oflag: t.oflag, c_cflag: t.cflag, c_lflag: t.lflag, c_line: t.line, c_ispeed: 0, c_ospeed: 0, c_cc: cc };
}

interface DumpedTty {
  tty: bigint;
  task: string;
  fd: string;
  /** Not hung up: CRIU counts it among the active ptys that want a peer (tty_active_pairs). */
  active: boolean;
  sid: number;
}

/**
 * The ttys of a dump (criu/tty.c): one tty-info.img entry per tty, keyed as
 * CRIU keys them by (pty index << 1) | master, and what only the whole dump
 * shows: at most one pty slave whose master is outside (runc's console,
 * restored with --orphan-pts-master), and a session only under its leader.
 */
export class TtyTable {
  readonly infos: Record<string, unknown>[] = [];
  private readonly dumped = new Map<number, DumpedTty>();

  /** The tty-info entry of a tty, once; a problem when another tty has the same id. */
  info(id: number, state: TtyState, entry: () => Record<string, unknown>, who: { task: string; fd: string; sid: number }): DumpProblem | undefined {
    const known = this.dumped.get(id);
    if (known) {
      if (known.tty === state.tty.address) return undefined;
      return new DumpProblem(who.task, 'tty', `pty index ${id >> 1} is open in two devpts instances (CRIU keys ttys by index)`, { object: who.fd });
    }
    this.dumped.set(id, { tty: state.tty.address, task: who.task, fd: who.fd, active: !state.hungUp, sid: who.sid });
    this.infos.push(entry());
    return undefined;
  }

  /** criu/tty.c tty_verify_active_pairs, dump_verify_tty_sids. */
  finish(sessionLeaders: ReadonlySet<number> | undefined): DumpProblem[] {
    const problems: DumpProblem[] = [];
    const unpaired = [...this.dumped].filter(([id, t]) => id % 2 === 0 && t.active && !this.dumped.has(id + 1));
    for (const [id, t] of unpaired.slice(1)) {
      problems.push(new DumpProblem(t.task, 'tty', `a second pty slave (index ${id >> 1}) whose master is outside the dump: CRIU restores only one`, { object: t.fd }));
    }
    for (const t of this.dumped.values()) {
      if (t.sid !== 0 && sessionLeaders && !sessionLeaders.has(t.sid)) {
        problems.push(new DumpProblem(t.task, 'tty', `the terminal of session ${t.sid}, whose leader is outside the dump`, { object: t.fd }));
      }
    }
    return problems;
  }
}


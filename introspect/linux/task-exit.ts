import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { NSIG } from './signals.js';

/** include/linux/sched.h */
const PF_EXITING = 0x4;
const EXIT_DEAD = 0x10;
const EXIT_ZOMBIE = 0x20;
const EXIT_TRACE = EXIT_ZOMBIE | EXIT_DEAD;

/**
 * Where a task is on its way out (kernel/exit.c):
 * - alive: not exiting;
 * - exiting: in do_exit (PF_EXITING set by exit_signals), not yet a zombie;
 * - zombie: exit_notify made it EXIT_ZOMBIE; it waits for its parent's wait();
 * - released: EXIT_DEAD or EXIT_TRACE, being reaped (release_task), about to vanish.
 */
export type ExitPhase = 'alive' | 'exiting' | 'zombie' | 'released';

export interface TaskExit {
  phase: ExitPhase;
  /** task->exit_code of a zombie, the wait status /proc/PID/stat reports; 0 otherwise. */
  exitCode: number;
}

/**
 * A wait status a task can die with: exit(n) leaves n << 8 (sys_exit,
 * do_group_exit), death by a signal leaves the signal, with 0x80 when it
 * dumped core (do_coredump). 0x7f in the low bits would be a stop, never an exit.
 */
function checkExitCode(code: number, what: string): number {
  const signal = code & 0x7f;
  const ok = code >= 0 && code <= 0xffff && (signal === 0 ? (code & 0x80) === 0 : signal <= NSIG && code >> 8 === 0);
  if (!ok) throw new BadDataError(`${what}.exit_code 0x${code.toString(16)} is no exit status`);
  return code;
}

/** How far a task is in exiting, from exit_state and PF_EXITING; for a zombie its exit code. */
export function taskExit(task: KObject): TaskExit {
  const exitState = task.member('exit_state').num();
  const exiting = (task.member('flags').num() & PF_EXITING) !== 0;
  if (exitState === 0) return { phase: exiting ? 'exiting' : 'alive', exitCode: 0 };
  if (exitState !== EXIT_ZOMBIE && exitState !== EXIT_DEAD && exitState !== EXIT_TRACE) {
    throw new BadDataError(`${task.path}.exit_state is 0x${exitState.toString(16)}`);
  }
  // exit_notify runs after exit_signals set PF_EXITING, which nothing clears.
  if (!exiting) throw new BadDataError(`${task.path}.exit_state is 0x${exitState.toString(16)} without PF_EXITING in its flags`);
  if (exitState !== EXIT_ZOMBIE) return { phase: 'released', exitCode: 0 };
  return { phase: 'zombie', exitCode: checkExitCode(task.member('exit_code').num(), task.path) };
}

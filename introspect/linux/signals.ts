import { KObject, listForEach } from '../kernel/object.js';

/** include/uapi/asm-generic/signal.h _NSIG: signals 1..64. */
export const NSIG = 64;
export const SIGKILL = 9;
export const SIGSTOP = 19;
/** A pending-signal queue longer than this is corrupt (RLIMIT_SIGPENDING is far lower). */
const MAX_SIGQUEUE = 1 << 16;
/** Size of the user siginfo_t that PTRACE_PEEKSIGINFO copies out (the kernel's part, zero-padded). */
const SIGINFO_SIZE = 128;

/** One signal's disposition (sighand->action[sig - 1].sa), as rt_sigaction() reports it. */
export interface SigAction {
  signal: number;
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export interface SignalState {
  blocked: bigint;
  pending: bigint;
  sharedPending: bigint;
  ignored: bigint;
  caught: bigint;
  actions: SigAction[];
}

function sigset(obj: KObject): bigint {
  return obj.member('sig').index(0).value();
}

/** The disposition of every signal 1..NSIG, in signal order. */
export function sigactions(task: KObject): SigAction[] {
  const action = task.member('sighand').deref().member('action');
  return Array.from({ length: NSIG }, (_, i) => {
    const sa = action.index(i).member('sa');
    return {
      signal: i + 1, handler: sa.member('sa_handler').value(), flags: sa.member('sa_flags').value(), restorer: sa.member('sa_restorer').value(),
      mask: sigset(sa.member('sa_mask')),
    };
  });
}

/** Blocked, pending, ignored and caught signals, and the handlers (as /proc/PID/status and CRIU see them). */
export function signalState(task: KObject): SignalState {
  let ignored = 0n;
  let caught = 0n;
  const all = sigactions(task);
  for (const { signal, handler } of all) {
    if (handler === 1n) ignored |= 1n << BigInt(signal - 1);
    else if (handler !== 0n) caught |= 1n << BigInt(signal - 1);
  }
  return {
    blocked: sigset(task.member('blocked')),
    pending: sigset(task.member('pending.signal')),
    sharedPending: sigset(task.member('signal').deref().member('shared_pending.signal')),
    ignored,
    caught,
    actions: all.filter((a) => a.handler !== 0n),
  };
}

/** The signal mask to save: with restore_sigmask set (ppoll, sigsuspend) the real one is saved_sigmask (as PTRACE_GETSIGMASK reports). */
export function savedBlockedMask(task: KObject): bigint {
  return sigset(task.bitfield('restore_sigmask') ? task.member('saved_sigmask') : task.member('blocked'));
}

/** Each queued signal of a sigpending (a thread's `pending`, or signal->shared_pending) as PTRACE_PEEKSIGINFO copies it out. */
export function queuedSignals(pending: KObject): Buffer[] {
  const out: Buffer[] = [];
  for (const q of listForEach(pending.prog, pending.member('list').address, 'sigqueue', 'list', MAX_SIGQUEUE)) {
    const info = q.member('info');
    const buf = Buffer.alloc(SIGINFO_SIZE);
    pending.prog.read(info.address, Math.min(info.size, SIGINFO_SIZE), info.path).copy(buf);
    out.push(buf);
  }
  return out;
}

/** Signals queued to one thread (task->pending). */
export function threadQueuedSignals(task: KObject): Buffer[] {
  return queuedSignals(task.member('pending'));
}

/** Signals queued to the whole process (signal->shared_pending). */
export function sharedQueuedSignals(task: KObject): Buffer[] {
  return queuedSignals(task.member('signal').deref().member('shared_pending'));
}

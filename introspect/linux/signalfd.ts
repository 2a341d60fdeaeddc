import { KObject } from '../kernel/object.js';
import { anonContext } from './anon-file.js';

/**
 * The signals a signalfd takes, as the sigmask its fdinfo shows (bit N-1
 * for signal N). fs/signalfd.c keeps the complement in signalfd_ctx.sigmask
 * (signotset at creation, SIGKILL and SIGSTOP removed first), and prints it
 * back complemented; the signals themselves stay pending on the task.
 */
export function signalFdMask(file: KObject): bigint {
  const ctx = anonContext(file, 'signalfd_ctx');
  const stored = ctx.member('sigmask.sig').index(0).value();
  return ~stored & 0xffff_ffff_ffff_ffffn;
}

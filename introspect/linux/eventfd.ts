import { KObject } from '../kernel/object.js';
import { anonContext } from './anon-file.js';

/** include/linux/eventfd.h */
const EFD_SEMAPHORE = 1;

/** An eventfd's state (fs/eventfd.c struct eventfd_ctx behind file->private_data), as its fdinfo shows it. */
export interface EventFd {
  counter: bigint;
  /** EFD_SEMAPHORE: read(2) takes 1 at a time. CRIU 3.17 neither dumps nor restores it. */
  semaphore: boolean;
}

export function eventFd(file: KObject): EventFd {
  const ctx = anonContext(file, 'eventfd_ctx');
  return { counter: ctx.member('count').value(), semaphore: (ctx.member('flags').num() & EFD_SEMAPHORE) !== 0 };
}

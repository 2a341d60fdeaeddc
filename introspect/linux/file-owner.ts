import { KObject } from '../kernel/object.js';

/** How an open file is owned for SIGIO (file->f_owner), as F_GETOWN_EX/F_GETSIG/F_GETOWNER_UIDS report it. */
export interface FileOwner {
  uid: number;
  euid: number;
  signum: number;
  pidType: number;
  /** The owner's struct pid, 0n when none. */
  pid: bigint;
}

/** What fcntl reports for a file nobody took ownership of (a zeroed fown_struct). */
const NO_OWNER: FileOwner = { uid: 0, euid: 0, signum: 0, pidType: 0, pid: 0n };

export function fileOwner(file: KObject): FileOwner {
  let o = file.member('f_owner');
  // 6.12 ("file: reclaim 24 bytes from f_owner") keeps a pointer, NULL until
  // F_SETOWN/F_SETSIG allocates it (file_f_owner_allocate); 6.1 embeds the struct.
  if (o.type.kind === 'ptr') {
    if (o.value() === 0n) return NO_OWNER;
    o = o.deref();
  }
  return {
    uid: o.member('uid.val').num(),
    euid: o.member('euid.val').num(),
    signum: o.member('signum').num(),
    pidType: o.member('pid_type').num(),
    pid: o.member('pid').value(),
  };
}

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

export function fileOwner(file: KObject): FileOwner {
  const o = file.member('f_owner');
  return {
    uid: o.member('uid.val').num(),
    euid: o.member('euid.val').num(),
    signum: o.member('signum').num(),
    pidType: o.member('pid_type').num(),
    pid: o.member('pid').value(),
  };
}

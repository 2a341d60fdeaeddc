import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { rbInOrder } from '../kernel/rbtree.js';
import { anonContext } from './anon-file.js';

/**
 * Most targets one epoll walks: the kernel bounds them per user by
 * max_user_watches (4% of low memory over an epitem's cost, about 10^5 for
 * a 1 GiB guest), so more is corrupt RAM.
 */
export const MAX_EPOLL_TARGETS = 1 << 20;

/** One file an epoll watches (struct epitem), as its fdinfo's tfd line shows it. */
export interface EpollTarget {
  /** The fd it was added under (epitem.ffd.fd); the file may have left that fd since. */
  fd: number;
  /** Its struct file (epitem.ffd.file). */
  file: bigint;
  events: number;
  data: bigint;
  /** The target inode's superblock s_dev (kernel encoding), inode number and the file's position. */
  dev: number;
  ino: bigint;
  pos: bigint;
}

/**
 * The targets of an epoll file (fs/eventpoll.c: file->private_data is the
 * struct eventpoll, its rbr an rbtree of epitems keyed by file and fd), in
 * the order ep_show_fdinfo prints them. The ready list and ovflist are not
 * needed: EPOLL_CTL_ADD on restore polls each target again.
 */
export function epollTargets(file: KObject, bound = MAX_EPOLL_TARGETS): EpollTarget[] {
  const ep = anonContext(file, 'eventpoll');
  const out: EpollTarget[] = [];
  for (const epi of rbInOrder(file.prog, ep.member('rbr.rb_root').address, 'epitem', 'rbn', bound)) {
    const owner = epi.member('ep').value();
    if (owner !== ep.address) throw new BadDataError(`${epi.path}.ep is 0x${owner.toString(16)}, not its eventpoll 0x${ep.address.toString(16)}`);
    const target = epi.member('ffd.file').deref();
    const inode = target.member('f_inode').deref();
    const fd = epi.member('ffd.fd').num();
    if (fd < 0) throw new BadDataError(`${epi.path}.ffd.fd is ${fd}`);
    out.push({
      fd,
      file: target.address,
      events: epi.member('event.events').num(),
      data: epi.member('event.data').value(),
      dev: inode.member('i_sb').deref().member('s_dev').num(),
      ino: inode.member('i_ino').value(),
      pos: BigInt.asUintN(64, target.member('f_pos').value()),
    });
  }
  return out;
}

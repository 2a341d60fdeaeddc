import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** The context of an anon-inode file (eventfd, epoll, signalfd, timerfd): the struct its private_data points to. */
export function anonContext(file: KObject, structName: string): KObject {
  const at = file.member('private_data').value();
  if (at === 0n) throw new BadDataError(`${file.path}.private_data (the ${structName}) is NULL`);
  return KObject.struct(file.prog, structName, at);
}

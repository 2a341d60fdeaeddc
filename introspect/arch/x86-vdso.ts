import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** Physical address of page `offset` of an mm's vDSO (mm->context.vdso_image->data, part of the kernel image). */
export function vdsoPagePhys(mm: KObject, offset: bigint, who: string): bigint {
  const image = mm.member('context.vdso_image').deref();
  if (offset >= image.member('size').value()) throw new BadDataError(`${who}: [vdso] mapping is larger than the kernel's vDSO image`);
  return mm.prog.toPhys(image.member('data').value() + offset, 'vDSO image');
}

import fs from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { decodeLayout, requireGuest } from '../lab/index.js';
import { FileMemory, MemorySegment, layoutFromMtree, q35Layout } from '../memory/physical-memory.js';
import { QmpClient } from '../qemu/qmp.js';
import { RAM_BLOCK } from '../lab/qemu-args.js';

export interface MemorySourceOptions {
  vm?: string;
  mem?: string;
  qmp?: string;
}

/**
 * Opens a guest's RAM: a lab guest by name (layout recorded from QEMU at
 * boot), or a memory-backend file with its layout from QMP when given, else
 * QEMU's q35 rule for the file's size.
 */
export async function openMemory(opts: MemorySourceOptions): Promise<FileMemory> {
  if (!!opts.vm === !!opts.mem) throw new InvalidArgumentError('give exactly one of --vm NAME or --mem FILE');
  if (opts.vm) {
    const guest = requireGuest(opts.vm);
    return new FileMemory(guest.memoryFile, decodeLayout(guest.layout));
  }
  const file = opts.mem!;
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new NotFoundError(`--mem ${file}: no such file`);
  let layout: MemorySegment[];
  if (opts.qmp) {
    const qmp = await QmpClient.connect(opts.qmp);
    try {
      layout = layoutFromMtree(await qmp.hmp('info mtree -f'), RAM_BLOCK);
    } finally {
      qmp.close();
    }
  } else {
    layout = q35Layout(BigInt(stat.size));
  }
  return new FileMemory(file, layout);
}

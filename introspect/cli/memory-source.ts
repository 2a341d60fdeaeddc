import fs from 'node:fs';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { FileMemory, MemorySegment, layoutFromMtree, q35Layout } from '../memory/physical-memory.js';
import { QmpClient } from '../qemu/qmp.js';
import { RAM_BLOCK, VmResolver } from '../vm/index.js';

export interface MemorySourceOptions {
  vm?: string;
  mem?: string;
  qmp?: string;
}

/**
 * Opens a guest's RAM: a VM by its description (memory file, and the RAM
 * layout when it records one), or a memory-backend file. Without a recorded
 * layout it comes from QMP when there is a socket, else from QEMU's q35 rule
 * for the file's size.
 */
export async function openMemory(opts: MemorySourceOptions, resolveVm: VmResolver): Promise<FileMemory> {
  if (!!opts.vm === !!opts.mem) throw new InvalidArgumentError('give exactly one of --vm NAME or --mem FILE');
  const vm = opts.vm ? resolveVm(opts.vm) : undefined;
  const file = vm ? vm.memoryFile : opts.mem!;
  if (vm?.ramLayout) return new FileMemory(file, vm.ramLayout);
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new NotFoundError(`${vm ? `memory file of VM ${vm.name}` : '--mem'} ${file}: no such file`);
  const qmpSocket = vm ? vm.qmpSocket : opts.qmp;
  let layout: MemorySegment[];
  if (qmpSocket) {
    const qmp = await QmpClient.connect(qmpSocket);
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

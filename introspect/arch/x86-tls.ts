import { KObject } from '../kernel/object.js';

/** The three TLS descriptors of the GDT a task loads on switch (thread.tls_array, set by set_thread_area), as hex of 8 bytes each. */
export function tlsDescriptors(task: KObject): string[] {
  const tls = task.member('thread.tls_array');
  return [0, 1, 2].map((i) => task.prog.read(tls.index(i).address, 8, `${tls.path}[${i}]`).toString('hex'));
}

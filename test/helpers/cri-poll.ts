import fs from 'node:fs';
import type { CriClient } from './cri-client.js';

/**
 * One round of the kubelet's polling of its runtime: the PLEG's relist
 * (ListPodSandbox, ListContainers) and, per container, ContainerStatus and
 * ContainerStats (status sync, stats provider), as it asks about once a second.
 */
export async function kubeletRound(client: CriClient, ids: readonly string[]): Promise<number> {
  await client.call('ListPodSandbox', {});
  await client.call('ListContainers', {});
  for (const id of ids) {
    await client.call('ContainerStatus', { container_id: id, verbose: false });
    await client.call('ContainerStats', { container_id: id });
  }
  return 2 + 2 * ids.length;
}

/** utime + stime of a process, in seconds (USER_HZ is 100 on Linux). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

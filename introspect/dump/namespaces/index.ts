import { NsKind } from '../ids.js';
import { cgroupNs } from './cgroup.js';
import { ipcNs } from './ipc.js';
import { mntNs } from './mnt.js';
import { netNs } from './net.js';
import { NsDumper } from './ns-dumper.js';
import { pidNs } from './pid.js';
import { utsNs } from './uts.js';

export { NsDumper, NsToDump } from './ns-dumper.js';

/** Every kind of namespace a container may have of its own, one dumper each; a kind not here is refused. */
export const NS_DUMPERS: readonly NsDumper[] = [utsNs, ipcNs, mntNs, netNs, pidNs, cgroupNs];

const byKind = new Map<NsKind, NsDumper>(NS_DUMPERS.map((d) => [d.kind, d]));

export function nsDumper(kind: NsKind): NsDumper | undefined {
  return byKind.get(kind);
}

import { NsDumper } from './ns-dumper.js';

/** Restored from cgroup.img: the set's cgns_prefix tells where to unshare it (criu/cgroup.c). */
export const cgroupNs: NsDumper = {
  kind: 'cgroup',
  dump() {
    return {};
  },
};

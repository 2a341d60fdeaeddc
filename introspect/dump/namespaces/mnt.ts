import { cgroupNsRoot } from '../../linux/tasks.js';
import { mountImages } from '../mountpoints.js';
import { NsDumper } from './ns-dumper.js';

/** mountpoints-ID.img and the tmpfs tarballs of a container's mount namespace (mountpoints.ts). */
export const mntNs: NsDumper = {
  kind: 'mnt',
  dump(ctx, ns) {
    // A sparse tmpfs file's holes are written as zeros: they count against the dump's bytes.
    const m = mountImages(ns.root, ns.spec, ctx.budget.limits.bytes, cgroupNsRoot(ns.root));
    return {
      images: [
        { kind: 'MNTS', id: ns.id, entries: m.entries },
        ...[...m.tmpfs].map(([dev, tar]) => ({ file: `tmpfs-dev-${dev}.tar.gz.img`, data: tar })),
      ],
      problems: m.problems,
    };
  },
};

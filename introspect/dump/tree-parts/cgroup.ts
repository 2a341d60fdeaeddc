import { kernfsChildren, kernfsName, kernfsPerms } from '../../linux/kernfs.js';
import { CgroupSet } from '../context.js';
import { TreePart } from './tree-part.js';

/**
 * cgroup.img for cgroup v2 (criu/cgroup.c dump_sets, dump_controllers):
 * the sets other than the dumper's, and each set's directory with its
 * permissions and those of cgroup.procs, so restore can recreate it.
 */
function cgroupEntry(cgSets: Map<number, CgroupSet>): Record<string, unknown> {
  const sets = [...cgSets].map(([id, { path, cgnsPrefix }]) => ({ id, ctls: [{ name: '', path, ...(cgnsPrefix ? { cgns_prefix: cgnsPrefix } : {}) }] }));
  const byPath = new Map([...cgSets.values()].filter(({ path }) => path !== '/').map((set) => [set.path, set]));
  const dirs = [...byPath.values()].map(({ path, kn }) => {
    const procs = [...kernfsChildren(kn)].find((c) => kernfsName(c) === 'cgroup.procs');
    return {
      dir_name: path.slice(1),
      properties: procs ? [{ name: 'cgroup.procs', value: '', perms: kernfsPerms(procs) }] : [],
      dir_perms: kernfsPerms(kn),
    };
  });
  return { sets, controllers: [{ cnames: [''], dirs }] };
}

export const cgroupImage: TreePart = {
  name: 'cgroup',
  dump(ctx) {
    return ctx.cgSets.size ? { images: [{ kind: 'CGROUP', entries: [cgroupEntry(ctx.cgSets)] }] } : {};
  },
};

import { BadDataError } from '../../../common/errors.js';
import { taskNsproxy } from '../../linux/namespaces.js';
import { ContainerSpec } from '../container.js';
import { NS_KINDS } from '../ids.js';
import { nsDumper } from '../namespaces/index.js';
import { PlannedImage } from '../planned-image.js';
import { DumpProblem } from '../problem.js';
import { TreePart } from './tree-part.js';

const PLAIN_TREE: ContainerSpec = { externalMounts: new Map(), maskedPaths: new Set(), joinedNamespaces: new Map() };

/**
 * The namespace images a restore needs (criu/namespaces.c dump_namespaces):
 * one for each namespace the tree's root is in that the dumper is not (the
 * root_ns_mask CRIU computes from the ids), by the dumper of its kind
 * (namespaces/index.ts), as runc has CRIU write them. Every process must
 * share the root's namespaces; a zombie has none left (exit_task_namespaces).
 */
export const namespaceImages: TreePart = {
  name: 'namespaces',
  dump(ctx, tasks) {
    const images: PlannedImage[] = [];
    const problems: DumpProblem[] = [];
    const mine = tasks[0].ids;
    for (const { proc, ids } of tasks) {
      if (proc.zombie) continue;
      for (const kind of NS_KINDS) {
        if (ids[`${kind}_ns_id`] !== mine[`${kind}_ns_id`]) {
          problems.push(new DumpProblem(`pid ${proc.pid}`, `${kind}-namespace`,
            `is in another ${kind} namespace than the tree's root (nested namespaces are not supported)`, { sentence: true }));
        }
      }
    }
    const root = ctx.tree.root.leader;
    const who = `pid ${ctx.tree.root.pid}`;
    for (const kind of NS_KINDS) {
      const id = mine[`${kind}_ns_id`] as number | undefined;
      if (id === undefined || id === ctx.rootIds[`${kind}_ns_id`]) continue;
      const own = (detail: string) => problems.push(new DumpProblem(who, `${kind}-namespace`, `is in its own ${kind} namespace${detail}`, { sentence: true }));
      const dumper = nsDumper(kind);
      // A plain tree's own namespace of a kind that needs nothing from a bundle (IPC; net with --net-ns) is dumped as criu dump does.
      if (!ctx.spec && !dumper?.plainTree && !(kind === 'net' && ctx.netNsContents)) {
        own(`: dump it as a container (--container --bundle DIR)${kind === 'net' ? ' or with --net-ns' : ''}`);
        continue;
      }
      if (!dumper) {
        own(' (not supported yet)');
        continue;
      }
      const nsproxy = taskNsproxy(root);
      if (!nsproxy) throw new BadDataError(`${who} has no nsproxy (it is exiting)`);
      // A plain tree has nothing external to name.
      const out = dumper.dump(ctx, { id, root, nsproxy, who, spec: ctx.spec ?? PLAIN_TREE });
      images.push(...(out.images ?? []));
      problems.push(...(out.problems ?? []));
    }
    return { images, problems };
  },
};

import { KObject } from '../kernel/object.js';
import { ContainerSpec } from './container.js';
import { NS_KINDS } from './ids.js';
import { mountImages } from './mountpoints.js';
import { DumpTree } from './tree.js';

/** ipc/util.h: ipc_namespace.ids[] order. */
const IPC_IDS = ['sem', 'msg', 'shm'];
const U32 = 0xffffffff;

/** utsns-ID.img (criu/namespaces.c dump_uts_ns): the names uname(2) gives inside the namespace. */
export function utsEntry(nsproxy: KObject): Record<string, unknown> {
  const name = nsproxy.member('uts_ns').deref().member('name');
  return { nodename: name.member('nodename').string(), domainname: name.member('domainname').string() };
}

/**
 * ipcns-var-ID.img (criu/ipc_ns.c dump_ipc_var): the namespace's IPC
 * sysctls, straight from struct ipc_namespace. SysV objects in the
 * namespace would need ipcns-shm/msg/sem images too: those are refused.
 */
export function ipcVarEntry(nsproxy: KObject, who: string): { entry: Record<string, unknown>; problems: string[] } {
  const ns = nsproxy.member('ipc_ns').deref();
  const problems: string[] = [];
  const ids = ns.member('ids');
  const entry: Record<string, unknown> = {
    sem_ctls: [0, 1, 2, 3].map((i) => ns.member('sem_ctls').index(i).num()),
    msg_ctlmax: ns.member('msg_ctlmax').num(),
    msg_ctlmnb: ns.member('msg_ctlmnb').num(),
    msg_ctlmni: ns.member('msg_ctlmni').num(),
    // kernel.auto_msgmni has been a dummy reading 0 since 4.1.
    auto_msgmni: 0,
    shm_ctlmax: ns.member('shm_ctlmax').value(),
    shm_ctlall: ns.member('shm_ctlall').value(),
    shm_ctlmni: ns.member('shm_ctlmni').num(),
    shm_rmid_forced: ns.member('shm_rmid_forced').num(),
    mq_queues_max: ns.member('mq_queues_max').num(),
    mq_msg_max: ns.member('mq_msg_max').num(),
    mq_msgsize_max: ns.member('mq_msgsize_max').num(),
    mq_msg_default: ns.member('mq_msg_default').num(),
    mq_msgsize_default: ns.member('mq_msgsize_default').num(),
  };
  IPC_IDS.forEach((kind, i) => {
    const one = ids.index(i);
    const inUse = one.member('in_use').num();
    if (inUse) problems.push(`${who}: its IPC namespace holds ${inUse} SysV ${kind} object(s) (not supported yet)`);
    // kernel.{sem,msg,shm}_next_id: -1 unless set, and CRIU writes them only when set.
    const next = one.member('next_id').num();
    if (next !== -1 && next !== U32) entry[`${kind}_next_id`] = next;
  });
  return { entry, problems };
}

/** A namespace image to write: kind in the image table, its id, its entries. */
export interface NamespaceImage {
  kind: string;
  id: number;
  entries: Record<string, unknown>[];
}

export interface NamespaceImages {
  images: NamespaceImage[];
  /** Raw files of the image set (tmpfs-dev-N.tar.gz.img). */
  files: Map<string, Buffer>;
  problems: string[];
}

type Ids = Record<string, unknown>;

/**
 * The namespace images a restore needs (criu/namespaces.c dump_namespaces):
 * one for each namespace the tree's root is in that the dumper is not (the
 * root_ns_mask CRIU computes from the ids), as runc has CRIU write them:
 * UTS, IPC and mount namespaces in full; a network namespace the container
 * joined by path as external (extRootNetNS), its own one not at all (runc
 * always dumps it as empty: `--empty-ns network`); its own pid namespace
 * needs no image, a joined one is external (extRootPidNS). Every process
 * must share the root's namespaces.
 */
export function namespaceImages(tree: DumpTree, ids: Ids[], rootIds: Ids, spec: ContainerSpec | undefined): NamespaceImages {
  const out: NamespaceImages = { images: [], files: new Map(), problems: [] };
  const root = tree.root.leader;
  const mine = ids[0];
  tree.processes.forEach((p, i) => {
    for (const kind of NS_KINDS) {
      if (ids[i][`${kind}_ns_id`] !== mine[`${kind}_ns_id`]) {
        out.problems.push(`pid ${p.pid} is in another ${kind} namespace than the tree's root (nested namespaces are not supported)`);
      }
    }
  });
  const who = `pid ${tree.root.pid}`;
  for (const kind of NS_KINDS) {
    const id = mine[`${kind}_ns_id`] as number | undefined;
    if (id === undefined || id === rootIds[`${kind}_ns_id`]) continue;
    if (!spec) {
      out.problems.push(`${who} is in its own ${kind} namespace: dump it as a container (--container --bundle DIR)`);
      continue;
    }
    const nsproxy = root.member('nsproxy').deref();
    switch (kind) {
      case 'uts':
        out.images.push({ kind: 'UTSNS', id, entries: [utsEntry(nsproxy)] });
        break;
      case 'ipc': {
        const ipc = ipcVarEntry(nsproxy, who);
        out.problems.push(...ipc.problems);
        out.images.push({ kind: 'IPCNS_VAR', id, entries: [ipc.entry] });
        break;
      }
      case 'mnt': {
        const m = mountImages(root, spec);
        out.problems.push(...m.problems);
        out.images.push({ kind: 'MNTS', id, entries: m.entries });
        for (const [dev, tar] of m.tmpfs) out.files.set(`tmpfs-dev-${dev}.tar.gz.img`, tar);
        break;
      }
      case 'net':
        if (spec.joinedNamespaces.has('network')) out.images.push({ kind: 'NETNS', id, entries: [{ ext_key: 'extRootNetNS' }] });
        break;
      case 'pid':
        if (spec.joinedNamespaces.has('pid')) out.images.push({ kind: 'PIDNS', id, entries: [{ ext_key: 'extRootPidNS' }] });
        break;
      case 'cgroup':
        // Restored from cgroup.img: the set's cgns_prefix tells where to unshare it (criu/cgroup.c).
        break;
      default:
        out.problems.push(`${who} is in its own ${kind} namespace (not supported yet)`);
    }
  }
  return out;
}

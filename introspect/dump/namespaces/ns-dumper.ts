import { KObject } from '../../kernel/object.js';
import { ContainerSpec } from '../container.js';
import { DumpContext } from '../context.js';
import { NsKind } from '../ids.js';
import { Dumped } from '../planned-image.js';

/** A namespace of the tree's root that the dumper is not in, to be dumped. */
export interface NsToDump {
  /** Its id in the images (ids.ts). */
  id: number;
  /** The tree's root task and its nsproxy. */
  root: KObject;
  nsproxy: KObject;
  /** "pid 12", how problems name it. */
  who: string;
  spec: ContainerSpec;
}

/** The dumper of one kind of namespace (criu/namespaces.c dump_namespaces). */
export interface NsDumper {
  kind: NsKind;
  /** Dumped for a plain process tree too (no container spec): criu dump carries such a namespace the same way. */
  plainTree?: boolean;
  dump(ctx: DumpContext, ns: NsToDump): Dumped;
}

import { log } from '../../common/log.js';
import { ContainerSpec } from '../dump/container.js';
import { DumpReport, VmPause, dumpTree } from '../dump/dump.js';
import { live, settle } from '../dump/select.js';
import { treeOfCgroup } from '../dump/tree.js';
import { Program } from '../kernel/program.js';
import { FileMemory } from '../memory/physical-memory.js';
import { QmpPause } from '../qemu/vm-pause.js';

/** Dumps the tree of a guest cgroup into `dir` (absent; created whole or not at all). */
export type DumpFn = (cgroup: string, dir: string, container: ContainerSpec | undefined) => Promise<DumpReport>;

export interface GuestRamSource {
  /** Opens the guest's RAM as it is laid out now (a restarted lab guest has a new file). */
  open(): Promise<FileMemory>;
  /** The QMP socket, to pause the VM for the final check of a dump. */
  qmpSocket: string;
}

interface Attached {
  mem: FileMemory;
  prog: Program;
  users: number;
  stale: boolean;
}

/**
 * The guest's kernel as the backend reads it: attached once (vmcoreinfo,
 * kallsyms; BTF on demand), refreshed by every read of a request, and
 * attached again after reset(), which the backend calls whenever the
 * channel reconnects: that is when QEMU may have been restarted, and a
 * guest that rebooted resets the channel too (its relay does on start).
 */
export class GuestRam {
  private attached?: Promise<Attached>;
  /** Pauses of concurrent dumps take turns: one's cont() must not end another's pause. */
  private pauseQueue: Promise<void> = Promise.resolve();

  constructor(private readonly source: GuestRamSource) {}

  /** The dump function over this guest, for BackendService. */
  readonly dump: DumpFn = (cgroup, dir, container) => this.use(async (prog) => {
    const tree = await settle(() => live(prog, () => treeOfCgroup(prog, cgroup)));
    return dumpTree(prog, tree, dir, { container, pause: this.pause(), progress: (line) => log.debug(line) });
  });

  /** Attach again on the next request; RAM in use by a running dump is closed once it is done. */
  reset(): void {
    const old = this.attached;
    this.attached = undefined;
    old?.then((a) => {
      a.stale = true;
      if (a.users === 0) a.mem.close();
    }, () => undefined);
  }

  private async use<T>(fn: (prog: Program) => Promise<T>): Promise<T> {
    if (!this.attached) {
      const attaching = this.attach();
      this.attached = attaching;
      // A failed attach is tried again by the next request.
      attaching.catch(() => {
        if (this.attached === attaching) this.attached = undefined;
      });
    }
    const a = await this.attached;
    a.users++;
    try {
      return await fn(a.prog);
    } finally {
      if (--a.users === 0 && a.stale) a.mem.close();
    }
  }

  private async attach(): Promise<Attached> {
    const t = Date.now();
    const mem = await this.source.open();
    try {
      const prog = Program.attach(mem);
      log.info(`attached to the guest kernel ${prog.info.osRelease} in ${Date.now() - t} ms`);
      return { mem, prog, users: 0, stale: false };
    } catch (err) {
      mem.close();
      throw err;
    }
  }

  /** A VmPause for one dump, over a QMP connection of its own (QEMU's monitor is not ours to hold). */
  private pause(): VmPause {
    let qmp: QmpPause | undefined;
    let unlock = (): void => undefined;
    return {
      stop: async () => {
        unlock = await this.turn();
        try {
          qmp = await QmpPause.connect(this.source.qmpSocket);
          await qmp.stop();
        } catch (err) {
          qmp?.close();
          unlock();
          throw err;
        }
      },
      cont: async () => {
        try {
          await qmp!.cont();
        } finally {
          qmp!.close();
          unlock();
        }
      },
    };
  }

  /** Waits for the previous pause to end; resolves with the function that ends this one. */
  private turn(): Promise<() => void> {
    let release!: () => void;
    const done = new Promise<void>((resolve) => (release = resolve));
    const turn = this.pauseQueue.then(() => release);
    this.pauseQueue = this.pauseQueue.then(() => done);
    return turn;
  }
}

import { UnavailableError, errorMessage } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { DumpQuota } from '../dump/budget.js';
import { ContainerSpec } from '../dump/container.js';
import { DumpReport, VmPause, dumpTree } from '../dump/dump.js';
import { live, settle } from '../dump/select.js';
import { treeOfCgroup } from '../dump/tree.js';
import { Program } from '../kernel/program.js';
import { FileMemory } from '../memory/physical-memory.js';
import { QmpPause } from '../qemu/vm-pause.js';

/** Dumps the tree of a guest cgroup into `dir` (absent; created whole or not at all), within the request's deadline. */
export type DumpFn = (cgroup: string, dir: string, container: ContainerSpec | undefined, signal?: AbortSignal, opts?: BackendDumpOptions) => Promise<DumpReport>;

/** What the guest's request asks of the dump itself. */
export interface BackendDumpOptions {
  /** The shim kills the container after the checkpoint (containerd's open_tcp with exit): established TCP is repaired. */
  tcpEstablished?: boolean;
}

export interface GuestRamSource {
  /** Opens the guest's RAM as it is laid out now (a restarted lab guest has a new file). */
  open(): Promise<FileMemory>;
  /** The QMP socket, to pause the VM for the final check of a dump. */
  qmpSocket: string;
  /** The operator's bounds on one dump of this VM (`serve` options); unset ones follow its RAM. */
  quota?: DumpQuota;
}

/** First wait after a failed attach; doubled on each further failure up to the cap. */
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 5 * 60_000;

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
  /** The last failed attach, and when the next may be tried. */
  private failure?: { error: unknown; wait: number; until: number };
  /** Pauses of concurrent dumps take turns: one's cont() must not end another's pause. */
  private pauseQueue: Promise<void> = Promise.resolve();

  constructor(private readonly source: GuestRamSource, private readonly now: () => number = Date.now) {}

  /** The dump function over this guest, for BackendService. */
  readonly dump: DumpFn = (cgroup, dir, container, signal, opts) => this.use(async (prog) => {
    const tree = await settle(() => live(prog, () => treeOfCgroup(prog, cgroup)), undefined, signal);
    return dumpTree(prog, tree, dir, { container, signal, tcpEstablished: opts?.tcpEstablished, quota: this.source.quota, pause: this.pause(), progress: (line) => log.debug(logSafe(line)) });
  });

  /** Attach again on the next request; RAM in use by a running dump is closed once it is done. */
  reset(): void {
    // A new channel may be a new guest: a failed attach is tried again at once.
    this.failure = undefined;
    const old = this.attached;
    this.attached = undefined;
    old?.then((a) => {
      a.stale = true;
      if (a.users === 0) a.mem.close();
    }, () => undefined);
  }

  private async use<T>(fn: (prog: Program) => Promise<T>): Promise<T> {
    if (!this.attached) {
      // A kernel that failed to attach is not read again on every request: what it made us read and decode costs the host.
      const f = this.failure;
      if (f && this.now() < f.until) {
        throw new UnavailableError(`the guest kernel failed to attach; next attempt in ${Math.ceil((f.until - this.now()) / 1000)} s: ${errorMessage(f.error)}`, { cause: f.error });
      }
      const attaching = this.attach();
      this.attached = attaching;
      attaching.then(() => { this.failure = undefined; }, (error: unknown) => {
        if (this.attached === attaching) this.attached = undefined;
        const wait = f ? Math.min(f.wait * 2, BACKOFF_MAX_MS) : BACKOFF_FIRST_MS;
        this.failure = { error, wait, until: this.now() + wait };
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
      log.info(`attached to the guest kernel ${logSafe(prog.info.osRelease)} in ${Date.now() - t} ms`);
      return { mem, prog, users: 0, stale: false };
    } catch (err) {
      mem.close();
      throw err;
    }
  }

  /** A VmPause for one dump, over a QMP connection of its own (QEMU's monitor is not ours to hold). */
  private pause(): VmPause {
    let qmp: QmpPause | undefined;
    let unlock: (() => void) | undefined;
    return {
      stop: async (budgetMs) => {
        unlock = await this.turn();
        qmp = await QmpPause.connect(this.source.qmpSocket);
        await qmp.stop(budgetMs);
      },
      // Called in finally after every stop, failed or not: a no-op when nothing was stopped.
      cont: async () => {
        try {
          await qmp?.cont();
        } finally {
          qmp?.close();
          qmp = undefined;
          unlock?.();
          unlock = undefined;
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

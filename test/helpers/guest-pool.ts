import fs from 'node:fs';
import path from 'node:path';
import { startGuestContainerd } from '../lab/containerd.js';
import { startGuestCri } from '../lab/cri-node.js';
import { rootShare } from '../lab/initramfs.js';
import { ensureKernel } from '../lab/kernel.js';
import { DEFAULT_KERNEL, kernelChoiceName, parseKernelChoice } from '../lab/kernel-packages.js';
import { components } from './components.js';
import { cli } from './cli.js';
import { UpResult, labUp, testGuestName } from './lab-guests.js';

/**
 * What a pooled guest is: the boot configuration (page-table levels, a
 * virtiofs share) and a slot, so that a suite needing two alike guests (A
 * dumps, B restores) gets two. `containerd` is not a guest of its own: a
 * pooled guest runs containerd from its boot when any suite of the run asks
 * for it there, so suites with and without it share one guest; so does `cri`.
 */
export interface PoolKey {
  paging?: 4 | 5;
  containerd?: boolean;
  /**
   * A CRI node (test/lab/cri-node.ts): containerd with its CRI plugin (in
   * k8s.io, beside the suites' own namespaces), ovmigrate-cri and crictl.
   * Like containerd, a feature of the pooled guest, not a guest of its own:
   * containerd runs with its CRI plugin from the boot, ovmigrate-cri and
   * crictl (a Go build) from when the first suite with this key takes it.
   */
  cri?: boolean;
  /** Which containerd: Debian's 1.6 (default), or 2.x from the components cache, always with its CRI (a guest of its own). */
  containerdVersion?: '1.6' | '2';
  /** Also the pool's virtiofs share (paths().virtiofs), over virtiofsd. */
  virtiofs?: boolean;
  slot?: 'a' | 'b';
  /** The guest kernel (`lab up --kernel`); default 6.1. */
  kernel?: PoolKernel;
}

/** A lab kernel choice as `lab up --kernel` takes it (`6.1`, `6.12`, `6.1-rt`, `6.12-cloud`; kernel-packages.ts). */
export type PoolKernel = string;
/**
 * The kernels the kernel-parameterised suites run on (OVMIGRATE_TEST_KERNELS=6.12 for one of them, `6.12,6.1-rt`
 * for several, any of the six builds): each has its own pooled guests, which boot only when a suite of the run
 * declares them.
 */
export const POOL_KERNELS: readonly PoolKernel[] = (process.env.OVMIGRATE_TEST_KERNELS ?? '6.1,6.12').split(',')
  .map((k) => k.trim()).filter(Boolean).map((k) => kernelChoiceName(parseKernelChoice(k)));

/** A kernel's part of a suite id or guest label: nothing for 6.1, else its letters and digits (`612`, `61rt`, `612cloud`). */
export function kernelTag(kernel: PoolKernel): string {
  return kernel === '6.1' ? '' : kernel.replace(/[^a-z0-9]/g, '');
}

/** A kernel's part of a suite title: nothing for 6.1, else ` (kernel 6.12-rt)`. */
export function kernelTitle(kernel: PoolKernel): string {
  return kernel === '6.1' ? '' : ` (kernel ${kernel})`;
}

/** Pooled guests' labels start with this, so the lab tests can tell them from their own. */
export const POOL_LABEL = 'pool-';
/** TCG boots are CPU-bound and this machine may have 2 cores: more at once only makes each slower. */
const PARALLEL_BOOTS = 2;
/** Seconds a pooled guest may take to boot: it may boot beside another and beside a running suite. */
const BOOT_TIMEOUT_S = 300;

function label(key: PoolKey): string {
  const kernel = key.kernel && kernelTag(key.kernel) ? `-k${kernelTag(key.kernel)}` : '';
  return `${POOL_LABEL}p${key.paging ?? 5}${key.virtiofs ? '-vfs' : ''}${key.containerdVersion === '2' ? '-cd2' : ''}${kernel}-${key.slot ?? 'a'}`;
}

/**
 * Guests shared by the integration suites of one mocha run: booted ahead
 * (from the start of the run, in the order the suites will want them), kept
 * across suites, stopped as soon as the last suite that declared one has
 * left (an idle TCG guest still costs CPU), the rest by the root hook. A
 * guest is only ever used by one suite at a time (mocha runs suites one after
 * another); each suite isolates itself (see PoolSuite) and cleans up.
 */
class GuestPool {
  private readonly guests = new Map<string, Promise<UpResult>>();
  /** A booted guest made ready for the suites that run Go components in it (setUp), by label. */
  private readonly setUps = new Map<string, Promise<UpResult>>();
  private readonly declared = new Map<string, PoolKey>();
  /** Guests some suite uses without their Go components (setUp waits until a suite that needs them takes it). */
  private readonly plain = new Set<string>();
  /** Suites still to leave each guest, by label. */
  private readonly users = new Map<string, number>();
  private readonly stopping: Promise<unknown>[] = [];
  private dirs?: { root: string; share: string; virtiofs: string };
  private booting = 0;
  private readonly waiting: (() => void)[] = [];

  /**
   * The run's pool directory: `share` is every pooled guest's one --share (a
   * share must be given at boot), suites work in subdirectories of it; the
   * rest of `root` is invisible to the guests (the backends' staging).
   * `virtiofs` is the share of the guests with the virtiofs key.
   */
  paths(): { root: string; share: string; virtiofs: string } {
    if (!this.dirs) {
      const root = fs.mkdtempSync(`/var/tmp/ovmigrate-pool-${process.pid}-`);
      // Servers that drop root (postgres) reach their data on the share through it, in the host and in the guests.
      fs.chmodSync(root, 0o711);
      const share = path.join(root, 'share');
      const virtiofs = path.join(root, 'virtiofs');
      fs.mkdirSync(share);
      fs.mkdirSync(virtiofs);
      this.dirs = { root, share, virtiofs };
    }
    return this.dirs;
  }

  /**
   * The guest for this key, booted on first demand; for a key that runs Go
   * components in it (crictl on a CRI node, containerd 2.x), also set up for
   * them, which waits for their build: only the suites that asked for them
   * wait, never a suite that shares the guest without them.
   */
  guest(key: PoolKey): Promise<UpResult> {
    const name = label(key);
    const up = this.booted(name, key);
    if (!componentsOf(key).length) return up;
    let ready = this.setUps.get(name);
    if (!ready) {
      const settingUp = up.then((u) => this.setUp(u, this.declared.get(name) ?? key));
      settingUp.catch(() => {
        if (this.setUps.get(name) === settingUp) this.setUps.delete(name);
      });
      this.setUps.set(name, settingUp);
      ready = settingUp;
    }
    return ready;
  }

  private booted(name: string, key: PoolKey): Promise<UpResult> {
    let up = this.guests.get(name);
    if (!up) {
      const booting = this.boot(name, key);
      // A failed boot is not cached: the next suite tries again.
      booting.catch(() => {
        if (this.guests.get(name) === booting) this.guests.delete(name);
      });
      this.guests.set(name, booting);
      up = booting;
    }
    return up;
  }

  /** A suite of this run will ask for these (suites declare their guests when mocha loads them). */
  declare(keys: PoolKey[]): void {
    for (const key of keys) {
      const name = label(key);
      const known = this.declared.get(name);
      this.declared.set(name, { ...key, containerd: Boolean(known?.containerd || key.containerd), cri: Boolean(known?.cri || key.cri) });
      this.users.set(name, (this.users.get(name) ?? 0) + 1);
      if (!componentsOf(key).length) this.plain.add(name);
      components.declare(componentsOf(key));
    }
  }

  /** A suite that declared these has left them: a guest no suite will use again stops now. */
  release(keys: PoolKey[]): void {
    for (const key of keys) {
      const name = label(key);
      const left = (this.users.get(name) ?? 1) - 1;
      this.users.set(name, left);
      const up = this.guests.get(name);
      if (left > 0 || !up) continue;
      this.guests.delete(name);
      this.setUps.delete(name);
      this.stopping.push(up.catch(() => undefined).then(() => cli(['lab', 'down', testGuestName(name)])).catch(() => undefined));
    }
  }

  /**
   * Boots every declared guest in the background, in the order the suites declared them, ahead of their suites;
   * one that only suites with its components use is set up for them too (a shared one when such a suite takes it:
   * the set-up would run beside another suite's tests).
   */
  prepare(): void {
    for (const [name, key] of this.declared) {
      if ((this.users.get(name) ?? 0) === 0) continue;
      (this.plain.has(name) ? this.booted(name, key) : this.guest(key)).catch(() => undefined);
    }
  }

  private async boot(name: string, asked: PoolKey): Promise<UpResult> {
    const key = this.declared.get(name) ?? asked;
    await this.bootSlot();
    let up: UpResult;
    try {
      // A kernel without 9p (Debian's cloud flavour) gets the pool's share over virtiofs, at the same path.
      const shareFlag = await sharesOver9p(key.kernel) ? '--share' : '--virtiofs';
      const args = [shareFlag, this.paths().share, '--boot-timeout', String(BOOT_TIMEOUT_S)];
      if (key.paging === 4) args.push('--paging', '4');
      if (key.virtiofs) args.push('--virtiofs', this.paths().virtiofs);
      if (key.kernel) args.push('--kernel', key.kernel);
      try {
        up = await labUp(name, args);
      } catch {
        // Once more: under heavy host load a TCG guest's early timer check can panic its kernel
        // ("IO-APIC + timer doesn't work"); a second failure is the suite's.
        await cli(['lab', 'down', testGuestName(name)]);
        up = await labUp(name, args);
      }
    } finally {
      this.booting--;
      this.waiting.shift()?.();
    }
    // Debian's containerd (with its CRI plugin on a CRI node) needs no Go component: it runs from the boot, for
    // every suite alike; the rest of a CRI node, and containerd 2.x, wait for their build in setUp.
    if ((key.containerdVersion ?? '1.6') === '1.6' && (key.cri || key.containerd)) {
      await startGuestContainerd(up.name, key.cri ? { cri: { line: '1.6' } } : {});
    }
    return up;
  }

  /**
   * A booted guest's Go-built part, once (out of the boot slot: on a cold
   * cache the components may still be building): crictl and ovmigrate-cri
   * in front of the running containerd on a CRI node; containerd 2.x.
   */
  private async setUp(up: UpResult, key: PoolKey): Promise<UpResult> {
    for (const id of componentsOf(key)) await components.ready(id);
    const line = key.containerdVersion ?? '1.6';
    if (key.cri) await startGuestCri(up.name, { work: path.join(this.paths().share, '.cri-images'), line });
    else if (line === '2') await startGuestContainerd(up.name, { cri: { line } });
    return up;
  }

  private async bootSlot(): Promise<void> {
    if (this.booting >= PARALLEL_BOOTS) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.booting++;
  }

  /** Stops the pooled guests and removes the pool directory; the root hook calls it once, at the end. */
  async stop(): Promise<void> {
    const names = [...this.guests.keys()];
    this.guests.clear();
    this.setUps.clear();
    await Promise.all([...this.stopping, ...names.map((n) => cli(['lab', 'down', testGuestName(n)]))]);
    this.stopping.length = 0;
    if (this.dirs) fs.rmSync(this.dirs.root, { recursive: true, force: true });
    this.dirs = undefined;
  }
}

export const guestPool = new GuestPool();

/**
 * The pinned Go programs a suite with this key runs in its pooled guest: crictl on a CRI node; containerd 2.x,
 * whose start (containerd-v2.ts) also names crictl and checkpointctl.
 */
function componentsOf(key: PoolKey): string[] {
  const line = key.containerdVersion ?? '1.6';
  return [...(line === '2' ? ['containerd', 'checkpointctl'] : []), ...(key.cri || line === '2' ? ['cri-tools:crictl'] : [])];
}

/** Whether guests of this kernel mount 9p shares (the lab's own test: its root share is 9p only where 9p exists). */
async function sharesOver9p(kernel: PoolKernel = kernelChoiceName(DEFAULT_KERNEL)): Promise<boolean> {
  return rootShare(await ensureKernel(parseKernelChoice(kernel))) === '9p';
}

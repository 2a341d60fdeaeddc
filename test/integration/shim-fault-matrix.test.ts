import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { requirePrograms } from '../helpers/cli.js';
import { Rng } from '../fuzz/harness.js';
import { ChannelCutProxy } from '../helpers/channel-cut-proxy.js';
import { FaultBackend } from '../helpers/fault-backend.js';
import { GuestRamCorrupter } from '../helpers/guest-ram-corrupter.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { QmpFault, QmpFaultProxy, contIfStopped, vmStatus } from '../helpers/qmp-fault-proxy.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';

const RUNTIME = '--runtime io.containerd.ovmigrate.v1';
const ID = 'f1';
/** A counter appending to a file of the container's rootfs every 0.2 s, beside 24 MiB of touched memory (a dump that takes a moment). */
const LOOP = '/hog 24 >/dev/null & i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done';
/** Where the guest sees the backend's image directory: a bind mount of it, so that a case can take it away. */
const GUEST_IMAGES = '/run/ovmfault-images';
/** The freeze marker the shim writes into the bundle (shim/containerd/freezer.ts). */
const MARKER = 'ovmigrate-frozen.json';

/** What one injected fault did, for the summary. */
interface Outcome {
  fault: string;
  checkpoint: 'failed' | 'succeeded';
  lost: boolean;
  frozen: boolean;
  vmStopped: boolean;
  leftOnShare: number;
  /** How the backend ended the request, where the case looks. */
  detail?: string;
}

/**
 * The fault matrix through the whole path (shim, relay, channel, backend,
 * QMP, share): one container in a pooled containerd guest is checkpointed
 * while each fault is injected. For each, the container ends running and
 * thawed (or containerd's dead-shim cleanup removes it, for the shim's own
 * death), no partial checkpoint image is in containerd or on the share,
 * the VM runs, and the backend serves the next checkpoint.
 */
describe('shim fault matrix: the container ends running and thawed whatever fails on the way out of the VM', function () {
  const suite = new PoolSuite('shimfault', [{ containerd: true, slot: 'a' }]);
  const ns = suite.namespace;
  const sh = suite.sh;
  const outcomes: Outcome[] = [];
  /** Whole image directories a killed backend never released (the backend's to reclaim). */
  const leftWhole: string[] = [];
  let g: UpResult;
  let share: string;
  let images: string;
  let staging: string;
  let backend: FaultBackend;
  let bundle: string;

  const ctr = (args: string, timeoutS?: number) => sh(g.name, `ctr -n ${ns} ${args}`, timeoutS);
  /** The task's status; UNKNOWN is containerd's State call timing out (2 s) in a guest slowed by TCG: asked again. */
  const status = async () => {
    let st: string | undefined;
    for (let i = 0; i < 5; i++) {
      st = new RegExp(`^${ID}\\s+\\d+\\s+(\\w+)$`, 'm').exec(await ctr('task ls'))?.[1];
      if (st !== 'UNKNOWN') break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    return st;
  };
  const count = async () => Number((await ctr(`task exec --exec-id n${Date.now()} ${ID} sh -c 'wc -l < /tmp/count'`)).trim());
  const sequence = async () => (await ctr(`task exec --exec-id s${Date.now()} ${ID} cat /tmp/count`)).trim().split('\n').map(Number);
  const checkpointImages = async () => (await ctr('image ls -q')).split('\n').filter((l) => l.includes(`checkpoint/${ID}:`));
  const shimConfig = (config: object) => sh(g.name, `mkdir -p /etc/ovmigrate && echo '${JSON.stringify(config)}' > /etc/ovmigrate/shim.json`);
  const standardBackend = () => backend.start({ images, staging });
  /** The container's cgroup freeze state (cgroup v2): 1 while frozen. */
  const frozen = async () => (await sh(g.name, `pid=$(ctr -n ${ns} task ls | awk '$1 == "${ID}" {print $2}')
    cat /sys/fs/cgroup$(cut -d: -f3 /proc/$pid/cgroup)/cgroup.freeze`)).trim() === '1';

  /**
   * `ctr task checkpoint` of the container, with `trigger` run in the guest
   * beside it once the container is frozen (containerd pauses a task around
   * its checkpoint, else the shim does), e.g. touching a flag on the share
   * for the host to act on.
   */
  async function checkpoint(trigger?: string): Promise<{ ok: boolean; out: string }> {
    const done = `/tmp/ovmfault-done-${Date.now()}`;
    const out = await sh(g.name, `DONE=${done}
      cg=/sys/fs/cgroup$(cut -d: -f3 /proc/$(ctr -n ${ns} task ls | awk '$1 == "${ID}" {print $2}')/cgroup)
      ${trigger ? `( until grep -q 'frozen 1' $cg/cgroup.events || [ -e ${done} ]; do sleep 0.01; done; [ -e ${done} ] || { ${trigger}; } ) &` : ''}
      ctr -n ${ns} task checkpoint ${ID} 2>&1; echo "exit=$?"; touch ${done}; wait; rm -f ${done}`, 300);
    return { ok: /exit=0\s*$/.test(out), out };
  }

  /** A guest script line: waits for a file (a flag the host sets), or for the checkpoint to be over. */
  const waitFor = (file: string) => `until [ -e ${file} ] || [ -e $DONE ]; do sleep 0.01; done`;

  /** Resolves once the guest has touched `flag` on the share. */
  async function flagged(flag: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fs.existsSync(flag)) {
      if (Date.now() > deadline) throw new Error(`the guest never reached ${flag}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  /** The checks every case ends with; the outcome goes into the summary before any assertion fails. */
  async function settled(fault: string, result: { ok: boolean; out: string }, before: string[], expect: 'fail' | 'either', vmWasStopped = false): Promise<void> {
    const st = await status().catch(() => undefined);
    const isFrozen = st ? await frozen().catch(() => true) : false;
    const vm = await vmStatus(g.qmpSocket);
    const left = fs.readdirSync(images).filter((n) => !unreleased().has(n));
    const outcome: Outcome = {
      fault, checkpoint: result.ok ? 'succeeded' : 'failed', lost: st !== 'RUNNING', frozen: isFrozen, vmStopped: !vm.running || vmWasStopped, leftOnShare: left.length,
    };
    outcomes.push(outcome);
    if (!vm.running) await contIfStopped(g.qmpSocket);
    assert.ok(vm.running && !vmWasStopped, `${fault}: the VM was left ${vmWasStopped ? 'stopped (the test resumed it)' : vm.status}`);
    assert.equal(st, 'RUNNING', `${fault}: the task runs:\n${result.out}`);
    assert.ok(!isFrozen, `${fault}: the container is thawed`);
    assert.equal((await sh(g.name, `test -e ${bundle}/${MARKER} && echo marked || echo clear`)).trim(), 'clear', `${fault}: no freeze marker left`);
    const n = await count();
    await sh(g.name, 'sleep 1');
    const seq = await sequence();
    assert.ok(seq.length > n, `${fault}: the counter goes on`);
    assert.deepEqual(seq, seq.map((_, i) => i + 1), `${fault}: every number once, in order`);
    const after = await checkpointImages();
    // ctr's next checkpoint of the container fails on content of this one ("already exists") while its image is there.
    const made = after.filter((i) => !before.includes(i));
    if (made.length) await ctr(`image rm ${made.join(' ')} >/dev/null`);
    if (expect === 'fail') assert.ok(!result.ok, `${fault}: the checkpoint failed:\n${result.out}`);
    assert.equal(after.length, before.length + (result.ok ? 1 : 0), `${fault}: a checkpoint image only for a checkpoint that succeeded:\n${result.out}`);
  }

  /** The backend (restarted as it normally runs) serves the next checkpoint, and everything is released. */
  async function servesNext(fault: string): Promise<void> {
    if (!backend.running) await standardBackend();
    await shimConfig({ images: GUEST_IMAGES, checkpointTimeoutMs: 120_000 });
    const mark = backend.log.length;
    const r = await checkpoint();
    assert.ok(r.ok, `after ${fault}: the next checkpoint succeeds:\n${r.out}\n${backend.log.slice(mark).join('\n')}`);
    assert.ok(backend.log.slice(mark).some((l) => /released [0-9a-f]{32}/.test(l)), `after ${fault}: made by the backend and released:\n${backend.log.slice(mark).join('\n')}`);
    const made = await checkpointImages();
    if (made.length) await ctr(`image rm ${made.join(' ')} >/dev/null`);
    // A backend killed after answering never hears the release: its directory stays whole (published by a
    // rename), for a restarted backend to reclaim. Anything else on the share is a leftover.
    const left = fs.readdirSync(images);
    const stale = unreleased();
    assert.deepEqual(left.filter((n) => !stale.has(n)), [], `after ${fault}: no image directory left on the share`);
    if (left.length) leftWhole.push(...left.filter((n) => !leftWhole.includes(n)));
  }

  /** Image directories the backend published (whole) and never released: it was killed before the release. */
  function unreleased(): Set<string> {
    const published = new Set(backend.log.flatMap((l) => /-> ([0-9a-f]{32})/.exec(l)?.[1] ?? []));
    for (const l of backend.log) {
      const released = /released ([0-9a-f]{32})/.exec(l)?.[1];
      if (released) published.delete(released);
    }
    return published;
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'python3', 'busybox', 'gcc']);
    share = suite.dir;
    images = path.join(share, 'images');
    fs.mkdirSync(images);
    staging = suite.hostDir('staging');
    execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'hog'), path.join(__dirname, '..', '..', '..', 'test', 'programs', 'hog.c')]);
    [[g]] = await Promise.all([suite.guests(), buildBusyboxImage(path.join(share, 'busybox.tar'))]);
    await ctr(`image import ${share}/busybox.tar >/dev/null`);
    await sh(g.name, `mkdir -p ${GUEST_IMAGES} && mount --bind ${images} ${GUEST_IMAGES}`);
    await shimConfig({ images: GUEST_IMAGES, checkpointTimeoutMs: 120_000 });
    backend = new FaultBackend(g.name, suite.hostDir('vms'));
    await standardBackend();
    await ctr(`run -d ${RUNTIME} --mount type=bind,src=${share}/hog,dst=/hog,options=rbind:ro ${BUSYBOX_IMAGE} ${ID} sh -c '${LOOP}'`);
    bundle = `/run/containerd/io.containerd.runtime.v2.task/${ns}/${ID}`;
    await sh(g.name, `test -d ${bundle} && for i in $(seq 100); do ctr -n ${ns} task exec --exec-id w$i ${ID} test -s /tmp/count && break; sleep 0.5; done`);
    // The first checkpoint attaches to the guest kernel: the faults then strike a warm backend.
    await servesNext('setup');
  });

  // A case that failed before its backend was restarted leaves the next one a backend all the same.
  beforeEach(async () => {
    if (backend && !backend.running) await standardBackend();
  });

  after(async () => {
    const lost = outcomes.filter((o) => o.lost).length;
    const frozenLeft = outcomes.filter((o) => o.frozen).length;
    console.log(`      fault matrix: ${outcomes.length} faults injected, ${lost} containers lost, ${frozenLeft} left frozen, `
      + `${outcomes.filter((o) => o.vmStopped).length} VMs left stopped`);
    if (leftWhole.length) console.log(`      whole image directories never released (backend killed before the release): ${leftWhole.length}; on the share at the end: ${fs.readdirSync(images).length}`);
    for (const o of outcomes) console.log(`        ${o.fault}: checkpoint ${o.checkpoint}${o.lost ? ', LOST' : ''}${o.frozen ? ', FROZEN' : ''}${o.vmStopped ? ', VM STOPPED' : ''}${o.leftOnShare ? `, ${o.leftOnShare} left on the share` : ''}${o.detail ? ` (${o.detail})` : ''}`);
    await backend?.stop();
    if (g) {
      await sh(g.name, `umount ${GUEST_IMAGES} 2>/dev/null; rm -f /etc/ovmigrate/shim.json
        [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`).catch(() => undefined);
    }
    await suite.leave();
  });

  for (const [stage, pattern] of [
    ['before it answers (container frozen, request on its way)', undefined],
    ['mid-dump', /planned \d+ processes/],
    ['after it answered, before the release', /checkpoint f1 .* -> [0-9a-f]{32}/],
  ] as const) {
    it(`backend killed ${stage}`, async () => {
      const fault = `backend SIGKILL ${stage.split(' (')[0]}`;
      const before = await checkpointImages();
      const flag = path.join(share, `flag-${Date.now()}`);
      const mark = backend.log.length;
      const killer = (pattern ? backend.reached(pattern, mark) : flagged(flag).then(() => true)).then(() => backend.stop());
      const result = await checkpoint(pattern ? undefined : `touch ${flag}`);
      await killer;
      // Killed before the answer: the checkpoint fails, or, when the kill beat the shim's hello, falls back to CRIU
      // in the guest (the default). Killed after: the checkpoint is whole, and only its release was lost.
      await settled(fault, result, before, pattern && /mid-dump/.test(stage) ? 'fail' : 'either');
      // Killed mid-dump, the checkpoint fails saying what went (what shim-checkpoint's dying backend checked).
      if (pattern && /mid-dump/.test(stage)) assert.match(result.out, /backend|channel|unavailable|connection/i, result.out);
      await servesNext(fault);
    });
  }

  it('channel cut: the guest\'s relay killed mid-dump', async () => {
    const before = await checkpointImages();
    const [cut, restart] = [path.join(share, `cut-${Date.now()}`), path.join(share, `cut-done-${Date.now()}`)];
    const mark = backend.log.length;
    // The backend is held mid-dump (before it pauses the VM) until the guest has killed its relay: the cut
    // lands mid-request, however fast the dump.
    const held = backend.reached(/planned \d+ processes/, mark).then(async (reached) => {
      if (reached) backend.signal('SIGSTOP');
      fs.writeFileSync(cut, '');
      await flagged(restart).finally(() => backend.signal('SIGCONT'));
    });
    const result = await checkpoint(`${waitFor(cut)}; [ -e ${cut} ] && kill -9 $(cat /run/ovmigrate/relay.pid); touch ${restart}`);
    await held;
    await settled('relay SIGKILL mid-dump', result, before, 'fail');
    await servesNext('relay SIGKILL mid-dump');
  });

  for (const [stage, pattern] of [
    ['before it answers (container frozen, request on its way)', undefined],
    ['mid-dump', /planned \d+ processes/],
    ['after it answered, before the release', /checkpoint f1 .* -> [0-9a-f]{32}/],
  ] as const) {
    it(`host side of the channel closed ${stage}: the backend's connection to the chardev cut`, async () => {
      const fault = `host channel closed ${stage.split(' (')[0]}`;
      const proxy = await ChannelCutProxy.start(path.join(suite.hostDir('channel'), 'cut.sock'), g.channelSocket);
      try {
        await backend.start({ images, staging, channelSocket: proxy.socket });
        const before = await checkpointImages();
        const flag = path.join(share, `flag-${Date.now()}`);
        const mark = backend.log.length;
        const cutter = (pattern ? backend.reached(pattern, mark) : flagged(flag).then(() => true)).then((reached) => {
          if (!reached) return;
          // The backend is held while the cut lands: it strikes at this stage however fast the dump runs.
          backend.signal('SIGSTOP');
          try {
            proxy.cut();
          } finally {
            backend.signal('SIGCONT');
          }
        });
        const result = await checkpoint(pattern ? undefined : `touch ${flag}`);
        await cutter;
        assert.ok(proxy.cuts > 0, `${fault}: the channel was cut:\n${backend.log.slice(mark).join('\n')}`);
        // Cut mid-dump, the shim has no answer to wait for; before or after, the relay may carry the request anew.
        await settled(fault, result, before, /mid-dump/.test(stage) ? 'fail' : 'either');
        // The same backend, connected again through the proxy (not restarted), serves the next checkpoint.
        assert.ok(backend.running, `${fault}: the backend runs on`);
        await servesNext(fault);
        assert.ok(proxy.connections > 1, `${fault}: the backend connected to the channel again`);
      } finally {
        await backend.stop();
        await proxy.close();
      }
    });
  }

  it('guest RAM corrupted mid-dump: the process\'s page-table root and task->mm overwritten while the backend has the VM paused', async () => {
    const fault = 'guest RAM corrupted mid-dump (under the pause)';
    const pid = Number((await ctr('task ls')).match(new RegExp(`^${ID}\\s+(\\d+)`, 'm'))?.[1]);
    const ram = new GuestRamCorrupter(g);
    // A fixed seed: a failing run replays.
    const rng = new Rng(0x11);
    let proxy: QmpFaultProxy | undefined;
    try {
      ram.aim(pid);
      // The bytes go back before any cont reaches QEMU (the backend's, or its watchdog's): the guest's kernel never runs on them.
      proxy = await QmpFaultProxy.start(path.join(suite.hostDir('qmp'), 'corrupt.sock'), g.qmpSocket, 'pass', {
        afterStop: () => ram.strike(rng),
        beforeCont: () => ram.restore(),
      });
      await backend.start({ images, staging, qmpSocket: proxy.socket });
      const before = await checkpointImages();
      const mark = backend.log.length;
      const result = await checkpoint();
      const resumedClean = !ram.corrupted;
      ram.restore();
      assert.ok(proxy.injected > 0, `${fault}: the backend paused the VM, and the corruption struck:\n${backend.log.slice(mark).join('\n')}`);
      await settled(fault, result, before, 'either');
      const said = backend.log.slice(mark).find((l) => /checkpoint f1 .* (failed|->)/.test(l));
      outcomes[outcomes.length - 1].detail = said?.replace(/^.*checkpoint f1 \([^)]*\) /, '').slice(0, 200);
      assert.ok(resumedClean, `${fault}: the backend resumed the VM itself`);
    } finally {
      ram.close();
      await backend.stop();
      await proxy?.close();
    }
    await servesNext(fault);
  });

  it('share full: the image directory on a 4 MiB file system (ENOSPC)', async () => {
    const tiny = path.join(share, 'tiny');
    fs.mkdirSync(tiny);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', tiny]);
    try {
      for (const d of ['images', 'staging']) fs.mkdirSync(path.join(tiny, d));
      // The description declares only tiny/images as shared, so that the staging beside it (same file system) passes.
      await backend.start({ images: path.join(tiny, 'images'), staging: path.join(tiny, 'staging'), shares: [path.join(tiny, 'images')] });
      await shimConfig({ images: path.join(tiny, 'images'), checkpointTimeoutMs: 120_000 });
      const before = await checkpointImages();
      const mark = backend.log.length;
      const result = await checkpoint();
      assert.ok(backend.log.slice(mark).some((l) => /ENOSPC|no space/i.test(l)), `the dump ran out of space:\n${backend.log.slice(mark).join('\n')}`);
      await settled('share full (ENOSPC)', result, before, 'fail');
      assert.deepEqual(fs.readdirSync(path.join(tiny, 'images')), [], 'nothing partial in the image directory');
      assert.deepEqual(fs.readdirSync(path.join(tiny, 'staging')), [], 'nothing partial staged');
    } finally {
      await backend.stop();
      execFileSync('umount', ['-l', tiny]);
    }
    await servesNext('share full');
  });

  it('share removed: the image directory unmounted in the guest', async () => {
    const before = await checkpointImages();
    await sh(g.name, `umount ${GUEST_IMAGES}`);
    let result: { ok: boolean; out: string };
    try {
      result = await checkpoint();
    } finally {
      await sh(g.name, `mount --bind ${images} ${GUEST_IMAGES}`);
    }
    await settled('share removed', result, before, 'fail');
    const stale = unreleased();
    assert.deepEqual(fs.readdirSync(images).filter((n) => !stale.has(n)), [], 'the images the shim could not read were released');
    await servesNext('share removed');
  });

  for (const [fault, what] of [['refuse', 'refuses every connection'], ['stop', 'answers stop with an error'], ['cont', 'answers the first cont with an error']] as [QmpFault, string][]) {
    it(`QMP failing: the backend's QMP socket ${what}`, async () => {
      const proxy = await QmpFaultProxy.start(path.join(suite.hostDir('qmp'), `${fault}.sock`), g.qmpSocket, fault);
      const name = `QMP ${fault} fault`;
      try {
        await backend.start({ images, staging, qmpSocket: proxy.socket });
        const before = await checkpointImages();
        let over = false;
        let vmWasStopped = false;
        // A VM left stopped stops the guest, and with it the checkpoint command: the test resumes it, and fails.
        const watchdog = (async () => {
          while (!over && proxy.injected === 0) await new Promise((resolve) => setTimeout(resolve, 50));
          if (over || fault !== 'cont') return;
          await new Promise((resolve) => setTimeout(resolve, 5000));
          const found = await contIfStopped(g.qmpSocket).catch(() => 'unknown');
          vmWasStopped = found !== 'running' && found !== 'unknown';
        })();
        const result = await checkpoint().finally(() => (over = true));
        await watchdog;
        // A failed cont leaves the decision to the backend: it must make the VM run (and then may answer either way).
        await settled(name, result, before, fault === 'cont' ? 'either' : 'fail', vmWasStopped);
      } finally {
        await backend.stop();
        await proxy.close();
      }
      await servesNext(name);
    });
  }

  it('the shim killed mid-checkpoint: containerd\'s cleanup leaves no frozen container, no image, and the backend goes on', async () => {
    const before = await checkpointImages();
    const pid = Number((await ctr('task ls')).match(new RegExp(`^${ID}\\s+(\\d+)`, 'm'))?.[1]);
    const cgroup = (await sh(g.name, `cut -d: -f3 /proc/${pid}/cgroup`)).trim();
    // -[i]d: the pattern must not match this script's own command line.
    const killShim = `for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q -- "-namespace ${ns} -[i]d ${ID} " && kill -9 \${p#/proc/}; done`;
    const result = await checkpoint(killShim);
    // containerd sees its shim gone and runs `containerd-shim-ovmigrate-v1 delete` (which thaws, then deletes).
    const gone = await sh(g.name, `for i in $(seq 200); do ctr -n ${ns} task ls -q | grep -qx ${ID} || break; sleep 0.1; done
      ctr -n ${ns} task ls -q | grep -qx ${ID} && echo task-left
      kill -0 ${pid} 2>/dev/null && echo process-left
      [ -d /sys/fs/cgroup${cgroup} ] && grep -q 'frozen 1' /sys/fs/cgroup${cgroup}/cgroup.events && echo cgroup-frozen
      runc --root /run/containerd/runc/${ns} list -q | grep -qx ${ID} && echo runc-left
      for i in $(seq 300); do [ -e ${bundle} ] || break; sleep 0.1; done
      [ -e ${bundle} ] && echo bundle-left
      true`);
    const vm = await vmStatus(g.qmpSocket);
    outcomes.push({
      fault: 'shim SIGKILL mid-checkpoint (containerd removes the task, as for any dead shim)', checkpoint: result.ok ? 'succeeded' : 'failed',
      lost: false, frozen: /cgroup-frozen/.test(gone), vmStopped: !vm.running, leftOnShare: fs.readdirSync(images).length,
    });
    assert.ok(!result.ok, result.out);
    // containerd removes the bundle only when our `delete` answered within its cleanup timeout.
    assert.equal(gone.trim(), '', `containerd's cleanup after the dead shim: ${gone}`);
    assert.ok(vm.running);
    assert.equal((await checkpointImages()).length, before.length, 'no checkpoint image');
    // The same container id runs again (a new shim), and the backend serves its checkpoint.
    await ctr(`containers rm ${ID}`);
    await ctr(`run -d ${RUNTIME} --mount type=bind,src=${share}/hog,dst=/hog,options=rbind:ro ${BUSYBOX_IMAGE} ${ID} sh -c '${LOOP}'`);
    await sh(g.name, `for i in $(seq 100); do ctr -n ${ns} task exec --exec-id v$i ${ID} test -s /tmp/count && break; sleep 0.5; done`);
    await servesNext('shim SIGKILL');
  });
});

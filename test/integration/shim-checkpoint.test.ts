import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ServedBackend } from '../helpers/served-backend.js';
import { requirePrograms } from '../helpers/cli.js';
import { exportGuestImage } from '../lab/containerd.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';

const RUNTIME = '--runtime io.containerd.ovmigrate.v1';
/** A counter appending to a file of the container's rootfs every 0.2 s. */
const LOOP = 'i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; sleep 0.2; done';
/** Set up in guest A: any run of criu there leaves this file. */
const TRIPWIRE = '/run/criu-was-run';

/**
 * The shim in lab guests: `ctr task checkpoint` of a container run with
 * --runtime io.containerd.ovmigrate.v1 is done by `ovmigrate serve` on the
 * host from guest A's RAM (CRIU in guest A is a tripwire), and containerd in
 * guest B restores the checkpoint image.
 */
describe('containerd-shim-ovmigrate-v1 in lab guests: checkpoint out of the VM, restore through containerd', function () {
  // containerd's default namespace: exportGuestImage reads images from it.
  const suite = new PoolSuite('shim', [{ containerd: true, slot: 'a' }, { containerd: true, slot: 'b' }], { namespace: 'default' });
  const guestSh = suite.sh;
  let share: string;
  // The backend's image directory is on the share; its staging directory must stay out of the guest's sight.
  let images: string;
  let a: UpResult;
  let b: UpResult;
  let backend: ServedBackend;

  const ctr = (g: UpResult, args: string, timeoutS?: number) => guestSh(g.name, `ctr ${args}`, timeoutS);
  const status = async (g: UpResult, id: string) => new RegExp(`^${id}\\s+\\d+\\s+(\\w+)$`, 'm').exec(await ctr(g, 'task ls'))?.[1];
  const count = async (g: UpResult, id: string) => Number((await ctr(g, `task exec --exec-id n${Date.now()} ${id} sh -c 'wc -l < /tmp/count'`)).trim());
  const shimConfig = (g: UpResult, config: object) =>
    guestSh(g.name, `mkdir -p /etc/ovmigrate && echo '${JSON.stringify(config)}' > /etc/ovmigrate/shim.json`);
  const tripped = async () => (await guestSh(a.name, `test -e ${TRIPWIRE} && echo yes || echo no`)).trim() === 'yes';

  /**
   * The memory pages in guest A's checkpoint image of a container (ctr task checkpoint names it
   * containerd.io/checkpoint/ID:DATE): its criu.tar layer read from the content store, in the guest.
   */
  async function checkpointPages(id: string): Promise<Buffer> {
    const out = path.join(share, `${id}.pages`);
    await guestSh(a.name, `
      ref=$(ctr image ls -q | grep "^containerd.io/checkpoint/${id}:")
      index=$(ctr image ls | awk -v r="$ref" '$1 == r {print $3}')
      criu=$(ctr content get "$index" | python3 -c 'import json, sys; print(next(m["digest"] for m in json.load(sys.stdin)["manifests"] if m["mediaType"].endswith(".criu.tar")))')
      ctr content get "$criu" | tar -xO --wildcards 'pages-*' > ${out}`);
    return fs.readFileSync(out);
  }

  async function assertCountsOn(g: UpResult, id: string, what: string): Promise<void> {
    const n = await count(g, id);
    await guestSh(g.name, 'sleep 1.2');
    assert.ok((await count(g, id)) > n, `${what}: the counter goes on`);
    const seq = (await ctr(g, `task exec --exec-id s${Date.now()} ${id} cat /tmp/count`)).trim().split('\n').map(Number);
    assert.deepEqual(seq, seq.map((_, i) => i + 1), `${what}: every number once, in order`);
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'python3', 'tar', 'busybox', 'gcc']);
    share = suite.dir;
    images = path.join(share, 'images');
    fs.mkdirSync(images);
    [[a, b]] = await Promise.all([suite.guests(), buildBusyboxImage(path.join(share, 'busybox.tar'))]);
    await Promise.all([a, b].map((g) => ctr(g, `image import ${share}/busybox.tar >/dev/null`)));
    await shimConfig(a, { images });
    // CRIU in guest A only leaves a mark and fails: the checkpoint must not need it.
    await guestSh(a.name, `printf '#!/bin/sh\\ntouch ${TRIPWIRE}\\nexit 1\\n' > /run/criu-tripwire && chmod +x /run/criu-tripwire && mount --bind /run/criu-tripwire "$(command -v criu)"`);
    backend = new ServedBackend(a.name, images, suite.hostDir('staging'));
    await backend.start();
  });

  after(async () => {
    await backend?.stop();
    // The next suite on guest A finds criu, the shim's configuration and the relay as the pool made them.
    if (a) await guestSh(a.name, `umount "$(command -v criu)" 2>/dev/null; rm -f ${TRIPWIRE} /run/criu-tripwire /etc/ovmigrate/shim.json
      [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`);
    await suite.leave();
  });

  it('ctr containers checkpoint: images from the host, CRIU never run in guest A; ctr containers restore in guest B continues', async () => {
    await ctr(a, `run -d ${RUNTIME} ${BUSYBOX_IMAGE} c1 sh -c '${LOOP}'`);
    await guestSh(a.name, 'sleep 1.5');
    const atCheckpoint = await count(a, 'c1');
    await ctr(a, 'containers checkpoint --rw --task c1 checkpoint/c1:1', 300);
    assert.ok(!(await tripped()), 'criu was not run in guest A');
    assert.ok(backend.log.some((l) => /c1/.test(l) && /checkpoint/i.test(l)), `the backend made the images:\n${backend.log.join('\n')}`);
    assert.equal(await status(a, 'c1'), 'RUNNING', 'the container runs on in guest A');
    await assertCountsOn(a, 'c1', 'guest A after the checkpoint');
    assert.deepEqual(fs.readdirSync(images).filter((n) => !n.startsWith('.')), [], 'the image directory was released');

    await ctr(a, 'task kill -s SIGKILL c1');
    await exportGuestImage(a.name, 'checkpoint/c1:1', path.join(share, 'c1-export'), path.join(share, 'c1.tar'));
    await ctr(b, `image import --no-unpack --all-platforms ${share}/c1.tar >/dev/null`);
    await guestSh(b.name, 'ctr containers restore --rw --live c1 checkpoint/c1:1 </dev/null >/tmp/c1.out 2>&1 || { cat /tmp/c1.out; exit 1; }; sleep 2', 180);
    assert.equal(await status(b, 'c1'), 'RUNNING');
    assert.match(await ctr(b, 'containers info c1'), /io\.containerd\.ovmigrate\.v1/, 'restored by our shim in guest B');
    assert.ok((await count(b, 'c1')) > atCheckpoint, 'guest B goes on from the checkpointed count');
    await assertCountsOn(b, 'c1', 'guest B after the restore');
  });

  it('ctr task checkpoint of two containers at the same time: each checkpoint image holds its own container', async () => {
    await ctr(a, `run -d ${RUNTIME} ${BUSYBOX_IMAGE} p1 sh -c 'exec sleep 1001'`);
    await ctr(a, `run -d ${RUNTIME} ${BUSYBOX_IMAGE} p2 sh -c 'exec sleep 1002'`);
    await guestSh(a.name, 'ctr task checkpoint p1 & ctr task checkpoint p2 & wait %1 && wait %2', 300);
    assert.ok(!(await tripped()), 'criu was not run in guest A');
    // Each image holds its own container: its argv (sleep 100N) is in its memory pages, the other's is not.
    for (const [i, id] of ['p1', 'p2'].entries()) {
      const pages = await checkpointPages(id);
      assert.ok(pages.includes(`sleep\u0000${1001 + i}\u0000`), `${id}'s argv in ${id}'s images`);
      assert.ok(!pages.includes(`sleep\u0000${1002 - i}\u0000`), `the other's argv not in ${id}'s images`);
      assert.equal(await status(a, id), 'RUNNING');
    }
  });

  // A backend dying mid-request is the fault matrix's "backend killed mid-dump" (shim-fault-matrix.test.ts).
  it('backend down: falls back to CRIU in the guest (the default), or refuses when configured to', async () => {
    await ctr(a, `run -d ${RUNTIME} ${BUSYBOX_IMAGE} d1 sh -c '${LOOP}'`);
    await guestSh(a.name, 'for i in $(seq 100); do ctr task exec --exec-id w$i d1 test -s /tmp/count && break; sleep 0.5; done');
    await backend.stop();
    await guestSh(a.name, 'umount "$(command -v criu)"');
    await ctr(a, 'task checkpoint d1', 300);
    assert.match(await ctr(a, 'image ls -q'), /checkpoint\/d1:/, 'a checkpoint image made with CRIU in the guest');
    assert.match(await guestSh(a.name, 'cat /run/containerd.log'), /d1: no ovmigrate backend answers; checkpointing with CRIU in the guest/);
    assert.equal(await status(a, 'd1'), 'RUNNING');

    await shimConfig(a, { images, fallback: 'refuse' });
    const refused = await guestSh(a.name, 'ctr task checkpoint d1 2>&1; echo "exit=$?"', 300);
    assert.match(refused, /no ovmigrate backend answers/, refused);
    assert.doesNotMatch(refused, /exit=0/);
    assert.equal(await status(a, 'd1'), 'RUNNING');
    await assertCountsOn(a, 'd1', 'after the refusal');
  });
});

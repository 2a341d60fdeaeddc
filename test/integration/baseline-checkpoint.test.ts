import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { requirePrograms } from '../helpers/cli.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from '../lab/busybox-image.js';

/**
 * The baseline ovmigrate is measured against: containerd + runc in a guest,
 * and `ctr task checkpoint`, which runs CRIU inside the guest.
 */
describe('baseline: in-guest containerd checkpoint with runc and CRIU', function () {
  const suite = new PoolSuite('baseline', [{ containerd: true }]);
  /** ctr in the suite's containerd namespace. */
  const guestSh = (guest: string, script: string) => suite.sh(guest, `export CONTAINERD_NAMESPACE=${suite.namespace}\n${script}`);
  let share: string;
  let image: string;
  let guest: string;

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'tar', 'busybox']);
    share = suite.dir;
    image = path.join(share, 'busybox.oci.tar');
    const [[up]] = await Promise.all([suite.guests(), buildBusyboxImage(image)]);
    guest = up.name;
  });

  after(() => suite.leave());

  it('builds the busybox OCI image byte for byte the same each time', async () => {
    const again = path.join(share, 'again.tar');
    await buildBusyboxImage(again);
    assert.ok(fs.readFileSync(again).equals(fs.readFileSync(image)));
    fs.rmSync(again);
  });

  it('imports the image with ctr and runs it under runc', async () => {
    await guestSh(guest, `ctr image import ${image}`);
    assert.match(await guestSh(guest, 'ctr image ls -q'), new RegExp(`^${BUSYBOX_IMAGE}$`, 'm'));
    const out = await guestSh(guest, `ctr run --rm ${BUSYBOX_IMAGE} hello sh -c 'echo hello from busybox; ls /bin | wc -l'`);
    assert.match(out, /^hello from busybox\n\d{3}\n$/);
  });

  it('checkpoints a running container with ctr task checkpoint, which keeps running', async () => {
    await guestSh(guest, `ctr run -d ${BUSYBOX_IMAGE} counter sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done'`);
    await guestSh(guest, 'sleep 1');
    await guestSh(guest, 'ctr task checkpoint counter');
    assert.match(await guestSh(guest, 'ctr image ls -q'), /^containerd\.io\/checkpoint\/counter:/m);
    assert.match(await guestSh(guest, 'ctr task ls'), /^counter\s+\d+\s+RUNNING$/m);
    // The checkpoint image's index holds the tar of CRIU's images of the container.
    const indexDigest = (await guestSh(guest, "ctr image ls | awk '/^containerd.io\\/checkpoint\\/counter:/ {print $3}'")).trim();
    const index = JSON.parse(await guestSh(guest, `ctr content get ${indexDigest}`)) as { manifests: { mediaType: string; digest: string }[] };
    const criu = index.manifests.find((m) => m.mediaType === 'application/vnd.containerd.container.criu.checkpoint.criu.tar');
    assert.ok(criu, 'a CRIU checkpoint tar in the checkpoint image');
    const files = await guestSh(guest, `ctr content get ${criu.digest} | tar t`);
    for (const img of ['inventory.img', 'pstree.img', 'core-1.img', 'mm-1.img', 'pagemap-1.img', 'pages-1.img', 'descriptors.json']) {
      assert.match(files, new RegExp(`^(\\./)?${img.replace('.', '\\.')}$`, 'm'), img);
    }
    // The loop replaces the file whole (rename), so a read never sees it truncated half-way.
    const before = Number(await guestSh(guest, 'ctr task exec --exec-id c1 counter cat /tmp/count'));
    await guestSh(guest, 'sleep 1');
    const after = Number(await guestSh(guest, 'ctr task exec --exec-id c2 counter cat /tmp/count'));
    assert.ok(before > 0 && after > before, `the counter goes on (${before}, then ${after})`);
  });
});

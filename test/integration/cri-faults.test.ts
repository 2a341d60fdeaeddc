import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { CHECKPOINT_NOTES } from '../../shim/cri/pause-guard.js';
import { requirePrograms } from '../helpers/cli.js';
import { components } from '../helpers/components.js';
import { guestPool } from '../helpers/guest-pool.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { GUEST_CRI_LOG, GUEST_CRI_PID, startGuestCri } from '../lab/cri-node.js';

/** A counter appending to a file of the container's rootfs every 0.2 s. */
const LOOP = 'i=0; while true; do i=$((i+1)); echo $i >> /tmp/count; echo $i; sleep 0.2; done';
/** The archives' directory in the guest (its tmpfs: the staging directory goes beside the archive). */
const OUT = '/var/lib/ovm-crifault';
const NODE_NETWORK = 2;
const CONTAINER_PID = 1;

/**
 * Proxy faults of `crictl checkpoint` through ovmigrate-cri, in the pooled
 * CRI node (containerd 1.6; no guest of its own: the CRI key's slot a). No
 * `ovmigrate serve` runs for the guest in this suite, so the backend is down
 * throughout: the shim refuses or checkpoints with CRIU in the guest, as its
 * config says. Two CRIU checkpoints in all: a container the user paused
 * (ctr task pause) stays paused through one; ovmigrate-cri is SIGKILLed
 * mid-way through the other, and its successor resumes the container and
 * removes what the dead one left.
 */
describe('ovmigrate-cri faults in a lab guest (containerd 1.6): backend down, a user\'s pause, ovmigrate-cri killed mid-checkpoint', function () {
  const suite = new PoolSuite('crifault', [{ cri: true, slot: 'a' }]);
  let a: UpResult;
  let share: string;
  let checkpointctl: string;
  let pod = '';
  let counter = '';

  const sh = (script: string, timeoutS?: number) => suite.sh(a.name, script, timeoutS);
  const result = async (script: string, timeoutS?: number) => {
    const out = await sh(`{ ${script} ; } 2>&1; echo "exit=$?"`, timeoutS);
    const m = /exit=(\d+)\s*$/.exec(out);
    return { code: Number(m?.[1] ?? -1), out: out.replace(/exit=\d+\s*$/, '') };
  };
  const frozen = async (id: string) => (await sh(`cat /sys/fs/cgroup${suite.cgroup}/k8s/${id}/cgroup.freeze`)).trim() === '1';
  const count = async (id: string) => Number((await sh(`crictl exec ${id} sh -c 'wc -l < /tmp/count'`)).trim());
  const outEntries = async () => (await sh(`ls -A ${OUT}`)).split('\n').filter(Boolean);
  const notes = async () => (await sh(`ls -A ${CHECKPOINT_NOTES} 2>/dev/null; true`)).split('\n').filter(Boolean);
  const shimConfig = (fallback: 'criu' | 'refuse') =>
    sh(`mkdir -p /etc/ovmigrate && echo '${JSON.stringify({ images: path.join(share, 'images'), fallback })}' > /etc/ovmigrate/shim.json`);

  async function runs(id: string, what: string): Promise<void> {
    assert.equal((await sh(`crictl inspect -o go-template --template '{{.status.state}}' ${id}`)).trim(), 'CONTAINER_RUNNING', `${what}: running`);
    assert.ok(!(await frozen(id)), `${what}: thawed`);
    const n = await count(id);
    await sh('sleep 1.2');
    assert.ok((await count(id)) > n, `${what}: the counter goes on`);
  }

  async function container(name: string): Promise<string> {
    const config = path.join(share, `${name}.json`);
    fs.writeFileSync(config, JSON.stringify({ metadata: { name }, image: { image: BUSYBOX_IMAGE }, command: ['sh', '-c', LOOP], log_path: `${name}.log` }));
    const id = (await sh(`crictl -t 300s create ${pod} ${config} ${share}/pod.json`, 400)).trim();
    await sh(`crictl -t 300s start ${id}`, 400);
    await sh(`for i in $(seq 100); do crictl exec ${id} test -s /tmp/count && break; sleep 0.5; done`);
    return id;
  }

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'containerd', 'ctr', 'runc', 'criu', 'python3', 'tar', 'busybox']);
    checkpointctl = await components.program('checkpointctl', 'checkpointctl', this);
    await components.ready('cri-tools', this);
    share = suite.dir;
    fs.mkdirSync(path.join(share, 'images'));
    [a] = await suite.guests();
    await sh(`mkdir -p ${OUT}`);
    fs.writeFileSync(path.join(share, 'pod.json'), JSON.stringify({
      metadata: { name: 'crifault', namespace: 'default', uid: `uid-crifault-${process.pid}`, attempt: 0 },
      log_directory: `/var/log/ovm-crifault-${process.pid}`,
      linux: { cgroup_parent: `${suite.cgroup}/k8s`, security_context: { namespace_options: { network: NODE_NETWORK, pid: CONTAINER_PID } } },
    }));
    pod = (await sh(`crictl -t 300s runp ${share}/pod.json`, 400)).trim();
    counter = await container('counter');
  });

  after(async () => {
    if (a) {
      await sh(`[ -z "${pod}" ] || crictl -t 300s rmp -f ${pod} >/dev/null 2>&1
        rm -rf /etc/ovmigrate/shim.json ${OUT}
        [ ! -e /run/ovmigrate/relay.pid ] || kill $(cat /run/ovmigrate/relay.pid) 2>/dev/null; true`, 400).catch(() => undefined);
      // The pooled node keeps an ovmigrate-cri for the suites after this one, whatever happened here.
      await startGuestCri(a.name, { work: path.join(guestPool.paths().share, '.cri-images'), line: '1.6' }).catch(() => undefined);
    }
    await suite.leave();
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && a) console.log(await sh(`tail -30 ${GUEST_CRI_LOG}; tail -30 /run/containerd.log`).catch(String));
  });

  it("backend down, fallback 'refuse': a CRI error naming the unreachable backend; the container runs on; nothing at the location", async () => {
    await shimConfig('refuse');
    const r = await result(`crictl -t 120s checkpoint --export=${OUT}/refused.tar ${counter}`, 200);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /FailedPrecondition/, r.out);
    assert.match(r.out, /backend is unreachable/, r.out);
    assert.match(r.out, /fallback \\?"refuse/, r.out); // crictl's log line escapes the quotes
    assert.deepEqual(await outEntries(), [], 'nothing at the location, no staging');
    assert.deepEqual(await notes(), [], 'no checkpoint note left');
    await runs(counter, 'after the refusal');
  });

  it("backend down, fallback 'criu', a container the user paused (ctr task pause): CRIU in the guest makes the archive checkpointctl reads; the container stays paused", async () => {
    await shimConfig('criu');
    await sh(`ctr -n k8s.io task pause ${counter}`);
    assert.ok(await frozen(counter), 'paused by the user');
    const r = await result(`crictl -t 600s checkpoint --export=${OUT}/paused.tar ${counter}`, 700);
    assert.equal(r.code, 0, r.out);
    assert.ok(await frozen(counter), 'still paused after the checkpoint');
    assert.match(await sh(`ctr -n k8s.io task ls | grep ${counter}`), /PAUSED/);
    assert.match(await sh('cat /run/containerd.log'), new RegExp(`${counter}: no ovmigrate backend answers; checkpointing with CRIU in the guest`));

    assert.deepEqual(await outEntries(), ['paused.tar']);
    assert.equal((await sh(`stat -c %a ${OUT}/paused.tar`)).trim(), '600');
    const entries = (await sh(`tar -tf ${OUT}/paused.tar`)).split('\n').filter(Boolean);
    for (const kind of [/^checkpoint\/inventory\.img$/, /^checkpoint\/pstree\.img$/, /^checkpoint\/pages-\d+\.img$/, /^config\.dump$/, /^spec\.dump$/, /^rootfs-diff\.tar$/]) {
      assert.ok(entries.some((e) => kind.test(e)), `${kind} in ${entries.join(' ')}`);
    }
    assert.match(await sh(`tar -xOf ${OUT}/paused.tar rootfs-diff.tar | tar -t`), /^tmp\/count$/m);
    const inspect = await sh(`${checkpointctl} inspect ${OUT}/paused.tar`);
    assert.match(inspect, /Engine: containerd/);
    assert.match(inspect, /Runtime: io\.containerd\.ovmigrate\.v1/);
    assert.match(await sh(`${checkpointctl} show ${OUT}/paused.tar`), /counter/);
    assert.deepEqual(await notes(), []);

    await sh(`ctr -n k8s.io task resume ${counter}`);
    await runs(counter, 'after the user\'s resume');
    await sh(`rm ${OUT}/paused.tar`);
  });

  it('ovmigrate-cri SIGKILLed between its Pause and Resume: the next one resumes the container and removes the staging; the checkpoint note says what it owed', async () => {
    await shimConfig('criu');
    // crictl in the background; the kill comes as soon as our Pause froze the container (CRIU then runs for
    // seconds). The shell's own read, no fork per look: a slow loop in a loaded TCG guest once saw the freeze only
    // as the Resume was on its way, and the container was thawed by then.
    const out = await sh(`
      crictl -t 600s checkpoint --export=${OUT}/killed.tar ${counter} > /tmp/crifault-crictl.log 2>&1 &
      c=$!
      f=/sys/fs/cgroup${suite.cgroup}/k8s/${counter}/cgroup.freeze
      i=0
      until read v < $f && [ "$v" = 1 ]; do i=$((i+1)); [ $i -lt 5000000 ] || break; done
      kill -9 $(cat ${GUEST_CRI_PID})
      echo "frozen=$(cat /sys/fs/cgroup${suite.cgroup}/k8s/${counter}/cgroup.freeze)"
      echo "note=$(cat ${CHECKPOINT_NOTES}/${counter}.json)"
      echo "mode=$(stat -c %a ${CHECKPOINT_NOTES}/${counter}.json)"
      wait $c; echo "crictl=$?"`, 700);
    assert.match(out, /frozen=1/, out);
    const note = JSON.parse(/note=(.*)/.exec(out)?.[1] ?? '{}') as { id?: string; paused?: boolean; location?: string; stage?: string };
    assert.equal(note.id, counter, out);
    assert.equal(note.paused, true);
    assert.equal(note.location, `${OUT}/killed.tar`);
    assert.match(out, /mode=600/);
    assert.doesNotMatch(out, /crictl=0/, 'the killed checkpoint failed for its client');
    assert.ok(await frozen(counter), 'left paused by the killed ovmigrate-cri');

    // As the node's service manager would: ovmigrate-cri again, as the lab starts it.
    await startGuestCri(a.name, { work: path.join(guestPool.paths().share, '.cri-images'), line: '1.6' });
    const log = await sh(`cat ${GUEST_CRI_LOG}`);
    assert.match(log, new RegExp(`container ${counter}, paused by a checkpoint of an ovmigrate-cri that died .*resumed`), log);
    assert.deepEqual(await outEntries(), [], 'no staging, no partial archive, no archive');
    assert.deepEqual(await notes(), [], 'the note is gone');
    await runs(counter, 'after the restart');
  });
});

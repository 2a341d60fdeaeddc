/**
 * `make bench`, Kubernetes part: the kubelet's checkpoint API (`curl -k -X
 * POST https://127.0.0.1:10250/checkpoint/NS/POD/CTR`) of the same 256 MiB
 * container in one lab node on containerd 2.x, in one run: the pod on runc
 * (ovmigrate-cri forwards the call to containerd's own CRI checkpoint
 * unchanged: runc and CRIU dump in the guest, containerd tars the archive)
 * and the pod on our runtime (the host dumps from guest RAM and writes the
 * archive; the guest links it). Total time, the longest time the container
 * was kept from running, and guest CPU seconds (all of the guest's CPUs);
 * ratios. The kubelet's checkpoint directory is on the VM's share for both,
 * as a node whose checkpoints the host takes away has it.
 *
 * `--dry-run` prints the pods, the node's set-up and the calls, and boots nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { guestScript } from '../lab/containerd.js';
import { KUBELET_CHECKPOINT_DIR, STATIC_POD_DIR, checkpointUrl, nodeDirs, nodeLogs, type StaticPod } from '../lab/kubernetes/index.js';
import { down, up } from '../lab/lab.js';
import { median } from './median.js';

const NODE = 'kbench';
const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');
const REPS = 3;
const HOG_MIB = 256;
/** containerd 2.x's CRI runtime table in the node's config (test/lab/cri-config.ts). */
const RUNTIME_TABLE = "plugins.'io.containerd.cri.v1.runtime'.containerd";
/** TCG on a loaded host: a pod start, a checkpoint, may take minutes. */
const SLOW_MS = 1_800_000;

interface Sample {
  totalS: number;
  frozenS: number;
  guestCpuS: number;
}

interface Subject {
  label: string;
  pod: StaticPod;
  runtimeType: string;
  samples: Sample[];
}

/** A static pod of one container running the hog over 256 MiB, logging its wake-up gaps into /gaps. */
function hogPod(name: string, hog: string): StaticPod & { manifest: string } {
  const pod: StaticPod = { name, containers: [{ name, image: BUSYBOX_IMAGE, command: ['/hog', String(HOG_MIB), '/gaps'] }] };
  const manifest = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{
        name, image: BUSYBOX_IMAGE, imagePullPolicy: 'Never', command: pod.containers[0].command,
        volumeMounts: [{ name: 'hog', mountPath: '/hog', readOnly: true }],
      }],
      volumes: [{ name: 'hog', hostPath: { path: hog, type: 'File' } }],
    },
  }, null, 2) + '\n';
  return { ...pod, manifest };
}

/**
 * The node's containerd again with another default runtime: the kubelet
 * (standalone, no API server) has no RuntimeClass to pick one per pod, so the
 * runc pod is made after this. Running pods stay on their runtimes.
 */
function defaultRuntimeScript(runtime: string, type: string): string {
  return `set -e
    cfg=/etc/containerd/config.toml
    grep -qF '.runtimes."${runtime}"]' $cfg || cat >> $cfg <<'OVM_EOF'
[${RUNTIME_TABLE}.runtimes."${runtime}"]
  runtime_type = "${type}"
OVM_EOF
    sed -i 's/^  default_runtime_name = .*/  default_runtime_name = "${runtime}"/' $cfg
    pid=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(containerd)" {print $1; exit}')
    cmd=$(tr '\\0' ' ' < /proc/$pid/cmdline)
    p=$(tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^PATH=//p')
    kill $pid
    while [ -e /proc/$pid ]; do sleep 0.2; done
    PATH=$p setsid $cmd </dev/null >>/run/containerd.log 2>&1 &
    for i in $(seq 600); do crictl -r unix:///run/containerd/containerd.sock version >/dev/null 2>&1 && crictl info >/dev/null 2>&1 && exit 0; sleep 0.5; done
    tail -20 /run/containerd.log; exit 1`;
}

/** Places a static pod and waits until its container runs and the hog has touched its memory; prints the container's id. */
function startPodScript(files: string, pod: StaticPod): string {
  const name = pod.containers[0].name;
  return `set -e
    cp ${files}/${pod.name}.json ${STATIC_POD_DIR}/.${pod.name}.new && mv ${STATIC_POD_DIR}/.${pod.name}.new ${STATIC_POD_DIR}/${pod.name}.json
    until id=$(crictl ps --name '^${name}$' --state Running -q) && [ -n "$id" ]; do sleep 2; done
    until crictl logs $id 2>&1 | grep -q 'hog ${HOG_MIB} MiB'; do sleep 1; done
    echo $id`;
}

/**
 * One checkpoint through the kubelet API, timed in the guest; guest CPU from
 * /proc/stat (all CPUs, not idle or iowait), in USER_HZ ticks. The archive is
 * removed afterwards. Prints "<ns> <ticks> <archive>".
 */
function checkpointScript(url: string): string {
  return `set -e
    busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
    c0=$(busy); t0=$(date +%s%N)
    out=$(curl -sk -X POST '${url}')
    t1=$(date +%s%N); c1=$(busy)
    loc=$(echo "$out" | sed -n 's/.*"items":\\["\\([^"]*\\)".*/\\1/p')
    [ -n "$loc" ] && [ -s "$loc" ] || { echo "no archive: $out" >&2; exit 1; }
    rm -f "$loc"
    echo $((t1 - t0)) $((c1 - c0)) "$loc"`;
}

async function main(): Promise<void> {
  const dryRun = process.argv.includes('--dry-run');
  const progress = (s: string) => process.stderr.write(`bench: ${s}\n`);
  const dirs = nodeDirs(NODE);
  const hog = path.join(dirs.files, 'hog');
  const onShare = path.join(dirs.images, 'kubelet-checkpoints');
  const subjects: Subject[] = [
    { label: 'runc + CRIU in the guest', pod: hogPod('hog-runc', hog), runtimeType: 'io.containerd.runc.v2', samples: [] },
    { label: 'ovmigrate', pod: hogPod('hog-ovm', hog), runtimeType: 'io.containerd.ovmigrate.v1', samples: [] },
  ];
  const [runc, ovm] = subjects;
  const shareCheckpoints = `set -e
    mkdir -p ${onShare} && chmod 0700 ${onShare}
    rm -rf ${KUBELET_CHECKPOINT_DIR} && ln -s ${onShare} ${KUBELET_CHECKPOINT_DIR}`;
  if (dryRun) {
    for (const s of subjects) {
      console.log(`# ${s.label}: ${s.runtimeType}\n${(s.pod as StaticPod & { manifest: string }).manifest}`);
      console.log(`# checkpoint: ${checkpointScript(checkpointUrl(s.pod, NODE, s.pod.containers[0].name))}\n`);
    }
    console.log(`# the kubelet's checkpoints on the share:\n${shareCheckpoints}\n`);
    console.log(`# ${ovm.pod.name} first, then containerd's default runtime to runc:\n${defaultRuntimeScript('runc', runc.runtimeType)}\n`);
    console.log(`# a pod: ${startPodScript(dirs.files, runc.pod)}`);
    return;
  }
  try {
    progress(`booting ${NODE}, a Kubernetes node on containerd 2.x (3 GiB): the kubelet on ovmigrate-cri, ovmigrate serve for it`);
    await up(NODE, { kubernetes: '2', memoryMiB: 3072 });
    execFileSync('gcc', ['-O1', '-static', '-o', hog, path.join(PROGRAMS, 'hog.c')]);
    for (const s of subjects) fs.writeFileSync(path.join(dirs.files, `${s.pod.name}.json`), (s.pod as StaticPod & { manifest: string }).manifest);
    await guestScript(NODE, shareCheckpoints, 60_000);
    const ids = new Map<Subject, string>();
    progress(`${ovm.pod.name} on the default runtime (ours)`);
    ids.set(ovm, (await guestScript(NODE, startPodScript(dirs.files, ovm.pod), SLOW_MS)).trim());
    progress('containerd again with runc as its default runtime');
    await guestScript(NODE, defaultRuntimeScript('runc', runc.runtimeType), SLOW_MS);
    progress(`${runc.pod.name} on runc`);
    ids.set(runc, (await guestScript(NODE, startPodScript(dirs.files, runc.pod), SLOW_MS)).trim());
    for (const s of subjects) {
      const info = await guestScript(NODE, `crictl inspect ${ids.get(s)}`, 120_000);
      if (!info.includes(`"runtimeType": "${s.runtimeType}"`)) throw new Error(`${s.pod.name} does not run on ${s.runtimeType}`);
    }

    for (let rep = 1; rep <= REPS; rep++) {
      for (const s of subjects) {
        progress(`${s.label} #${rep}`);
        const id = ids.get(s)!;
        await guestScript(NODE, `crictl exec ${id} sh -c ': > /gaps'`, 120_000);
        const out = (await guestScript(NODE, checkpointScript(checkpointUrl(s.pod, NODE, s.pod.containers[0].name)), SLOW_MS)).trim().split('\n').pop()!;
        const [ns, ticks] = out.split(' ').map(Number);
        // The longest wake-up gap the hog logged while the checkpoint ran (it wakes every 20 ms).
        const gap = Number((await guestScript(NODE, `crictl exec ${id} sort -n /gaps | tail -1`, 120_000)).trim() || NaN);
        s.samples.push({ totalS: ns / 1e9, guestCpuS: ticks / 100, frozenS: gap / 1000 });
      }
    }

    const m = (xs: Sample[], k: keyof Sample) => median(xs.map((x) => x[k]));
    const sec = (v: number) => `${v.toFixed(2)} s`;
    console.log(`kubelet: POST /checkpoint of a ${HOG_MIB} MiB container (busybox + hog), containerd 2.x node, archive on the VM's share; medians of ${REPS}`);
    for (const [label, k] of [['total', 'totalS'], ['frozen', 'frozenS'], ['guest CPU', 'guestCpuS']] as const) {
      const a = m(runc.samples, k);
      const b = m(ovm.samples, k);
      // Guest CPU of ours is near zero: a ratio over a count of ticks that small says nothing.
      const ratio = b >= 0.05 ? `${(a / b).toFixed(1)}x` : `> ${(a / 0.05).toFixed(0)}x (ours under 0.05 s)`;
      console.log(`  ${label.padEnd(10)} ${runc.label} ${sec(a).padStart(9)}   ${ovm.label} ${sec(b).padStart(9)}   ratio ${ratio}`);
    }
  } catch (err) {
    process.stderr.write(await nodeLogs(NODE).catch(() => ''));
    throw err;
  } finally {
    await down(NODE).catch(() => undefined);
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});

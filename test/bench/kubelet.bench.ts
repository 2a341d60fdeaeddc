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
 * as a node whose checkpoints the host takes away has it. A second pod of
 * ours holds four times the memory: what its checkpoint costs the guest more
 * is what the pages cost it, per GiB, beside CRIU's cost per GiB.
 *
 * Guest CPU is measured twice. From the host: the CPU time of QEMU's vCPU
 * threads (their schedstat), what the host gives the guest and a cloud
 * charges for; the guest script stops at each end of a window until the host
 * has read them. From inside: /proc/stat's busy ticks, which under TCG also
 * count the time a vCPU thread waited for a host CPU (the guest has no steal
 * clock to tell it), so they grow with the host's load.
 * Where the guest's CPU went is told per program (containerd, the shims,
 * runc, CRIU, ovmigrate-cri, the relay, the kubelet): each process's CPU
 * ticks over the call, a process that ended counted in its parent's
 * children's ticks.
 *
 * `--size MiB` (default 256) and `--reps N` (default 3) change the run,
 * `--node NAME` the guest's name (default kbench); `--no-baseline` measures
 * our side only (no runc pod, no CRIU in the guest);
 * `--profile DIR` has ovmigrate-cri, the shims and the relay profile
 * themselves (OVMIGRATE_CPU_PROFILE) and writes their CPU profiles of each
 * idle window and each checkpoint into DIR (Chrome's format); sampling and
 * writing them cost guest CPU of their own: not for the numbers.
 * `--dry-run` prints the pods, the node's set-up and the calls, and boots nothing.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { CPU_PROFILE_ENV } from '../../common/cpu-profile.js';
import { ExternalError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { BUSYBOX_IMAGE } from '../lab/busybox-image.js';
import { componentBinary } from '../lab/components/index.js';
import { guestScript } from '../lab/containerd.js';
import { exec } from '../lab/exec-client.js';
import { readState } from '../lab/guest.js';
import { KUBELET_CHECKPOINT_DIR, STATIC_POD_DIR, checkpointUrl, nodeDirs, nodeLogs, type StaticPod } from '../lab/kubernetes/index.js';
import { down, up } from '../lab/lab.js';
// After the node's modules: cri-node.js first would see kubernetes/node.js read its constants half-loaded (a cycle through containerd.js).
import { GUEST_CONTAINERD_SOCKET, GUEST_CRI_LOG, GUEST_CRI_PID } from '../lab/cri-node.js';
import { DEFAULT_SOCKET } from '../../shim/channel/paths.js';
import { OVMIGRATE_RUNTIME } from '../../shim/cri/checkpoint-container.js';
import { taskBundle } from '../../shim/cri/shim-task.js';
import { median } from './median.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');
const DEFAULT_REPS = 3;
const DEFAULT_MIB = 256;
/** containerd 2.x's CRI runtime table in the node's config (test/lab/cri-config.ts). */
const RUNTIME_TABLE = "plugins.'io.containerd.cri.v1.runtime'.containerd";
/** TCG on a loaded host: a pod start, a checkpoint, may take minutes. */
const SLOW_MS = 1_800_000;
/** The second container of ours holds this many times the memory: what the guest's CPU does as the memory grows. */
const BIG = 4;
/** "Near zero": at most this share of the in-guest path's guest CPU, both in all and per GiB more. */
const NEAR_ZERO = 0.1;

interface Sample {
  totalS: number;
  frozenS: number;
  /** The guest's busy CPU over the checkpoint's window (whole periods from its start), all of it (what the node burns anyway included). */
  guestCpuS: number;
  /** The same over an idle window as long, right before: what the node burns anyway. */
  idleCpuS: number;
  /** The checkpoint's own: guestCpuS - idleCpuS. */
  ownCpuS: number;
  /** The same three from the host: the CPU time of QEMU's vCPU threads over the two windows. */
  vcpuS: number;
  idleVcpuS: number;
  ownVcpuS: number;
  /** The archive's size in bytes. */
  bytes: number;
  /** Guest CPU seconds per program (perProgram's names) over the checkpoint's window... */
  programs: Map<string, number>;
  /** ...and over the idle window, scaled as idleCpuS. */
  idlePrograms: Map<string, number>;
}

/**
 * The node's CPU comes in bursts: the kubelet's housekeeping every 10 s (stats, status, relists through ovmigrate-cri
 * and containerd) on top of its 1 s relists. A window of a few seconds holds one burst or none, so a checkpoint's
 * window less an idle window's rate was mostly chance. Both windows are whole periods long instead, the same length:
 * the checkpoint's window runs on after the call until its period ends, and each holds as many bursts.
 */
const PERIOD_S = 10;
const MIN_WINDOW_S = 20;
/** Whole periods, at least MIN_WINDOW_S, with room for a checkpoint a third longer than `previousS`. */
const windowFor = (previousS: number) => Math.max(MIN_WINDOW_S, PERIOD_S * Math.ceil((previousS * 1.33) / PERIOD_S));

interface Subject {
  label: string;
  pod: StaticPod;
  /** The hog's memory. */
  mib: number;
  runtimeType: string;
  /** The windows of its first checkpoint (runc and CRIU in the guest take half a minute); later ones fit the previous checkpoint. */
  firstWindowS: number;
  samples: Sample[];
}

/** A static pod of one container running the hog over `mib` MiB, logging its wake-up gaps into /gaps. */
function hogPod(name: string, hog: string, mib: number): StaticPod & { manifest: string } {
  const pod: StaticPod = { name, containers: [{ name, image: BUSYBOX_IMAGE, command: ['/hog', String(mib), '/gaps'] }] };
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
 * The node's containerd again with another default runtime. A pod picks a
 * runtime handler by runtimeClassName only through a RuntimeClass object,
 * which the kubelet looks up in the API server: a standalone kubelet has no
 * client, makes no RuntimeClass manager, and sends every sandbox with the
 * empty handler (containerd's default runtime), whatever the manifest says.
 * So the runc pod is made after this. Running pods stay on their runtimes
 * (containerd reconnects to their shims). The runc shim is the pinned
 * containerd 2.3's (the 2.4 build is the daemon only): the one on the shims'
 * PATH is Debian's 1.6 shim, which a 2.x daemon cannot start
 * ("type with url ...: not found").
 */
function defaultRuntimeScript(runtime: string, type: string, shim: string): string {
  return `set -e
    cfg=/etc/containerd/config.toml
    grep -qF '.runtimes."${runtime}"]' $cfg || cat >> $cfg <<'OVM_EOF'
[${RUNTIME_TABLE}.runtimes."${runtime}"]
  runtime_type = "${type}"
  runtime_path = "${shim}"
OVM_EOF
    sed -i 's/^  default_runtime_name = .*/  default_runtime_name = "${runtime}"/' $cfg
    # By its command line: the 2.4 build's program (and comm) is containerd-2.4.
    pid=$(ps -eo pid=,args= | awk '$3 == "--config" && $4 == "'$cfg'" {print $1; exit}')
    [ -n "$pid" ] || { echo "no containerd running with --config $cfg" >&2; exit 1; }
    cmd=$(tr '\\0' ' ' < /proc/$pid/cmdline)
    p=$(tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^PATH=//p')
    kill $pid
    while [ -e /proc/$pid ]; do sleep 0.2; done
    PATH=$p setsid $cmd </dev/null >>/run/containerd.log 2>&1 &
    for i in $(seq 600); do crictl -r unix:///run/containerd/containerd.sock version >/dev/null 2>&1 && crictl info >/dev/null 2>&1 && exit 0; sleep 0.5; done
    tail -20 /run/containerd.log; exit 1`;
}

/**
 * Restarts a program (by its pid file or its containerd command line) with
 * OVMIGRATE_CPU_PROFILE=dir added to its own environment: containerd passes
 * it on to the shims it starts, and a shim to the relay it starts (none runs
 * yet: no pod has started when this runs).
 */
function profiledScript(dir: string): string {
  return `set -e
    mkdir -p ${dir}
    again() {
      pid=$1; log=$2
      cmd=$(tr '\\0' ' ' < /proc/$pid/cmdline)
      p=$(tr '\\0' '\\n' < /proc/$pid/environ | sed -n 's/^PATH=//p')
      kill $pid
      while [ -e /proc/$pid ]; do sleep 0.2; done
      PATH=$p ${CPU_PROFILE_ENV}=${dir} setsid $cmd </dev/null >>$log 2>&1 &
      echo $! > /run/bench-restarted
    }
    # A relay started earlier would not profile: the next shim starts another.
    [ -f ${path.join(path.dirname(DEFAULT_SOCKET), 'relay.pid')} ] && kill $(cat ${path.join(path.dirname(DEFAULT_SOCKET), 'relay.pid')}) 2>/dev/null || true
    again $(ps -eo pid=,args= | awk '$3 == "--config" && $4 == "/etc/containerd/config.toml" {print $1; exit}') /run/containerd.log
    for i in $(seq 600); do crictl -r unix://${GUEST_CONTAINERD_SOCKET} version >/dev/null 2>&1 && crictl -r unix://${GUEST_CONTAINERD_SOCKET} info >/dev/null 2>&1 && break; sleep 0.5; done
    again $(cat ${GUEST_CRI_PID}) ${GUEST_CRI_LOG}
    cp /run/bench-restarted ${GUEST_CRI_PID}
    for i in $(seq 600); do crictl version >/dev/null 2>&1 && crictl info >/dev/null 2>&1 && exit 0; sleep 0.5; done
    tail -20 ${GUEST_CRI_LOG}; exit 1`;
}

/**
 * A shell function `profile SUBDIR`: SIGUSR2 to the node programs profiling
 * themselves into `dir`, each writing what it sampled since the last one
 * (common/cpu-profile.ts); their files go to dir/SUBDIR. Without `dir`, a
 * no-op (SIGUSR2 would end them).
 */
function profileSignal(dir: string | undefined): string {
  if (!dir) return 'profile() { :; }';
  return `profile() {
      for p in $(ps -eo pid=,args= | awk '$2 ~ /(^|\\/)node$/ && $3 ~ /\\/dist\\/shim\\/(cri|containerd|channel)\\// {print $1}'); do kill -USR2 $p; done
      # They write when their loops get to it.
      sleep 3
      mkdir -p ${dir}/$1 && for f in ${dir}/*.cpuprofile; do [ -e "$f" ] && mv "$f" ${dir}/$1/; done; true
    }`;
}

/** Places a static pod and waits until its container runs and the hog has touched its memory; prints the container's id. */
function startPodScript(files: string, pod: StaticPod, mib: number): string {
  const name = pod.containers[0].name;
  return `set -e
    cp ${files}/${pod.name}.json ${STATIC_POD_DIR}/.${pod.name}.new && mv ${STATIC_POD_DIR}/.${pod.name}.new ${STATIC_POD_DIR}/${pod.name}.json
    until id=$(crictl ps --name '^${name}$' --state Running -q) && [ -n "$id" ]; do sleep 2; done
    until crictl logs $id 2>&1 | grep -q 'hog ${mib} MiB'; do sleep 1; done
    echo $id`;
}

/**
 * Each process's CPU ticks into /run/bench-cpu.$1 ("pid self children") and
 * its command line into /run/bench-ps.$1. One awk over one cat: /proc/PID/stat
 * may vanish between the glob and the read.
 */
const SNAPSHOT = `snap() {
      ps -eo pid=,args= > /run/bench-ps.$1
      cat /proc/[0-9]*/stat 2>/dev/null | awk '{ s = $0; j = 0; while ((k = index(substr(s, j + 1), ")")) > 0) j += k
        n = split(substr(s, j + 2), f, " "); print $1, f[12] + f[13], f[14] + f[15] }' > /run/bench-cpu.$1
    }`;

/**
 * Ticks per program between the snapshots 0 and 1, as "cpu TICKS NAME" lines:
 * a process alive at both, the growth of its own and (as NAME+children) of
 * its reaped children's; one started in between, all of it; the measuring
 * shell (pid \`self\`) left out.
 * A node program is named by its script under dist/.
 */
const perProgram = (tag: string) => `awk -v self=$$ -v tag=${tag} '
      FILENAME == ARGV[1] { b[$1] = $2; bc[$1] = $3; next }
      FILENAME == ARGV[2] { a[$1] = $2; ac[$1] = $3; next }
      { pid = $1; prog = $2; if (prog ~ /(^|\\/)node$/) prog = $3
        if (prog ~ /\\/dist\\//) sub(/.*\\/dist\\//, "", prog); else sub(/.*\\//, "", prog); name[pid] = prog }
      END { for (p in a) { if (p == self) continue
              d = (p in b) ? a[p] - b[p] : a[p]; if (d > 0) t[name[p]] += d
              d = (p in b) ? ac[p] - bc[p] : ac[p]; if (d > 0) t[name[p] "+children"] += d }
            for (n in t) print tag, t[n], n }' /run/bench-cpu.0 /run/bench-cpu.1 /run/bench-ps.1`;

/**
 * One checkpoint through the kubelet API, timed in the guest, in a window of
 * `windowS` seconds from its start (longer by whole periods if it overruns);
 * guest CPU over the window from /proc/stat (all CPUs, not idle or iowait),
 * in USER_HZ ticks, and per program. Right before it, the same over as many
 * seconds of doing nothing: what the node burns anyway (the kubelet's
 * housekeeping through ovmigrate-cri, the relay's polls, the hog); `gaps`,
 * the hog's gap log, is emptied between the two. The archive is removed
 * afterwards. Prints "idle <ns> <ticks>" and its "icpu" lines, then
 * "<ns> <ticks> <bytes> <archive> <window ns>" and its "cpu" lines.
 */
function checkpointScript(url: string, windowS: number, gaps: string, profiles?: { dir: string; tag: string }): string {
  const tag = profiles?.tag ?? '';
  return `set -e
    busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9}' /proc/stat; }
    ${SNAPSHOT}
    ${profileSignal(profiles?.dir)}
    # The host reads its vCPU threads' CPU time at each mark, then answers.
    mark() { echo "${MARK} $1"; read -r _; }
    profile ${tag}-before
    snap 0
    mark idle-start
    c0=$(busy); t0=$(date +%s%N)
    sleep ${windowS}
    t1=$(date +%s%N); c1=$(busy)
    mark idle-end
    snap 1
    echo idle $((t1 - t0)) $((c1 - c0))
    ${perProgram('icpu')}
    profile ${tag}-idle
    # The hog's gaps from here on only (its rootfs as the node sees it).
    : > ${gaps}
    snap 0
    mark checkpoint-start
    c0=$(busy); t0=$(date +%s%N)
    out=$(curl -sk -X POST '${url}')
    t1=$(date +%s%N)
    # The window's rest: whole periods from its start.
    w=${windowS * 1000}; el=$(( (t1 - t0) / 1000000 ))
    while [ $el -gt $w ]; do w=$((w + ${PERIOD_S * 1000})); done
    sleep $(( (w - el) / 1000 )).$(printf %03d $(( (w - el) % 1000 )))
    t2=$(date +%s%N); c1=$(busy)
    mark checkpoint-end
    snap 1
    profile ${tag}-checkpoint
    loc=$(echo "$out" | sed -n 's/.*"items":\\["\\([^"]*\\)".*/\\1/p')
    [ -n "$loc" ] && [ -s "$loc" ] || { echo "no archive: $out" >&2; exit 1; }
    size=$(stat -c %s "$loc")
    rm -f "$loc"
    echo $((t1 - t0)) $((c1 - c0)) $size "$loc" $((t2 - t0))
    ${perProgram('cpu')}`;
}

/** A line the guest script prints where the host is to read its vCPU threads (then it waits for the host's newline). */
const MARK = '@ovm-bench-mark';

/** What QEMU's vCPU threads ("CPU n/TCG", "CPU n/KVM") have run on the host, in seconds. */
function vcpuSeconds(qemuPid: number): number {
  let vcpuS = 0;
  let vcpus = 0;
  const dir = `/proc/${qemuPid}/task`;
  for (const tid of fs.readdirSync(dir)) {
    let comm: string;
    let ns: number;
    try {
      comm = fs.readFileSync(`${dir}/${tid}/comm`, 'utf8').trim();
      ns = Number(fs.readFileSync(`${dir}/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // a thread that ended between the listing and the read
    }
    if (!/^CPU \d+\/(TCG|KVM)$/.test(comm)) continue;
    vcpuS += ns / 1e9;
    vcpus++;
  }
  if (vcpus === 0) throw new Error(`QEMU ${qemuPid} has no thread named as a vCPU ("CPU 0/TCG"): it runs without -name ...,debug-threads=on`);
  return vcpuS;
}

/** Host time (ms) and QEMU's vCPU seconds at each mark, by its name. */
type Marks = Map<string, { ms: number; vcpuS: number }>;

/**
 * guestScript, with a host read of QEMU's threads at each mark the script
 * prints: the script waits on its stdin until the host has read them, so a
 * window's bounds are where the script put them. The marks' lines are not in
 * the output.
 */
async function markedScript(guest: string, script: string, timeoutMs: number): Promise<{ out: string; marks: Marks }> {
  const qemuPid = readState(guest)?.qemuPid;
  if (!qemuPid) throw new Error(`lab guest ${guest} is not running`);
  const marks: Marks = new Map();
  const stdin = new PassThrough();
  const out: string[] = [];
  const err: Buffer[] = [];
  let partial = '';
  let failed: unknown;
  const stdout = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop()!;
      for (const l of lines) {
        if (!l.startsWith(`${MARK} `)) {
          out.push(l);
          continue;
        }
        try {
          marks.set(l.slice(MARK.length + 1), { ms: performance.now(), vcpuS: vcpuSeconds(qemuPid) });
        } catch (e) {
          failed ??= e;
        }
        stdin.write('\n');
      }
      cb();
    },
  });
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { err.push(chunk); cb(); } });
  const r = await exec(guest, ['sh', '-c', script], { timeoutMs, stdin, stdout, stderr: sink });
  stdin.end();
  if (failed !== undefined) throw failed;
  if (partial) out.push(partial);
  const text = out.join('\n');
  if (r.exitCode !== 0) throw new ExternalError(`in ${guest}: exit ${r.exitCode}: ${(Buffer.concat(err).toString('utf8') || text).trim()}`);
  return { out: text, marks };
}

/** QEMU's vCPU seconds and the host's milliseconds between two marks. */
function between(marks: Marks, from: string, to: string): { vcpuS: number; ms: number } {
  const a = marks.get(from);
  const b = marks.get(to);
  if (!a || !b) throw new Error(`the checkpoint script gave no marks ${from} and ${to}`);
  return { vcpuS: b.vcpuS - a.vcpuS, ms: b.ms - a.ms };
}

/** A node program's script path as a reader knows it. */
const PROGRAM_NAMES: Record<string, string> = {
  'shim/containerd/main.js': 'containerd-shim-ovmigrate-v1',
  'shim/cri/main.js': 'ovmigrate-cri',
  'shim/channel/relay-main.js': 'relay',
};

interface Parsed {
  ns: number;
  /** The checkpoint's window: the call and the rest of its periods. */
  windowNs: number;
  ticks: number;
  bytes: number;
  programs: Map<string, number>;
  idleNs: number;
  idleTicks: number;
  idlePrograms: Map<string, number>;
}

function parseCheckpoint(out: string): Parsed {
  const lines = out.trim().split('\n');
  const at = lines.findIndex((l) => /^\d+ \d+ \d+ /.test(l));
  const idle = lines.find((l) => /^idle \d+ \d+$/.test(l));
  if (at < 0 || !idle) throw new Error(`no measurement in the checkpoint's output: ${out}`);
  const fields = lines[at].split(' ');
  const [ns, ticks, bytes] = fields.map(Number);
  const windowNs = Number(fields.at(-1));
  const [idleNs, idleTicks] = idle.split(' ').slice(1).map(Number);
  const programs = new Map<string, number>();
  const idlePrograms = new Map<string, number>();
  for (const l of lines) {
    const m = /^(cpu|icpu) (\d+) (.+)$/.exec(l);
    if (!m) continue;
    const [prog, children] = m[3].split('+');
    const name = (PROGRAM_NAMES[prog] ?? prog) + (children ? `'s ${children}` : '');
    const into = m[1] === 'cpu' ? programs : idlePrograms;
    into.set(name, (into.get(name) ?? 0) + Number(m[2]) / 100);
  }
  return { ns, windowNs, ticks, bytes, programs, idleNs, idleTicks, idlePrograms };
}

/**
 * A sample from a parsed run: the idle window's CPU scaled to the checkpoint's window (the same length, unless the
 * checkpoint overran it), and taken off; the same for the vCPU threads.
 */
function sampleOf(r: Parsed, marks: Marks, frozenS: number): Sample {
  const scale = r.idleNs > 0 ? r.windowNs / r.idleNs : 0;
  const guestCpuS = r.ticks / 100;
  const idleCpuS = (r.idleTicks / 100) * scale;
  const idlePrograms = new Map([...r.idlePrograms].map(([n, v]) => [n, v * scale]));
  const idle = between(marks, 'idle-start', 'idle-end');
  const window = between(marks, 'checkpoint-start', 'checkpoint-end');
  const idleVcpuS = idle.ms > 0 ? (idle.vcpuS * window.ms) / idle.ms : 0;
  return {
    totalS: r.ns / 1e9, frozenS, guestCpuS, idleCpuS, ownCpuS: guestCpuS - idleCpuS,
    vcpuS: window.vcpuS, idleVcpuS, ownVcpuS: window.vcpuS - idleVcpuS,
    bytes: r.bytes, programs: r.programs, idlePrograms,
  };
}

function textOption(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : process.argv[i + 1] ?? fallback;
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} takes a positive integer`);
  return v;
}

const sec = (v: number) => `${v.toFixed(2)} s`;
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');

/** The table: medians of each measure, the ratio runc / ours, whether the issue's goals are met, then where each side's guest CPU went. */
function report(subjects: Subject[], reps: number, loadAtStart: string): void {
  const m = (s: Subject, k: 'totalS' | 'frozenS' | 'guestCpuS' | 'idleCpuS' | 'ownCpuS' | 'vcpuS' | 'idleVcpuS' | 'ownVcpuS') =>
    median(s.samples.map((x) => x[k]));
  const runc = subjects.find((s) => s.runtimeType !== OVMIGRATE_RUNTIME);
  const [ovm, big] = subjects.filter((s) => s.runtimeType === OVMIGRATE_RUNTIME);
  const w = Math.max(...subjects.map((s) => s.label.length), 12);
  const lines = [
    '',
    `kubelet POST /checkpoint of a ${ovm.mib} MiB container (busybox + hog), and ours of one of ${big.mib} MiB, containerd 2.4 node (TCG), ` +
      "kubelet checkpoint dir on the VM's share",
    `medians of ${reps}, windows of whole ${PERIOD_S} s periods; host: ${os.cpus().length} CPUs, load average (1, 5, 15 min) ${loadAtStart} at the start, ${load()} at the end`,
    '',
    `  ${''.padEnd(10)}  ${subjects.map((s) => s.label.padStart(w)).join('  ')}${runc ? '  ratio' : ''}`,
  ];
  // vCPU host is the CPU time of QEMU's vCPU threads over the checkpoint's window (whole housekeeping periods from its
  // start), guest CPU /proc/stat's in the guest; idle is what the node burns over as long doing nothing (right before),
  // and own the difference: what the checkpoint itself costs. The windows of the sides differ in length: only own
  // compares, with its mean and the standard error of that mean beside the median. The ratio is runc's over ours at
  // the same size.
  const rows = [
    ['total', 'totalS'], ['frozen', 'frozenS'],
    ['vCPU host', 'vcpuS'], ['  idle', 'idleVcpuS'], ['  own', 'ownVcpuS'],
    ['guest CPU', 'guestCpuS'], ['  idle', 'idleCpuS'], ['  own', 'ownCpuS'],
  ] as const;
  const meanErr = (s: Subject, k: 'ownVcpuS' | 'ownCpuS') => {
    const xs = s.samples.map((x) => x[k]);
    const mu = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mu) ** 2, 0) / (xs.length - 1)) : 0;
    return { mu, err: sd / Math.sqrt(xs.length) };
  };
  const meanText = (s: Subject, k: 'ownVcpuS' | 'ownCpuS') => {
    const { mu, err } = meanErr(s, k);
    return `mean ${mu.toFixed(2)} ± ${err.toFixed(2)}`;
  };
  for (const [label, k] of rows) {
    const own = k === 'ownVcpuS' || k === 'ownCpuS';
    const means = own ? `  (${subjects.map((s) => meanText(s, k)).join(', ')})` : '';
    let ratio = '';
    if (runc && (own || k === 'totalS' || k === 'frozenS')) {
      // A ratio over a handful of ticks says little: below 0.05 s it is a bound. Windows of different lengths have none.
      const a = m(runc, k);
      const b = m(ovm, k);
      ratio = b >= 0.05 ? `${(a / b).toFixed(1)}x` : `> ${(a / 0.05).toFixed(0)}x (ours under 0.05 s)`;
    }
    lines.push(`  ${label.padEnd(10)}  ${subjects.map((s) => sec(m(s, k)).padStart(w)).join('  ')}${runc ? `  ${ratio.padEnd(5)}` : ''}${means}`);
  }
  // What the pages cost the guest: ours at BIG times the memory less ours at 1x, per GiB more, with the two means' errors.
  const gib = (big.mib - ovm.mib) / 1024;
  const [small, large] = [meanErr(ovm, 'ownVcpuS'), meanErr(big, 'ownVcpuS')];
  const ours = { perGiB: (large.mu - small.mu) / gib, err: Math.hypot(small.err, large.err) / gib };
  const criuPerGiB = runc ? m(runc, 'ownVcpuS') / (runc.mib / 1024) : undefined;
  lines.push('', `  the guest's CPU per GiB of the container's memory, from the host: ours ${ours.perGiB.toFixed(2)} ± ${ours.err.toFixed(2)} s ` +
    `(own at ${big.mib} MiB less own at ${ovm.mib} MiB, per GiB more)` +
    (criuPerGiB !== undefined ? `; runc + CRIU in the guest ${criuPerGiB.toFixed(2)} s (its own over its size)` : ''));
  if (runc && criuPerGiB !== undefined) {
    const total = m(runc, 'totalS') / m(ovm, 'totalS');
    const share = m(ovm, 'ownVcpuS') / m(runc, 'ownVcpuS');
    // Near zero: a small fixed cost (the node's API path: kubelet, containerd, the pause), none that grows with the memory.
    const flat = ours.perGiB + 2 * ours.err <= NEAR_ZERO * criuPerGiB;
    lines.push(
      `  goal "total at least 5x faster": ${total.toFixed(1)}x, ${total >= 5 ? 'met' : 'NOT met'}`,
      `  goal "guest CPU near zero", from the host (QEMU's vCPU threads): the checkpoint's own (window less idle) ${sec(m(ovm, 'ownVcpuS'))}, ` +
        `${(100 * share).toFixed(1)}% of the in-guest path's ${sec(m(runc, 'ownVcpuS'))}, and ` +
        `${flat ? 'no more' : 'MORE'} than ${(100 * NEAR_ZERO).toFixed(0)}% of its cost per GiB as the memory grows: ` +
        `${share <= NEAR_ZERO && flat ? 'met' : 'NOT met'}`,
      `  in the guest (/proc/stat): the checkpoint's own ${sec(m(ovm, 'ownCpuS'))}, ${((100 * m(ovm, 'ownCpuS')) / m(runc, 'ownCpuS')).toFixed(1)}% of the in-guest path's`,
    );
  }
  // A task's times are its runtime on a vCPU, which under TCG on a loaded host includes the vCPU thread's time off the
  // host's CPUs: their sum can exceed /proc/stat's busy ticks. Their shares say where the guest's CPU went.
  lines.push('', `  guest CPU per program, mean of ${reps} (s, and share of all tasks' time): the checkpoint's window, the idle one ` +
    `(as long), and the window less idle`);
  const mean = (s: Subject, pick: (x: Sample) => Map<string, number>) => {
    const sum = new Map<string, number>();
    for (const x of s.samples) for (const [n, v] of pick(x)) sum.set(n, (sum.get(n) ?? 0) + v / s.samples.length);
    return sum;
  };
  const shares = (sum: Map<string, number>, signed: boolean) => {
    const all = [...sum.values()].reduce((a, b) => a + Math.max(0, b), 0);
    const top = [...sum].filter(([, v]) => (signed ? Math.abs(v) : v) >= 0.01 && Math.abs(v) >= all / 200).sort((a, b) => b[1] - a[1]);
    return top.map(([n, v]) => `${n} ${v.toFixed(2)}${signed ? '' : ` (${((100 * v) / all).toFixed(0)}%)`}`).join(', ') || '(none over 0.01 s)';
  };
  for (const s of subjects) {
    const window = mean(s, (x) => x.programs);
    const idle = mean(s, (x) => x.idlePrograms);
    const own = new Map(window);
    for (const [n, v] of idle) own.set(n, (own.get(n) ?? 0) - v);
    lines.push(`    ${s.label}, window: ${shares(window, false)}`);
    lines.push(`    ${s.label}, idle: ${shares(idle, false)}`);
    lines.push(`    ${s.label}, own: ${shares(own, true)}`);
  }
  lines.push(`  archive size: ${subjects.map((s) => `${s.label} ${(median(s.samples.map((x) => x.bytes)) / 2 ** 20).toFixed(1)} MiB`).join(', ')}`);
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  const dryRun = process.argv.includes('--dry-run');
  const mib = option('--size', DEFAULT_MIB);
  const reps = option('--reps', DEFAULT_REPS);
  const NODE = textOption('--node', 'kbench');
  const baseline = !process.argv.includes('--no-baseline');
  const profileTo = process.argv.includes('--profile') ? path.resolve(textOption('--profile', '')) : undefined;
  const loadAtStart = load();
  const progress = (s: string) => log.info(`bench: ${s}`);
  const dirs = nodeDirs(NODE);
  const hog = path.join(dirs.files, 'hog');
  const onShare = path.join(dirs.images, 'kubelet-checkpoints');
  // Where the guest's programs write their profiles: the share, seen by the host at the same path.
  const profiles = profileTo ? path.join(dirs.images, 'cpu-profiles') : undefined;
  const bigMib = BIG * mib;
  const subjects: Subject[] = [
    { label: 'runc + CRIU in the guest', pod: hogPod('hog-runc', hog, mib), mib, runtimeType: 'io.containerd.runc.v2', firstWindowS: 60, samples: [] },
    { label: 'ovmigrate', pod: hogPod('hog-ovm', hog, mib), mib, runtimeType: OVMIGRATE_RUNTIME, firstWindowS: MIN_WINDOW_S, samples: [] },
    { label: `ovmigrate, ${bigMib} MiB`, pod: hogPod('hog-ovm-big', hog, bigMib), mib: bigMib, runtimeType: OVMIGRATE_RUNTIME, firstWindowS: MIN_WINDOW_S, samples: [] },
  ];
  const [runc, ovm, big] = subjects;
  // --no-baseline: our side alone (where the guest's CPU goes, without minutes of CRIU in the guest).
  const measured = baseline ? subjects : [ovm, big];
  const shareCheckpoints = `set -e
    mkdir -p ${onShare} && chmod 0700 ${onShare}
    rm -rf ${KUBELET_CHECKPOINT_DIR} && ln -s ${onShare} ${KUBELET_CHECKPOINT_DIR}`;
  if (dryRun) {
    for (const s of subjects) {
      console.log(`# ${s.label}: ${s.runtimeType}\n${(s.pod as StaticPod & { manifest: string }).manifest}`);
      console.log(`# checkpoint: ${checkpointScript(checkpointUrl(s.pod, NODE, s.pod.containers[0].name), s.firstWindowS, path.join(taskBundle('ID'), 'rootfs', 'gaps'),
        profiles ? { dir: profiles, tag: `${s.pod.name}-1` } : undefined)}\n`);
    }
    console.log(`# the kubelet's checkpoints on the share:\n${shareCheckpoints}\n`);
    if (profiles) console.log(`# profiling:\n${profiledScript(profiles)}\n`);
    console.log(`# ${ovm.pod.name} first, then containerd's default runtime to runc:\n${defaultRuntimeScript('runc', runc.runtimeType, componentBinary('containerd-shim-runc-v2'))}\n`);
    console.log(`# a pod: ${startPodScript(dirs.files, runc.pod, mib)}`);
    return;
  }
  // The hogs' memory, CRIU's images of the runc pod's on the guest's tmpfs, the node's programs.
  const memoryMiB = Math.max(3072, 1536 + 3 * mib + bigMib);
  try {
    progress(`booting ${NODE}, a Kubernetes node on containerd 2.4 (${memoryMiB} MiB): the kubelet on ovmigrate-cri, ovmigrate serve for it`);
    await up(NODE, { kubernetes: '2', memoryMiB });
    execFileSync('gcc', ['-O1', '-static', '-o', hog, path.join(PROGRAMS, 'hog.c')]);
    for (const s of subjects) fs.writeFileSync(path.join(dirs.files, `${s.pod.name}.json`), (s.pod as StaticPod & { manifest: string }).manifest);
    await guestScript(NODE, shareCheckpoints, 60_000);
    if (profiles) {
      progress(`containerd and ovmigrate-cri again, profiling themselves (${CPU_PROFILE_ENV}=${profiles})`);
      fs.rmSync(profiles, { recursive: true, force: true });
      await guestScript(NODE, profiledScript(profiles), SLOW_MS);
    }
    const ids = new Map<Subject, string>();
    for (const s of [ovm, big]) {
      progress(`${s.pod.name} on the default runtime (ours), touching ${s.mib} MiB`);
      ids.set(s, (await guestScript(NODE, startPodScript(dirs.files, s.pod, s.mib), SLOW_MS)).trim());
    }
    if (baseline) {
      progress('containerd restarted with runc as its default runtime (a standalone kubelet cannot pick a runtime handler per pod)');
      await guestScript(NODE, defaultRuntimeScript('runc', runc.runtimeType, componentBinary('containerd-shim-runc-v2')), SLOW_MS);
      progress(`${runc.pod.name} on runc, touching ${mib} MiB`);
      ids.set(runc, (await guestScript(NODE, startPodScript(dirs.files, runc.pod, mib), SLOW_MS)).trim());
    }
    for (const s of measured) {
      const info = await guestScript(NODE, `crictl inspect ${ids.get(s)}`, 120_000);
      if (!info.includes(`"runtimeType": "${s.runtimeType}"`)) throw new Error(`${s.pod.name} does not run on ${s.runtimeType}`);
    }

    for (let rep = 1; rep <= reps; rep++) {
      for (const s of measured) {
        const id = ids.get(s)!;
        const previous = s.samples.at(-1)?.totalS;
        const windowS = previous === undefined ? s.firstWindowS : windowFor(previous);
        const gaps = path.join(taskBundle(id), 'rootfs', 'gaps');
        const { out, marks } = await markedScript(NODE, checkpointScript(checkpointUrl(s.pod, NODE, s.pod.containers[0].name), windowS, gaps,
          profiles ? { dir: profiles, tag: `${s.pod.name}-${rep}` } : undefined), SLOW_MS);
        const r = parseCheckpoint(out);
        // The longest wake-up gap the hog logged while the checkpoint ran (it wakes every 20 ms; gaps over 100 ms are logged).
        const gap = Number((await guestScript(NODE, `crictl exec ${id} sh -c 'sort -n /gaps | tail -1'`, 120_000)).trim() || 0);
        const sample = sampleOf(r, marks, gap / 1000);
        s.samples.push(sample);
        progress(`${s.label} #${rep}/${reps}: total ${sec(sample.totalS)}, frozen ${sec(sample.frozenS)}, vCPU host ${sec(sample.vcpuS)} ` +
          `(idle ${sec(sample.idleVcpuS)} over as long, own ${sec(sample.ownVcpuS)}), guest CPU ${sec(sample.guestCpuS)} ` +
          `(idle ${sec(sample.idleCpuS)}, own ${sec(sample.ownCpuS)}), archive ${(r.bytes / 2 ** 20).toFixed(1)} MiB (load ${load()})`);
      }
    }
    report(measured, reps, loadAtStart);
    if (profiles && profileTo) {
      fs.cpSync(profiles, profileTo, { recursive: true });
      console.log(`  CPU profiles: ${profileTo} (<pod>-<rep>-idle and -checkpoint, one file per program)`);
    }
  } catch (err) {
    process.stderr.write(await nodeLogs(NODE).catch(() => ''));
    throw err;
  } finally {
    await down(NODE).catch(() => undefined);
  }
}

main().catch((err) => {
  log.error(`bench: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});

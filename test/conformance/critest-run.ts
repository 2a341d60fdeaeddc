import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/**
 * What our offline host cannot run, by critest spec name (cri-tools v1.37.0,
 * pkg/validate): each of these pulls an image from a registry (a test here
 * reaches no network beyond loopback) or needs what the host does not give a
 * test. Every other spec runs on our local busybox and pause images.
 */
export const CRITEST_SKIP: Record<string, string> = {
  // Pull gcr.io/k8s-staging-cri-tools/test-image-* and registry.k8s.io/pause (consts.go: registry).
  'Image Manager': 'pulls test images from gcr.io',
  'Image Consistency': 'pulls test images from gcr.io',
  'Image Identifier Consistency': 'pulls test images from gcr.io and registry.k8s.io',
  'Image Volume': 'mounts test images from gcr.io',
  SupplementalGroupsPolicy: 'runs gcr.io/k8s-staging-cri-tools/test-image-predefined-group',
  // createWebServerContainer: registry.k8s.io/e2e-test-images/nginx, and host ports are iptables rules on the host.
  'port mapping': 'an nginx image and host iptables rules',
  portforward: 'an nginx image',
  // The PID namespace specs run nginx too; the rest pull their own e2e-test-images.
  'support HostPID': 'an nginx image',
  'support PodPID': 'an nginx image',
  'support ContainerPID': 'an nginx image',
  'Multiple Containers': 'registry.k8s.io/e2e-test-images/httpd',
  NoNewPrivs: 'registry.k8s.io/e2e-test-images/nonewprivs',
};

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export const SKIP_REGEX = Object.keys(CRITEST_SKIP).map((s) => escapeRegex(s)).join('|');

export type SpecState = 'passed' | 'failed' | 'skipped';

export interface CritestResult {
  /** Spec name -> outcome (pending and skipped count as skipped). */
  specs: Map<string, SpecState>;
  counts: Record<SpecState, number>;
  exitCode: number | null;
  seconds: number;
  /** critest's own output (ginkgo's), in full. */
  output: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** The specs of ginkgo's JUnit report: `<testcase name="[It] ..." ... status="passed">`; suite nodes are left out. */
export function parseJunit(xml: string): Map<string, SpecState> {
  const specs = new Map<string, SpecState>();
  for (const m of xml.matchAll(/<testcase\b([^>]*)>/g)) {
    const attr = (k: string) => new RegExp(`\\b${k}="([^"]*)"`).exec(m[1])?.[1]?.replace(/&(\w+);/g, (_e, n: string) => ENTITIES[n] ?? `&${n};`);
    const name = attr('name');
    const status = attr('status');
    if (!name || !name.startsWith('[It] ') || !status) continue;
    specs.set(name.slice(5), status === 'passed' ? 'passed' : status === 'failed' || status === 'panicked' || status === 'timedout' || status === 'interrupted' ? 'failed' : 'skipped');
  }
  return specs;
}

export interface CritestRun {
  critest: string;
  /** The CRI socket (runtime and image service). */
  socket: string;
  /** A scratch directory of this run (config, images file, report). */
  dir: string;
  /** The image every container of the suite runs (critest's defaultTestContainerImage). */
  image: string;
  timeoutMs: number;
  /** Only these specs (full names, as the report gives them). */
  focus?: string[];
}


/** Runs critest once against `socket`, specs in a fixed order, and reads its JUnit report. */
export async function runCritest(o: CritestRun): Promise<CritestResult> {
  fs.mkdirSync(o.dir, { recursive: true });
  const images = path.join(o.dir, 'test-images.yaml');
  fs.writeFileSync(images, `defaultTestContainerImage: ${o.image}\n`);
  // critest reads /etc/crictl.yaml when -config names nothing; ours says only the endpoints.
  const config = path.join(o.dir, 'crictl.yaml');
  fs.writeFileSync(config, `runtime-endpoint: unix://${o.socket}\nimage-endpoint: unix://${o.socket}\n`);
  const report = path.join(o.dir, 'junit.xml');
  const args = [
    `-runtime-endpoint=unix://${o.socket}`, `-image-endpoint=unix://${o.socket}`, `-config=${config}`, `-test-images-file=${images}`,
    `-ginkgo.skip=${SKIP_REGEX}`, `-ginkgo.junit-report=${report}`, '-ginkgo.no-color', '-ginkgo.randomize-all=false', '-ginkgo.seed=1',
    `-ginkgo.timeout=${Math.round(o.timeoutMs / 1000)}s`,
    ...(o.focus ? [`-ginkgo.focus=${o.focus.map(escapeRegex).join('|')}`] : []),
  ];
  const started = Date.now();
  // Its output goes to a file as it runs (`tail -f` shows the specs going by).
  const logFile = path.join(o.dir, 'critest.log');
  const code = await new Promise<number | null>((resolve, reject) => {
    const out = fs.openSync(logFile, 'w');
    const child = spawn(o.critest, args, { cwd: o.dir, stdio: ['ignore', out, out] });
    fs.closeSync(out);
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs + 60_000);
    child.on('error', reject);
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve(c);
    });
  });
  const output = fs.readFileSync(logFile, 'utf8');
  if (!fs.existsSync(report)) throw new Error(`critest wrote no report (exit ${code}):\n${output.slice(-3000)}`);
  const specs = parseJunit(fs.readFileSync(report, 'utf8'));
  const counts: Record<SpecState, number> = { passed: 0, failed: 0, skipped: 0 };
  for (const s of specs.values()) counts[s]++;
  return { specs, counts, exitCode: code, seconds: Math.round((Date.now() - started) / 1000), output };
}

/** The specs whose outcome differs between two runs, as `name: a -> b`. */
export function differences(a: CritestResult, b: CritestResult): string[] {
  const names = new Set([...a.specs.keys(), ...b.specs.keys()]);
  return [...names].sort().flatMap((n) => (a.specs.get(n) === b.specs.get(n) ? [] : [`${n}: ${a.specs.get(n) ?? 'absent'} -> ${b.specs.get(n) ?? 'absent'}`]));
}

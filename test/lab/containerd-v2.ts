import path from 'node:path';
import { STAND_IN_DIR } from '../../shim/criu-version/index.js';
import { componentBinary } from './components/index.js';
import { SHIM_BIN, guestScript } from './containerd.js';
import { CniDirs, criConfigLines } from './cri-config.js';
import { PAUSE_IMAGE } from './pause-image.js';

/** containerd 2.x's CRI socket in a lab guest (containerd's default address: ctr and crictl find it). */
export const CONTAINERD_V2_SOCKET = '/run/containerd/containerd.sock';
/** The containerd namespace of CRI pods and containers. */
export const CRI_NAMESPACE = 'k8s.io';

/** Seconds containerd 2.x may take to answer: a TCG guest on a host at load 20 took over two minutes. */
const START_TIMEOUT_S = 300;

/** The system directories a guest's shims search after ours. */
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The PATH containerd gives its shims (the shim manager's env), which is also
 * the only place its CRI looks for `criu` (internal/cri/server
 * resolveCriuPath, first match in order): the real CRIU where the guest has
 * one, else the version-only stand-in, last. Our shim takes the stand-in out
 * of its own PATH (shim/criu-version), so runc never runs it.
 */
export function shimSearchPath(): string {
  return [SHIM_BIN, SYSTEM_PATH, STAND_IN_DIR].join(':');
}

/**
 * The containerd 2.x programs of the components cache (components.json):
 * `containerd` is v2.3 (its CRI still restores through CreateContainer, off
 * by default), `containerd-2.4` is v2.4, which removed that (containerd
 * 91be73ba6): there only ovmigrate-cri restores.
 */
export type ContainerdV2Program = 'containerd' | 'containerd-2.4';

/**
 * What each build reads: v2.4 has config version 4 (it moved the server's
 * grpc, ttrpc, metrics and debug tables into plugins; this config has none of
 * them, so the rest reads as in 3, which 2.4 would migrate with a warning), and
 * no enable_experimental_restore_via_create (2.1 to 2.3).
 */
const V2_BUILDS: Record<ContainerdV2Program, { configVersion: 3 | 4; restoreViaCreate: boolean }> = {
  containerd: { configVersion: 3, restoreViaCreate: true },
  'containerd-2.4': { configVersion: 4, restoreViaCreate: false },
};

/**
 * containerd 2.x (the components cache) with its CRI plugin (cri-config.ts):
 * our shim the default runtime, checkpoint through the CRI and, up to 2.3,
 * restore through CreateContainer, our pause image, CNI only when given (else pods
 * in the node network), the OOM clamp; state on the guest's tmpfs (/run, /var/lib); the
 * shims' PATH (shimSearchPath); the long shim timeouts as for containerd 1.6
 * (containerd.ts), and a long task state timeout. The config version is
 * the build's own (V2_BUILDS).
 */
export function containerdV2Config(o: { cni?: CniDirs; program?: ContainerdV2Program } = {}): string {
  const build = V2_BUILDS[o.program ?? 'containerd'];
  return [
    `version = ${build.configVersion}`,
    "root = '/var/lib/containerd'",
    "state = '/run/containerd'",
    ...criConfigLines({
      line: '2',
      sandboxImage: PAUSE_IMAGE,
      runtimes: [{ name: 'ovmigrate', type: 'io.containerd.ovmigrate.v1', containerAnnotations: ['io.ovmigrate.*'] }],
      checkpointRestore: true,
      restoreViaCreate: build.restoreViaCreate,
      cni: o.cni,
    }),
    "[plugins.'io.containerd.shim.v1.manager']",
    `  env = [${JSON.stringify(`PATH=${shimSearchPath()}`)}]`,
    '[timeouts]',
    '  "io.containerd.timeout.shim.cleanup" = "60s"',
    '  "io.containerd.timeout.shim.load" = "60s"',
    // A task's State (each exec asks it first) gets 2 s by default: a node shim under TCG, on a loaded host, may need more.
    '  "io.containerd.timeout.task.state" = "60s"',
    '',
  ].join('\n');
}

/** The 2.x programs in the components cache (containerd, or `program`; ctr, crictl, checkpointctl). */
export function v2Programs(program: ContainerdV2Program = 'containerd'): { containerd: string; ctr: string; crictl: string; checkpointctl: string } {
  return { containerd: componentBinary(program), ctr: componentBinary('ctr'), crictl: componentBinary('crictl'), checkpointctl: componentBinary('checkpointctl') };
}

/**
 * Starts containerd 2.x in the guest (once; config /etc/containerd/config.toml, log in
 * /run/containerd.log) and waits until its CRI answers. A guest runs one containerd.
 */
export async function startGuestContainerdV2(guest: string, o: { cni?: CniDirs; program?: ContainerdV2Program } = {}): Promise<void> {
  const p = v2Programs(o.program);
  await guestScript(guest, `
    ${p.crictl} -r unix://${CONTAINERD_V2_SOCKET} version >/dev/null 2>&1 && exit 0
    mkdir -p /etc/containerd && cat > /etc/containerd/config.toml <<'OVM_EOF'
${containerdV2Config(o)}OVM_EOF
    PATH=${path.dirname(p.containerd)}:${SHIM_BIN}:$PATH setsid ${p.containerd} --config /etc/containerd/config.toml </dev/null >/run/containerd.log 2>&1 &
    end=$(($(date +%s) + ${START_TIMEOUT_S}))
    while [ $(date +%s) -lt $end ]; do ${p.crictl} -r unix://${CONTAINERD_V2_SOCKET} version >/dev/null 2>&1 && exit 0; sleep 0.2; done
    tail -20 /run/containerd.log; exit 1`, (START_TIMEOUT_S + 60) * 1000);
}

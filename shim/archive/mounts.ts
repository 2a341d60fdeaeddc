import path from 'node:path';
import { FailedPreconditionError } from '../../common/errors.js';
import type { CheckpointMount, CheckpointSpec } from './metadata.js';

/**
 * Bind mounts named in an archive are never applied from it: a restored
 * container gets the mounts of its new CreateContainer request (runc
 * restore hands them to CRIU as external mounts, keyed by destination), and
 * a checkpointed bind mount that the new container does not provide is
 * refused here rather than restored onto something else. CVE-2024-8676
 * (CRI-O mounting an archive's bind.mounts from the host) is the case.
 */

/** The mounts containerd's CRI adds to every container when the request has none there (container_create_linux.go). */
export const CRI_OWN_MOUNTS: readonly string[] = ['/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/dev/shm'];

function clean(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** The checkpointed container's bind mounts (type bind, or a bind/rbind option). */
export function checkpointedBinds(spec: CheckpointSpec): CheckpointMount[] {
  return spec.mounts.filter((m) => m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind'));
}

/**
 * Throws FailedPreconditionError naming every checkpointed bind mount whose
 * destination is not among `provided` (the new container's mounts).
 */
export function requireBindMounts(spec: CheckpointSpec, provided: Iterable<string>, where: string): void {
  const have = new Set([...provided].map(clean));
  const missing = checkpointedBinds(spec).filter((m) => !have.has(clean(m.destination)));
  if (missing.length === 0) return;
  const list = missing.map((m) => `${JSON.stringify(m.destination)} (from ${JSON.stringify(m.source)} in the checkpointed container)`).join(', ');
  throw new FailedPreconditionError(`the checkpoint has bind mounts the new container does not provide: ${list}; `
    + `mounts are never taken from the archive: give the new container a mount at each of these paths (${where})`);
}

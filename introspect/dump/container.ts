import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { PathRoot, dPath } from '../linux/d-path.js';
import { forEachFd } from '../linux/files.js';

/** Largest config.json read; real ones are a few KiB. */
const MAX_CONFIG = 4 << 20;

/**
 * What a dump of a runc container takes from its OCI bundle's config.json,
 * the way runc itself tells CRIU (runc libcontainer/container_linux.go
 * Checkpoint): which mounts are external, under which keys, and which
 * namespaces are given from outside.
 */
export interface ContainerSpec {
  bundle: string;
  /** External mounts: mount point in the container -> the key CRIU records (ext_key). */
  externalMounts: Map<string, string>;
  /** Masked paths: a file there is /dev/null bound over it, external with key /dev/null (runc addMaskPaths). */
  maskedPaths: Set<string>;
  /** Namespaces the container joins by path (a pod's network namespace): kind -> path. */
  joinedNamespaces: Map<string, string>;
}

interface OciConfig {
  mounts?: { destination?: string; type?: string; source?: string; options?: string[] }[];
  linux?: {
    maskedPaths?: string[];
    devices?: { path?: string }[];
    namespaces?: { type?: string; path?: string }[];
  };
}

/** runc's addCriuDumpMount: the destination, cleaned as a path in the container. */
function containerPath(p: string): string {
  return path.posix.resolve('/', p);
}

export function readContainerSpec(bundle: string): ContainerSpec {
  const file = path.join(bundle, 'config.json');
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new NotFoundError(`--bundle ${bundle}: no config.json`);
  if (st.size > MAX_CONFIG) throw new InvalidArgumentError(`${file}: ${st.size} bytes is not an OCI runtime config`);
  let config: OciConfig;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as OciConfig;
  } catch (err) {
    throw new BadDataError(`${file} is not JSON`, { cause: err });
  }
  const externalMounts = new Map<string, string>();
  for (const m of config.mounts ?? []) {
    // Bind mounts (runc marks them by type or by a bind option) come from outside the container.
    const bind = m.type === 'bind' || (m.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    if (bind && m.destination) externalMounts.set(containerPath(m.destination), containerPath(m.destination));
  }
  const maskedPaths = new Set((config.linux?.maskedPaths ?? []).map(containerPath));
  for (const d of config.linux?.devices ?? []) if (d.path) externalMounts.set(containerPath(d.path), containerPath(d.path));
  const joinedNamespaces = new Map<string, string>();
  for (const ns of config.linux?.namespaces ?? []) if (ns.type && ns.path) joinedNamespaces.set(ns.type, ns.path);
  return { bundle, externalMounts, maskedPaths, joinedNamespaces };
}

/** The targets of fds 0-2 of a container's init, as readlink(/proc/PID/fd/N) names them (pipes as pipe:[N]). */
export function stdioTargets(init: KObject, root: PathRoot): string[] {
  const fds = new Map([...forEachFd(init)].map(({ fd, file }) => [fd, file]));
  return [0, 1, 2].map((fd) => {
    const file = fds.get(fd);
    return file ? dPath(file.member('f_path'), root) : '/dev/null';
  });
}

/**
 * descriptors.json (runc): the targets of the init process's fds 0-2 as
 * readlink(/proc/PID/fd/N) shows them. runc restore turns each "pipe:[N]"
 * into an inherited fd, so the pipes reconnect to the new runtime's stdio.
 */
export function descriptorsJson(targets: string[]): Buffer {
  return Buffer.from(JSON.stringify(targets));
}

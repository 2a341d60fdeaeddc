import fs from 'node:fs';
import path from 'node:path';
import { BadDataError, InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';
import { PathRoot, dPath } from '../linux/d-path.js';
import { forEachFd } from '../linux/files.js';
import { openFileState } from '../linux/open-file.js';

/** Largest config.json read; real ones are a few KiB. */
const MAX_CONFIG = 4 << 20;

/**
 * What a dump of a runc container takes from its OCI bundle's config.json,
 * the way runc itself tells CRIU (runc libcontainer/container_linux.go
 * Checkpoint): which mounts are external, under which keys, and which
 * namespaces are given from outside.
 */
export interface ContainerSpec {
  /** External mounts: mount point in the container -> the key CRIU records (ext_key). */
  externalMounts: Map<string, string>;
  /** Masked paths: a file there is /dev/null bound over it, external with key /dev/null (runc addMaskPaths). */
  maskedPaths: Set<string>;
  /** Namespaces the container joins by path (a pod's network namespace): kind -> path. */
  joinedNamespaces: Map<string, string>;
  /** process.terminal: the init's stdio are a pty slave runc made, not what runc was started with. */
  terminal?: boolean;
}

interface OciConfig {
  process?: { terminal?: boolean };
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
  return parseContainerSpec(fs.readFileSync(file), file);
}

/** The spec from a config.json's bytes; `where` names them in errors (a file, a request). */
export function parseContainerSpec(json: Buffer, where: string): ContainerSpec {
  if (json.length > MAX_CONFIG) throw new InvalidArgumentError(`${where}: ${json.length} bytes is not an OCI runtime config`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new BadDataError(`${where} is not JSON`, { cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new BadDataError(`${where} is not a JSON object`);
  const config = parsed as OciConfig;
  const externalMounts = new Map<string, string>();
  for (const m of list(config.mounts)) {
    // Bind mounts (runc marks them by type or by a bind option) come from outside the container.
    const bind = m?.type === 'bind' || list(m?.options).some((o) => o === 'bind' || o === 'rbind');
    if (bind && typeof m.destination === 'string') externalMounts.set(containerPath(m.destination), containerPath(m.destination));
  }
  const maskedPaths = new Set(list(config.linux?.maskedPaths).filter((p) => typeof p === 'string').map(containerPath));
  for (const d of list(config.linux?.devices)) if (typeof d?.path === 'string') externalMounts.set(containerPath(d.path), containerPath(d.path));
  const joinedNamespaces = new Map<string, string>();
  for (const ns of list(config.linux?.namespaces)) {
    if (typeof ns?.type === 'string' && typeof ns.path === 'string' && ns.path) joinedNamespaces.set(ns.type, ns.path);
  }
  return { externalMounts, maskedPaths, joinedNamespaces, terminal: config.process?.terminal === true };
}

/** A config's array, or none when the field is absent or not an array (a guest may send anything). */
function list<T>(value: T[] | undefined): T[] {
  return Array.isArray(value) ? value : [];
}

/** The targets of fds 0-2 of a container's init, as readlink(/proc/PID/fd/N) names them (pipes as pipe:[N]). */
export function stdioTargets(init: KObject, root: PathRoot): string[] {
  const fds = new Map([...forEachFd(init)].map(({ fd, file }) => [fd, file]));
  return [0, 1, 2].map((fd) => {
    const file = fds.get(fd);
    return file ? dPath(openFileState(file).path, root) : '/dev/null';
  });
}

/**
 * descriptors.json (runc): the targets of the init process's fds 0-2 as
 * readlink(/proc/PID/fd/N) shows them. runc restore turns each "pipe:[N]"
 * into an inherited fd, so the pipes reconnect to the new runtime's stdio.
 * runc reads them (getPipeFds) as soon as its init starts, before the init
 * of a terminal container swaps them for its pty: for containerd's shim,
 * which hands runc no stdio then (pkg/process/init.go), /dev/null.
 */
export function descriptorsJson(targets: string[]): Buffer {
  return Buffer.from(JSON.stringify(targets));
}

import fs from 'node:fs';
import path from 'node:path';
import { ArchiveRefusedError } from '../../common/errors.js';
import { DEFAULT_ARCHIVE_LIMITS } from './unpack-archive.js';

/**
 * The metadata of an unpacked checkpoint archive, checked field by field:
 * only what restore uses is read, and each is the JSON type it must be.
 * config.dump is checkpointctl's ContainerConfig (what containerd 2.x and
 * CRI-O write); spec.dump the container's OCI spec; status.dump the CRI
 * ContainerStatus (containerd).
 */

export interface CheckpointConfig {
  id: string;
  name: string;
  rootfsImage: string;
  rootfsImageRef: string;
  rootfsImageName: string;
  runtime: string;
  checkpointedTime: string;
}

export interface CheckpointMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface CheckpointSpec {
  args: string[];
  cwd: string;
  mounts: CheckpointMount[];
  annotations: Record<string, string>;
}

export interface CheckpointMetadata {
  config: CheckpointConfig;
  spec: CheckpointSpec;
  /** status.dump's image.image, when there is one. */
  statusImage: string;
}

type Json = Record<string, unknown>;

/** A bounded file of the unpacked archive as a JSON object (or undefined when absent and optional). */
function readJson(dir: string, name: string, required: boolean, max = DEFAULT_ARCHIVE_LIMITS.maxMetadataBytes): Json | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !required) return undefined;
    throw new ArchiveRefusedError(name, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'not a regular file');
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new ArchiveRefusedError(name, 'not a regular file');
    if (st.size > max) throw new ArchiveRefusedError(name, `metadata of ${st.size} bytes (at most ${max})`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = fs.readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    text = buf.subarray(0, off).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ArchiveRefusedError(name, `not JSON (${(err as Error).message})`);
  }
  if (!isObject(value)) throw new ArchiveRefusedError(name, 'not a JSON object');
  return value;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Json, key: string, file: string): string {
  const v = o[key];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new ArchiveRefusedError(file, `${key} is not a string`);
  return v;
}

function strings(v: unknown, what: string, file: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new ArchiveRefusedError(file, `${what} is not a list of strings`);
  return v as string[];
}

function obj(o: Json, key: string, file: string): Json {
  const v = o[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new ArchiveRefusedError(file, `${key} is not an object`);
  return v;
}

function parseConfig(o: Json): CheckpointConfig {
  const f = 'config.dump';
  const c: CheckpointConfig = {
    id: str(o, 'id', f), name: str(o, 'name', f), rootfsImage: str(o, 'rootfsImage', f), rootfsImageRef: str(o, 'rootfsImageRef', f),
    rootfsImageName: str(o, 'rootfsImageName', f), runtime: str(o, 'runtime', f), checkpointedTime: str(o, 'checkpointedTime', f),
  };
  if (!c.rootfsImageRef && !c.rootfsImageName && !c.rootfsImage) {
    throw new ArchiveRefusedError(f, 'names no image (rootfsImageRef, rootfsImageName or rootfsImage)');
  }
  return c;
}

function parseSpec(o: Json): CheckpointSpec {
  const f = 'spec.dump';
  const proc = obj(o, 'process', f);
  const rawMounts = o.mounts ?? [];
  if (!Array.isArray(rawMounts)) throw new ArchiveRefusedError(f, 'mounts is not a list');
  const mounts = rawMounts.map((m: unknown, i): CheckpointMount => {
    if (!isObject(m)) throw new ArchiveRefusedError(f, `mounts[${i}] is not an object`);
    const destination = str(m, 'destination', f);
    if (!destination.startsWith('/')) throw new ArchiveRefusedError(f, `mounts[${i}].destination is not an absolute path`);
    return { destination, type: str(m, 'type', f), source: str(m, 'source', f), options: strings(m.options, `mounts[${i}].options`, f) };
  });
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(o, 'annotations', f))) {
    if (typeof v !== 'string') throw new ArchiveRefusedError(f, `annotation ${JSON.stringify(k)} is not a string`);
    annotations[k] = v;
  }
  return { args: strings(proc.args, 'process.args', f), cwd: str(proc, 'cwd', f), mounts, annotations };
}

/** config.dump, spec.dump and status.dump of an unpacked archive; ArchiveRefusedError when one is not what it must be. */
export function readMetadata(dir: string, maxBytes?: number): CheckpointMetadata {
  const config = parseConfig(readJson(dir, 'config.dump', true, maxBytes)!);
  const spec = parseSpec(readJson(dir, 'spec.dump', true, maxBytes)!);
  const status = readJson(dir, 'status.dump', false, maxBytes);
  const statusImage = status ? str(obj(status, 'image', 'status.dump'), 'image', 'status.dump') : '';
  return { config, spec, statusImage };
}

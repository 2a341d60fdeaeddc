import fs from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { MemorySegment } from '../memory/physical-memory.js';

/**
 * How `--vm NAME` reaches a VM: what the operator (or whatever starts the
 * VM, such as the test lab) writes into `$OVMIGRATE_VM_DIR/NAME.json`.
 *
 *   { "version": 1,
 *     "memoryFile": "/dev/shm/vm1.mem",                 QEMU memory-backend-file (share=on)
 *     "ramLayout": [{ "gpa": "0x0", "size": "0x80000000", "fileOffset": "0x0" }],
 *     "qmpSocket": "/run/vm1/qmp.sock",                 optional
 *     "channelSocket": "/run/vm1/channel.sock",         optional; `serve` needs it
 *     "shares": ["/srv/vm1/images"] }                   optional: host directories the guest mounts at the same path
 *
 * Without ramLayout the layout comes from QMP (`info mtree`), else from
 * QEMU's q35 rule for the file's size, as with `--mem`.
 */
export interface VmDescription {
  name: string;
  memoryFile: string;
  ramLayout?: MemorySegment[];
  qmpSocket?: string;
  channelSocket?: string;
  /** Absent: not known, and `serve` does not check that its image directory is on a share. */
  shares?: string[];
}

/** How the CLI turns `--vm NAME` into a description; the product reads files, a test bench may check more first. */
export type VmResolver = (name: string) => VmDescription;

/** QEMU's id of the VM's RAM backend (`-object memory-backend-file,id=mem`): its name in `info mtree`. */
export const RAM_BLOCK = 'mem';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HEX = /^0x[0-9a-fA-F]{1,16}$/;
const KEYS = new Set(['version', 'memoryFile', 'ramLayout', 'qmpSocket', 'channelSocket', 'shares']);
/** A description is a few hundred bytes; anything far larger is not one. */
const MAX_BYTES = 64 << 10;
const MAX_SEGMENTS = 64;
const MAX_SHARES = 64;

export function vmDir(): string {
  return process.env.OVMIGRATE_VM_DIR ?? '/run/ovmigrate/vms';
}

export function checkVmName(name: string): string {
  if (!NAME.test(name)) throw new InvalidArgumentError(`VM name ${JSON.stringify(name)} must match ${NAME.source}`);
  return name;
}

export function vmDescriptionPath(name: string): string {
  return path.join(vmDir(), `${checkVmName(name)}.json`);
}

/** Reads and validates `$OVMIGRATE_VM_DIR/NAME.json`. */
export function readVmDescription(name: string): VmDescription {
  const file = vmDescriptionPath(name);
  let text: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    try {
      const stat = fs.fstatSync(fd);
      if (!stat.isFile()) throw new InvalidArgumentError(`${file}: not a regular file`);
      if (stat.size > MAX_BYTES) throw new InvalidArgumentError(`${file}: ${stat.size} bytes, more than a VM description holds`);
      text = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no VM named ${name} (no ${file})`);
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new InvalidArgumentError(`${file}: a symbolic link`);
    throw err;
  }
  return parseVmDescription(name, text, file);
}

/** Validates a description strictly: unknown keys, relative paths and malformed numbers are errors. */
export function parseVmDescription(name: string, text: string, source = `VM description ${name}`): VmDescription {
  checkVmName(name);
  const bad = (detail: string) => new InvalidArgumentError(`${source}: ${detail}`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw bad('not a JSON object');
  const o = doc as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KEYS.has(key)) throw bad(`unknown key ${JSON.stringify(key)}`);
  if (o.version !== 1) throw bad(`version ${JSON.stringify(o.version)}: this ovmigrate reads version 1`);
  const file = (key: string, value: unknown): string => {
    if (typeof value !== 'string' || !path.isAbsolute(value) || value.includes('\0') || value.length > 4096) {
      throw bad(`${key} must be an absolute path`);
    }
    return path.normalize(value);
  };
  const optional = (key: string): string | undefined => (o[key] === undefined ? undefined : file(key, o[key]));
  const desc: VmDescription = { name, memoryFile: file('memoryFile', o.memoryFile) };
  const qmpSocket = optional('qmpSocket');
  const channelSocket = optional('channelSocket');
  if (qmpSocket) desc.qmpSocket = qmpSocket;
  if (channelSocket) desc.channelSocket = channelSocket;
  if (o.shares !== undefined) {
    if (!Array.isArray(o.shares) || o.shares.length > MAX_SHARES) throw bad(`shares must be a list of at most ${MAX_SHARES} paths`);
    desc.shares = o.shares.map((s, i) => file(`shares[${i}]`, s));
  }
  if (o.ramLayout !== undefined) desc.ramLayout = parseLayout(o.ramLayout, bad);
  return desc;
}

function parseLayout(value: unknown, bad: (detail: string) => InvalidArgumentError): MemorySegment[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SEGMENTS) {
    throw bad(`ramLayout must be a list of 1 to ${MAX_SEGMENTS} segments`);
  }
  return value.map((seg: unknown, i) => {
    if (typeof seg !== 'object' || seg === null || Array.isArray(seg)) throw bad(`ramLayout[${i}] is not an object`);
    const s = seg as Record<string, unknown>;
    for (const key of Object.keys(s)) if (!['gpa', 'size', 'fileOffset'].includes(key)) throw bad(`ramLayout[${i}]: unknown key ${JSON.stringify(key)}`);
    const num = (key: string): bigint => {
      const v = s[key];
      if (typeof v !== 'string' || !HEX.test(v)) throw bad(`ramLayout[${i}].${key} must be a hex string such as "0x1000"`);
      return BigInt(v);
    };
    const out = { gpa: num('gpa'), size: num('size'), fileOffset: num('fileOffset') };
    if (out.size === 0n) throw bad(`ramLayout[${i}].size is 0`);
    // FileMemory checks overlaps and the file's size once it opens the file.
    if (out.gpa + out.size > 1n << 64n) throw bad(`ramLayout[${i}] runs past the 64-bit address space`);
    return out;
  });
}

/** The JSON of a description, as readVmDescription reads it back. */
export function formatVmDescription(desc: VmDescription): string {
  const hex = (v: bigint) => '0x' + v.toString(16);
  return JSON.stringify({
    version: 1,
    memoryFile: desc.memoryFile,
    ...(desc.ramLayout ? { ramLayout: desc.ramLayout.map((s) => ({ gpa: hex(s.gpa), size: hex(s.size), fileOffset: hex(s.fileOffset) })) } : {}),
    ...(desc.qmpSocket ? { qmpSocket: desc.qmpSocket } : {}),
    ...(desc.channelSocket ? { channelSocket: desc.channelSocket } : {}),
    ...(desc.shares ? { shares: desc.shares } : {}),
  }, null, 2) + '\n';
}

/** Writes `$OVMIGRATE_VM_DIR/NAME.json` atomically (for whatever starts VMs). */
export function writeVmDescription(desc: VmDescription): string {
  const file = vmDescriptionPath(desc.name);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, formatVmDescription(desc), { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

export function removeVmDescription(name: string): void {
  fs.rmSync(vmDescriptionPath(name), { force: true });
}

import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { GuestKernel, hasModule, moduleLoadOrder } from './kernel.js';
import { cacheRoot } from './paths.js';
import { INIT_SCRIPT } from './init-script.js';
import { run } from './run.js';

/** What the initramfs needs to mount the host root over 9p (or virtiofs, rootShare()) under an overlay, and --virtiofs shares. */
const EARLY_MODULES = ['virtio_pci', 'virtio_console', 'overlay', 'virtiofs'];
const NINE_P_MODULES = ['9pnet_virtio', '9p'];

/** How a guest of this kernel mounts the host root: Debian's cloud kernels are built without 9p (CONFIG_NET_9P unset). */
export function rootShare(kernel: GuestKernel): '9p' | 'virtiofs' {
  return hasModule(kernel, '9pnet_virtio') ? '9p' : 'virtiofs';
}
const BUSYBOX = '/bin/busybox';

/**
 * Builds (once per kernel, init script and busybox) a gzip'ed newc initramfs:
 * a static busybox, the early modules and our /init.
 */
export async function ensureInitramfs(kernel: GuestKernel): Promise<string> {
  const modules = moduleLoadOrder(kernel, rootShare(kernel) === '9p' ? [...EARLY_MODULES, ...NINE_P_MODULES] : EARLY_MODULES);
  const key = crypto.createHash('sha256')
    .update(kernel.version).update(INIT_SCRIPT).update(modules.join(' '))
    .update(fs.readFileSync(BUSYBOX))
    .digest('hex').slice(0, 16);
  const dir = path.join(cacheRoot(), 'initramfs');
  const out = path.join(dir, `${kernel.version}-${key}.cpio.gz`);
  if (fs.existsSync(out)) return out;

  fs.mkdirSync(dir, { recursive: true });
  const stage = fs.mkdtempSync(path.join(dir, '.stage-'));
  try {
    for (const d of ['bin', 'dev', 'proc', 'sys', 'modules']) fs.mkdirSync(path.join(stage, d));
    fs.copyFileSync(BUSYBOX, path.join(stage, 'bin', 'busybox'));
    fs.chmodSync(path.join(stage, 'bin', 'busybox'), 0o755);
    // /init loads them in glob order, so the index prefix keeps dependencies first.
    for (const [i, file] of modules.entries()) {
      const name = `${String(i).padStart(2, '0')}-${path.basename(file).replace(/\.ko\.(xz|zst|gz)$/, '.ko')}`;
      await unpackModule(path.join(kernel.modules, file), path.join(stage, 'modules', name));
    }
    fs.writeFileSync(path.join(stage, 'init'), INIT_SCRIPT, { mode: 0o755 });
    const files = (await run('find', ['.', '-mindepth', '1'], { cwd: stage })).split('\n').filter(Boolean).sort();
    const cpio = await cpioNewc(stage, files);
    const tmp = `${out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, zlib.gzipSync(cpio));
    fs.renameSync(tmp, out);
    return out;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * Copies a module file, decompressed: Debian's 6.12 ships modules as .ko.xz,
 * which busybox's insmod passes to init_module as they are (6.1's are plain .ko).
 */
async function unpackModule(from: string, to: string): Promise<void> {
  const ext = /\.ko\.(xz|zst|gz)$/.exec(from)?.[1] as 'xz' | 'zst' | 'gz' | undefined;
  if (!ext) return fs.copyFileSync(from, to);
  const tool = { xz: 'xz', zst: 'zstd', gz: 'gzip' }[ext];
  const child = promisify(execFile);
  const { stdout } = await child(tool, ['-dc', from], { encoding: 'buffer', maxBuffer: 256 << 20 });
  fs.writeFileSync(to, stdout);
}

async function cpioNewc(cwd: string, files: string[]): Promise<Buffer> {
  const child = promisify(execFile);
  const p = child('cpio', ['--quiet', '-o', '-H', 'newc', '--owner=0:0'], { cwd, encoding: 'buffer', maxBuffer: 256 << 20 });
  p.child.stdin!.end(files.join('\n') + '\n');
  return (await p).stdout;
}

import path from 'node:path';

/** Host-side cache, outside git: kernels, initramfs images, per-kernel-build tables. */
export function cacheRoot(): string {
  return process.env.OVMIGRATE_CACHE ?? '/var/cache/ovmigrate';
}

export function cachePath(...parts: string[]): string {
  return path.join(cacheRoot(), ...parts);
}

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packOciImage } from './oci-image.js';

const run = promisify(execFile);

export const BUSYBOX_IMAGE = 'localhost/ovmigrate/busybox:latest';

/**
 * Writes an OCI image layout archive of a busybox-static root file system,
 * named so that `ctr image import` registers it as `name` (containerd reads
 * the io.containerd.image.name annotation of the index entry).
 */
export async function buildBusyboxImage(outFile: string, name = BUSYBOX_IMAGE, busybox = '/bin/busybox'): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-oci-'));
  try {
    const root = path.join(work, 'root');
    for (const d of ['bin', 'dev', 'etc', 'proc', 'root', 'run', 'sys', 'tmp', 'var']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.copyFileSync(busybox, path.join(root, 'bin', 'busybox'));
    fs.chmodSync(path.join(root, 'bin', 'busybox'), 0o755);
    const { stdout } = await run(busybox, ['--list']);
    for (const applet of stdout.split('\n').filter((a) => a && a !== 'busybox')) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc', 'group'), 'root:x:0:\n');
    return await packOciImage(root, outFile, name, {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], WorkingDir: '/',
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

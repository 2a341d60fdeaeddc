import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packOciImage } from './oci-image.js';

export const HOST_USR_IMAGE = 'localhost/ovmigrate/host-usr:latest';

/** A user of the image's /etc/passwd (and its group). */
export interface ImageUser {
  name: string;
  uid: number;
  gid: number;
}

/**
 * Writes an OCI image layout archive of a merged-/usr root (bin, sbin, lib
 * and lib64 link into usr, as on Debian) whose /usr is empty: a container
 * binds the guest's /usr over it (the host's, read-only), and so runs
 * Debian's programs with nothing of them in a layer. /etc holds passwd and
 * group with root and `users`.
 */
export async function buildHostUsrImage(outFile: string, users: ImageUser[], name = HOST_USR_IMAGE): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-oci-'));
  try {
    const root = path.join(work, 'root');
    for (const d of ['usr', 'dev', 'etc', 'proc', 'root', 'run', 'sys', 'tmp', 'var']) fs.mkdirSync(path.join(root, d), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    for (const l of ['bin', 'sbin', 'lib', 'lib64']) fs.symlinkSync(`usr/${l}`, path.join(root, l));
    const all = [{ name: 'root', uid: 0, gid: 0 }, ...users];
    fs.writeFileSync(path.join(root, 'etc', 'passwd'), all.map((u) => `${u.name}:x:${u.uid}:${u.gid}:${u.name}:/${u.uid ? 'tmp' : 'root'}:/bin/sh\n`).join(''));
    fs.writeFileSync(path.join(root, 'etc', 'group'), all.map((u) => `${u.name}:x:${u.gid}:\n`).join(''));
    return await packOciImage(root, outFile, name, {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], WorkingDir: '/',
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

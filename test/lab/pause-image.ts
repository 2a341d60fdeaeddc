import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { packOciImage } from './oci-image.js';
import { projectRoot } from './paths.js';

const run = promisify(execFile);

/** The CRI's sandbox image in the lab: our own pause program, no registry. */
export const PAUSE_IMAGE = 'localhost/ovmigrate/pause:latest';

/**
 * Writes an OCI image layout archive holding only /pause, compiled static
 * from test/programs/pause.c, as `ctr image import` takes it.
 */
export async function buildPauseImage(outFile: string, name = PAUSE_IMAGE): Promise<string> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-pause-'));
  try {
    const root = path.join(work, 'root');
    fs.mkdirSync(root);
    await run('gcc', ['-O2', '-static', '-s', '-o', path.join(root, 'pause'), path.join(projectRoot, 'test', 'programs', 'pause.c')]);
    return await packOciImage(root, outFile, name, { Entrypoint: ['/pause'], WorkingDir: '/' });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

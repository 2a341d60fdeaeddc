import { kindByName, makeEntry } from '../criu/index.js';
import { ImageDir } from './image-dir.js';
import { DumpProblem } from './problem.js';

/**
 * An image a dumper wants written, held until the whole tree is known to be
 * dumpable: entries of an image kind (criu/image-kinds.ts; `extra` are the
 * raw bytes after each entry, for pipes-data and sk-queues), or a raw file
 * of the image set (a tmpfs tarball, descriptors.json).
 */
export type PlannedImage =
  | { kind: string; id?: number | string; entries: Record<string, unknown>[]; extra?: Buffer[] }
  | { file: string; data: Buffer };

/** What a dumper returns: the images it plans, and what it could not dump. */
export interface Dumped {
  images?: PlannedImage[];
  problems?: DumpProblem[];
}

/** Writes planned images into an image directory. */
export function writeImages(out: ImageDir, images: PlannedImage[]): void {
  for (const img of images) {
    if ('file' in img) {
      out.file(img.file, img.data);
    } else if (img.extra) {
      const entry = kindByName(img.kind)?.entry ?? img.kind;
      const extra = img.extra;
      out.image(img.kind, img.entries.map((e, i) => makeEntry(entry, e, extra[i])), img.id);
    } else {
      out.objects(img.kind, img.entries, img.id);
    }
  }
}

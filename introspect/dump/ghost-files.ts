import { BadDataError, UnsupportedError } from '../../common/errors.js';
import { encodeImage, makeEntry } from '../criu/index.js';
import { KObject } from '../kernel/object.js';
import { deletedFileData, flatten } from '../linux/deleted-file.js';
import { FileIdentity } from '../linux/file-identity.js';
import { inodeTime } from '../linux/inode-times.js';
import { S_IFMT, S_IFREG } from '../linux/stat.js';
import { PlannedImage } from './planned-image.js';
import { DumpProblem } from './problem.js';

/** criu --ghost-limit's default (criu/include/cr_options.h DEFAULT_GHOST_LIMIT): larger deleted files are refused. */
export const GHOST_LIMIT = 1 << 20;
/** criu/files-reg.c GHOST_CHUNKS_THRESH: from this size on the contents go in chunks (data parts only). */
const GHOST_CHUNKS_THRESH = 3 * 4096;
/** images/remap-file-path.proto remap_type GHOST. */
const REMAP_GHOST = 1;

/**
 * Files open (or mapped) after their last name was unlinked, as CRIU 3.17
 * dumps them (criu/files-reg.c check_path_remap, dump_ghost_remap,
 * dump_ghost_file): the contents go to ghost-file-%x.img, one per inode
 * (ids from 1), and remap-fpath.img ties the file's entry to it; restore
 * recreates the file beside the old path, opens it and unlinks it again.
 * Only for files without links left (one with another name is opened by it,
 * linked-files.ts); refused: ghosts larger than the ghost limit and deleted
 * files that are not regular files.
 */
export class GhostFiles {
  readonly remaps: Record<string, unknown>[] = [];
  readonly images: PlannedImage[] = [];
  private readonly ids = new Map<string, number>();

  /** Remaps file entry `origId` (named `name`, " (deleted)" stripped) to its ghost; a problem when it cannot be. */
  remap(origId: number, identity: FileIdentity, dataInode: KObject, name: string, task: string, object: string | undefined): DumpProblem | undefined {
    const inode = identity.inode;
    const refuse = (detail: string) => new DumpProblem(task, 'deleted-file', `${name} (deleted) ${detail}`, { object });
    if ((identity.mode & S_IFMT) !== S_IFREG) return refuse('is not a regular file (only deleted regular files are supported)');
    const size = Number(inode.member('i_size').value());
    if (size < 0) throw new BadDataError(`${inode.path}.i_size is ${size}`);
    if (size > GHOST_LIMIT) return refuse(`is ${size} bytes, more than the ghost limit of ${GHOST_LIMIT}`);
    const key = `${identity.dev}:${identity.ino}`;
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size + 1;
      let data;
      try {
        data = deletedFileData(dataInode, size, `${name} (deleted)`);
      } catch (err) {
        // Contents not in RAM (swapped out, or never read into the page cache): this file, this task.
        if (err instanceof UnsupportedError) return refuse(`cannot be carried: ${err.message}`);
        throw err;
      }
      this.ids.set(key, id);
      this.images.push({ file: `ghost-file-${id.toString(16)}.img`, data: ghostImage(inode, identity, size, data) });
    }
    this.remaps.push({ orig_id: origId, remap_id: id, remap_type: REMAP_GHOST });
    return undefined;
  }
}

function ghostImage(inode: KObject, identity: FileIdentity, size: number, data: ReturnType<typeof deletedFileData>): Buffer {
  const time = (which: 'atime' | 'mtime') => {
    const t = inodeTime(inode, which);
    return { tv_sec: t.sec, tv_usec: Math.floor(t.nsec / 1000) };
  };
  const chunks = size >= GHOST_CHUNKS_THRESH;
  const head = makeEntry('ghost_file_entry', {
    uid: inode.member('i_uid.val').num(), gid: inode.member('i_gid.val').num(), mode: identity.mode,
    dev: identity.dev, ino: identity.ino, atim: time('atime'), mtim: time('mtime'),
    ...(chunks ? { chunks: true, size } : {}),
  });
  if (!chunks) return Buffer.concat([encodeImage('GHOST_FILE', [head]), flatten(data)]);
  return encodeImage('GHOST_FILE', [head, ...data.parts.map((p) => makeEntry('ghost_chunk_entry', { len: p.data.length, off: p.off }, p.data))]);
}

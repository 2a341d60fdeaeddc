import { PlannedImage } from '../planned-image.js';
import { TreePart } from './tree-part.js';

/** files.img with every file the fds, mappings, cwds and roots name, pipe contents and socket queues; what only all of them show (peers). */
export const filesImages: TreePart = {
  name: 'files',
  dump(ctx) {
    const files = ctx.files;
    files.finish();
    const images: PlannedImage[] = [{ kind: 'FILES', entries: files.entries }];
    if (files.pipesData.length) images.push({ kind: 'PIPES_DATA', entries: files.pipesData.map((p) => p.entry), extra: files.pipesData.map((p) => p.data) });
    if (files.fifoData.length) images.push({ kind: 'FIFO_DATA', entries: files.fifoData.map((p) => p.entry), extra: files.fifoData.map((p) => p.data) });
    if (files.ghosts.remaps.length) images.push({ kind: 'REMAP_FPATH', entries: files.ghosts.remaps }, ...files.ghosts.images);
    if (files.ttys.infos.length) images.push({ kind: 'TTY_INFO', entries: files.ttys.infos });
    if (files.skQueues.length) images.push({ kind: 'SK_QUEUES', entries: files.skQueues.map((q) => q.entry), extra: files.skQueues.map((q) => q.data) });
    for (const t of files.tcpStreams) images.push({ kind: 'TCP_STREAM', id: t.ino.toString(16), entries: [t.entry], extra: [t.data] });
    return { images, problems: files.problems };
  },
};

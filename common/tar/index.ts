/** Tar, both ways and both sides: the writer (checkpoint archives, on the host and in the guest) and the hostile-safe reader. */
export { entryComponents } from './entry-path.js';
export { ByteSource, TarReader, MAX_NAME, MAX_PAX, type EntryKind, type TarEntry } from './tar-reader.js';
export { TarWriter, type TarEntryType, type TarHeader } from './tar-writer.js';
export { ARCHIVE_FILE_MODE, CHECKPOINT_DIR, STATS_DUMP, imageFiles, writeCheckpointTar, type TopEntry } from './checkpoint-layout.js';

/** Checkpoint archives (containerd 2.x's format) read as hostile input: unpacking, metadata, mounts, the rootfs diff. */
export { readMetadata, type CheckpointConfig, type CheckpointMetadata, type CheckpointMount, type CheckpointSpec } from './metadata.js';
export { checkpointedBinds, CRI_OWN_MOUNTS, requireBindMounts } from './mounts.js';
export { RESTORE_ANNOTATION, RESTORE_ROOT, checkRestoreDir } from './restore-dir.js';
export { applyRootfsDiff, DEFAULT_DIFF_LIMITS, type DiffLimits, type DiffResult } from './rootfs-diff.js';
export {
  CHECKPOINT_DIR, DEFAULT_ARCHIVE_LIMITS, METADATA_FILES, unpackArchive, type ArchiveLimits, type UnpackedArchive,
} from './unpack-archive.js';

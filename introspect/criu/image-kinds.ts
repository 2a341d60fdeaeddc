/**
 * One table from image kind to magic, header, message type and file name,
 * as CRIU 3.17 lays its images out (criu/include/magic.h, criu/image-desc.c).
 */
export const IMG_COMMON_MAGIC = 0x54564319;
export const IMG_SERVICE_MAGIC = 0x55105940;

export interface ImageKind {
  name: string;
  magic: number;
  /** What precedes the image magic: the common magic, the service magic, or nothing (inventory). */
  header: 'common' | 'service' | 'none';
  /** protobuf message type of each entry. */
  entry: string;
  /** Message type of a single first entry that differs from the rest (pagemap's head). */
  head?: string;
  /** An entry is followed by raw bytes, their count in this field (pipes-data), or the sum of these fields (tcp-stream). */
  extraBytesField?: string | readonly string[];
  /** File name, with ID standing for a pid or object id. */
  file: string;
}

export const IMAGE_KINDS: readonly ImageKind[] = [
  { name: 'INVENTORY', magic: 0x58313116, header: 'none', entry: 'inventory_entry', file: 'inventory.img' },
  { name: 'PSTREE', magic: 0x50273030, header: 'common', entry: 'pstree_entry', file: 'pstree.img' },
  { name: 'CORE', magic: 0x55053847, header: 'common', entry: 'core_entry', file: 'core-ID.img' },
  { name: 'IDS', magic: 0x54432030, header: 'common', entry: 'task_kobj_ids_entry', file: 'ids-ID.img' },
  { name: 'MM', magic: 0x57492820, header: 'common', entry: 'mm_entry', file: 'mm-ID.img' },
  // A shared memory object's is the same image, as pagemap-shmem-SHMID.img (ID "shmem-SHMID").
  { name: 'PAGEMAP', magic: 0x56084025, header: 'common', entry: 'pagemap_entry', head: 'pagemap_head', file: 'pagemap-ID.img' },
  { name: 'MEMFD_INODE', magic: 0x48453499, header: 'common', entry: 'memfd_inode_entry', file: 'memfd.img' },
  { name: 'FS', magic: 0x51403912, header: 'common', entry: 'fs_entry', file: 'fs-ID.img' },
  { name: 'FDINFO', magic: 0x56213732, header: 'common', entry: 'fdinfo_entry', file: 'fdinfo-ID.img' },
  { name: 'FILES', magic: 0x56303138, header: 'common', entry: 'file_entry', file: 'files.img' },
  { name: 'PIPES_DATA', magic: 0x56453709, header: 'common', entry: 'pipe_data_entry', extraBytesField: 'bytes', file: 'pipes-data.img' },
  { name: 'FIFO_DATA', magic: 0x59333054, header: 'common', entry: 'pipe_data_entry', extraBytesField: 'bytes', file: 'fifo-data.img' },
  { name: 'FILE_LOCKS', magic: 0x54323616, header: 'common', entry: 'file_lock_entry', file: 'filelocks.img' },
  { name: 'REMAP_FPATH', magic: 0x59133954, header: 'common', entry: 'remap_file_path_entry', file: 'remap-fpath.img' },
  { name: 'GHOST_FILE', magic: 0x52583605, header: 'common', entry: 'ghost_chunk_entry', head: 'ghost_file_entry', extraBytesField: 'len', file: 'ghost-file-ID.img' },
  { name: 'TTY_INFO', magic: 0x59453036, header: 'common', entry: 'tty_info_entry', file: 'tty-info.img' },
  { name: 'SK_QUEUES', magic: 0x56264026, header: 'common', entry: 'sk_packet_entry', extraBytesField: 'length', file: 'sk-queues.img' },
  { name: 'TCP_STREAM', magic: 0x51465506, header: 'common', entry: 'tcp_stream_entry', extraBytesField: ['inq_len', 'outq_len'], file: 'tcp-stream-ID.img' },
  { name: 'SECCOMP', magic: 0x64413049, header: 'common', entry: 'seccomp_entry', file: 'seccomp.img' },
  { name: 'CGROUP', magic: 0x59383330, header: 'common', entry: 'cgroup_entry', file: 'cgroup.img' },
  { name: 'UTSNS', magic: 0x54473203, header: 'common', entry: 'utsns_entry', file: 'utsns-ID.img' },
  { name: 'IPCNS_VAR', magic: 0x53115007, header: 'common', entry: 'ipc_var_entry', file: 'ipcns-var-ID.img' },
  // SysV objects: sem and msg entries are followed by padded raw data (their files are written whole by namespaces/sysv-images.ts).
  { name: 'IPCNS_SHM', magic: 0x46283044, header: 'common', entry: 'ipc_shm_entry', file: 'ipcns-shm-ID.img' },
  { name: 'IPCNS_SEM', magic: 0x59573019, header: 'common', entry: 'ipc_sem_entry', file: 'ipcns-sem-ID.img' },
  { name: 'IPCNS_MSG', magic: 0x55453737, header: 'common', entry: 'ipc_msg_entry', file: 'ipcns-msg-ID.img' },
  { name: 'MNTS', magic: 0x55563928, header: 'common', entry: 'mnt_entry', file: 'mountpoints-ID.img' },
  { name: 'PIDNS', magic: 0x61157326, header: 'common', entry: 'pidns_entry', file: 'pidns-ID.img' },
  { name: 'NETNS', magic: 0x55933752, header: 'common', entry: 'netns_entry', file: 'netns-ID.img' },
  { name: 'NETDEV', magic: 0x57373951, header: 'common', entry: 'net_device_entry', file: 'netdev-ID.img' },
  { name: 'STATS', magic: 0x57093306, header: 'service', entry: 'stats_entry', file: 'stats-dump' },
];

export function kindByName(name: string): ImageKind | undefined {
  return IMAGE_KINDS.find((k) => k.name === name);
}

export function kindByMagic(magic: number): ImageKind | undefined {
  return IMAGE_KINDS.find((k) => k.magic === magic);
}

/** How many raw bytes follow an entry of a kind with extraBytesField. */
export function extraBytes(kind: ImageKind, message: object): number {
  const fields = typeof kind.extraBytesField === 'string' ? [kind.extraBytesField] : kind.extraBytesField ?? [];
  return fields.reduce((n, f) => n + Number((message as Record<string, unknown>)[f] ?? 0), 0);
}

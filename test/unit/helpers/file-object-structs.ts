import { KERNEL_STRUCTS } from './kernel-structs.js';
import { Fields, StructDecls } from './kernel-types.js';

/**
 * The members the inotify, fanotify, file-handle and file-lock readers use, as 6.1
 * lays them out (checked against its BTF); NEW_KERNEL the 6.12 changes:
 * a connector's obj is the object itself (void *: the inode, the mount's vfsmount), file locks keep their
 * common fields in file_lock_core, and the FID encoding exists.
 */
export const FILE_OBJECT_STRUCTS: StructDecls = {
  inode: [...(KERNEL_STRUCTS.inode as Fields), ['i_generation', 'u32'], ['i_fsnotify_marks', '*fsnotify_mark_connector'],
    ['i_flctx', '*file_lock_context'], ['i_dentry', 'hlist_head']],
  hlist_head: [['first', '*hlist_node']],
  dentry: [...(KERNEL_STRUCTS.dentry as Fields), ['d_u', 'dentry_u']],
  dentry_u: { fields: [['d_alias', 'hlist_node']], union: true },
  hlist_node: [['next', '*hlist_node'], ['pprev', 'ptr']],
  super_block: [...(KERNEL_STRUCTS.super_block as Fields), ['s_export_op', '*export_operations'], ['s_fsnotify_marks', '*fsnotify_mark_connector']],
  mount: [...(KERNEL_STRUCTS.mount as Fields), ['mnt_fsnotify_marks', '*fsnotify_mark_connector']],
  export_operations: [['encode_fh', 'ptr'], ['fh_to_dentry', 'ptr']],
  fsnotify_mark: [['mask', 'u32'], ['refcnt', 'u32'], ['group', '*fsnotify_group'], ['g_list', 'list_head'], ['obj_list', 'hlist_node'],
    ['connector', '*fsnotify_mark_connector'], ['ignore_mask', 'u32'], ['flags', 'u32']],
  inotify_inode_mark: [['fsn_mark', 'fsnotify_mark'], ['wd', 's32']],
  fsnotify_mark_connector: [['lock', 'u32'], ['type', 'u16'], ['flags', 'u16'], ['obj', '*hlist_node'], ['list', 'hlist_head']],
  idr: [['idr_rt', 'list_head'], ['idr_base', 'u32'], ['idr_next', 'u32']],
  inotify_group_private_data: [['idr_lock', 'u32'], ['idr', 'idr'], ['ucounts', 'ptr']],
  fanotify_group_private_data: [['merge_hash', 'ptr'], ['access_list', 'list_head'], ['flags', 'u32'], ['f_flags', 'u32'], ['max_marks', 'u32']],
  fsnotify_group: [['ops', 'ptr'], ['marks_list', 'list_head'], ['inotify_data', 'inotify_group_private_data'], ['fanotify_data', 'fanotify_group_private_data']],
  file_lock_context: [['flc_lock', 'u32'], ['flc_flock', 'list_head'], ['flc_posix', 'list_head'], ['flc_lease', 'list_head']],
  file_lock: [['fl_blocker', 'ptr'], ['fl_list', 'list_head'], ['fl_owner', 'ptr'], ['fl_flags', 'u32'], ['fl_type', 'u8'], ['fl_pid', 'u32'],
    ['fl_file', '*file'], ['fl_start', 's64'], ['fl_end', 's64']],
};

export const NEW_KERNEL: StructDecls = {
  fsnotify_mark_connector: [['lock', 'u32'], ['type', 'u8'], ['prio', 'u8'], ['flags', 'u16'], ['obj', 'ptr'], ['list', 'hlist_head']],
  file_lock_core: [['flc_blocker', 'ptr'], ['flc_list', 'list_head'], ['flc_owner', 'ptr'], ['flc_flags', 'u32'], ['flc_type', 'u8'],
    ['flc_pid', 's32'], ['flc_file', '*file']],
  file_lock: [['c', 'file_lock_core'], ['fl_start', 's64'], ['fl_end', 's64']],
  file_lease: [['c', 'file_lock_core']],
};

import { EnumDecls, StructDecls } from './kernel-types.js';

/**
 * The members of 6.1 kernel structs that the readers in introspect/linux use,
 * and nothing more. Names and types follow the kernel; order and padding do
 * not need to (readers take offsets from BTF).
 */
export const KERNEL_STRUCTS: StructDecls = {
  list_head: [['next', '*list_head'], ['prev', '*list_head']],
  hlist_bl_node: [['next', '*hlist_bl_node'], ['pprev', 'ptr']],
  rb_node: [['__rb_parent_color', 'u64'], ['rb_right', '*rb_node'], ['rb_left', '*rb_node']],
  rb_root: [['rb_node', '*rb_node']],
  kuid_t: [['val', 'u32']],
  kgid_t: [['val', 'u32']],
  timespec64: [['tv_sec', 's64'], ['tv_nsec', 's64']],

  // Tasks, pids, credentials, cgroups.
  task_struct: [
    ['__state', 'u32'], ['flags', 'u32'], ['on_cpu', 's32'], ['exit_state', 's32'], ['exit_code', 's32'], ['tasks', 'list_head'],
    ['mm', '*mm_struct'], ['pid', 's32'], ['tgid', 's32'], ['real_parent', '*task_struct'], ['thread_pid', '*pid'],
    ['thread_node', 'list_head'], ['cred', '*cred'], ['comm', 'char[16]'], ['fs', '*fs_struct'], ['files', '*files_struct'],
    ['nsproxy', '*nsproxy'], ['signal', '*signal_struct'], ['cgroups', '*css_set'], ['worker_private', 'ptr'], ['frozen', 'u8:1'],
    ['in_iowait', 'u8:1'],
  ],
  kthread: [['flags', 'u64'], ['data', 'ptr'], ['full_name', '*char']],
  worker: [['current_work', 'ptr'], ['pool', 'ptr'], ['desc', 'char[24]']],
  signal_struct: [['nr_threads', 's32'], ['thread_head', 'list_head']],
  upid: [['nr', 's32'], ['ns', 'ptr']],
  pid: [['count', 'u32'], ['level', 'u32'], ['numbers', 'upid[1]']],
  cred: [['usage', 'u32'], ['uid', 'kuid_t'], ['gid', 'kgid_t']],
  nsproxy: [['mnt_ns', '*mnt_namespace'], ['cgroup_ns', '*cgroup_namespace']],
  css_set: [['dfl_cgrp', '*cgroup']],
  cgroup: [['kn', '*kernfs_node']],
  cgroup_namespace: [['root_cset', '*css_set']],
  kernfs_elem_dir: [['subdirs', 'u64'], ['children', 'rb_root']],
  kernfs_node: [['parent', '*kernfs_node'], ['name', '*char'], ['rb', 'rb_node'], ['dir', 'kernfs_elem_dir'], ['mode', 'u16'], ['iattr', '*kernfs_iattrs']],
  kernfs_iattrs: [['ia_uid', 'kuid_t'], ['ia_gid', 'kgid_t']],
  fs_struct: [['users', 's32'], ['root', 'path']],

  // Address spaces: the maple tree of VMAs, 6.1's node shapes (MAPLE_RANGE64_SLOTS 16, MAPLE_ARANGE64_SLOTS 10).
  maple_tree: [['ma_lock', 'u32'], ['ma_flags', 'u32'], ['ma_root', 'ptr']],
  maple_range_64: [['parent', 'ptr'], ['pivot', 'u64[15]'], ['slot', 'ptr[16]']],
  maple_arange_64: [['parent', 'ptr'], ['pivot', 'u64[9]'], ['slot', 'ptr[10]'], ['gap', 'u64[10]'], ['meta', 'u8[2]']],
  mm_context_t: [['ctx_id', 'u64'], ['flags', 'u64']],
  mm_struct: [
    ['mm_mt', 'maple_tree'], ['pgd', 'ptr'], ['start_brk', 'u64'], ['brk', 'u64'], ['start_stack', 'u64'], ['context', 'mm_context_t'],
  ],
  vm_area_struct: [
    ['vm_start', 'u64'], ['vm_end', 'u64'], ['vm_mm', '*mm_struct'], ['vm_flags', 'u64'], ['vm_pgoff', 'u64'], ['vm_file', '*file'],
    ['vm_ops', 'ptr'], ['vm_private_data', 'ptr'], ['anon_name', '*anon_vma_name'],
  ],
  anon_vma_name: [['kref', 'u32'], ['name', 'char[0]']],
  vm_special_mapping: [['name', '*char']],

  // Files, the dcache and mounts.
  path: [['mnt', '*vfsmount'], ['dentry', '*dentry']],
  files_struct: [['count', 's32'], ['fdt', '*fdtable']],
  fdtable: [['max_fds', 'u32'], ['fd', 'ptr'], ['close_on_exec', 'ptr'], ['open_fds', 'ptr']],
  file: [
    ['f_path', 'path'], ['f_inode', '*inode'], ['f_op', 'ptr'], ['f_flags', 'u32'], ['f_mode', 'u32'], ['f_pos', 's64'],
    ['private_data', 'ptr'], ['f_mapping', '*address_space'],
  ],
  qstr: [['hash', 'u32'], ['len', 'u32'], ['name', '*char']],
  dentry: [
    ['d_flags', 'u32'], ['d_hash', 'hlist_bl_node'], ['d_parent', '*dentry'], ['d_name', 'qstr'], ['d_inode', '*inode'],
    ['d_op', '*dentry_operations'], ['d_sb', '*super_block'], ['d_child', 'list_head'], ['d_subdirs', 'list_head'],
  ],
  dentry_operations: [['d_revalidate', 'ptr'], ['d_dname', 'ptr']],
  inode: [
    ['i_mode', 'u16'], ['i_uid', 'kuid_t'], ['i_gid', 'kgid_t'], ['i_sb', '*super_block'], ['i_mapping', '*address_space'],
    ['i_ino', 'u64'], ['i_rdev', 'u32'], ['i_size', 's64'], ['i_mtime', 'timespec64'], ['i_link', '*char'],
    ['i_pipe', '*pipe_inode_info'], ['__i_nlink', 'u32'],
  ],
  super_block: [['s_dev', 'u32'], ['s_flags', 'u64'], ['s_type', '*file_system_type'], ['s_root', '*dentry'], ['s_fs_info', 'ptr']],
  shmem_inode_info: [['lock', 'u32'], ['seals', 'u32'], ['flags', 'u64'], ['vfs_inode', 'inode']],
  shmem_sb_info: [['max_blocks', 'u64'], ['max_inodes', 'u64'], ['uid', 'kuid_t'], ['gid', 'kgid_t'], ['mode', 'u16'], ['huge', 'u8'], ['full_inums', 'bool']],
  proc_fs_info: [['pid_gid', 'kgid_t'], ['hide_pid', 'u32'], ['pidonly', 'u32']],
  pts_mount_opts: [['setuid', 'u32:1'], ['setgid', 'u32:1'], ['uid', 'kuid_t'], ['gid', 'kgid_t'], ['mode', 'u16'], ['ptmxmode', 'u16'], ['max', 's32']],
  pts_fs_info: [['ida', 'u64'], ['mount_opts', 'pts_mount_opts']],
  cgroup_root: [['kf_root', 'ptr'], ['subsys_mask', 'u32'], ['hierarchy_id', 's32'], ['flags', 'u32']],
  file_system_type: [['name', '*char']],
  vfsmount: [['mnt_root', '*dentry'], ['mnt_sb', '*super_block'], ['mnt_flags', 's32']],
  mount: [
    ['mnt_parent', '*mount'], ['mnt_mountpoint', '*dentry'], ['mnt', 'vfsmount'], ['mnt_list', 'list_head'], ['mnt_id', 's32'],
    ['mnt_group_id', 's32'], ['mnt_master', '*mount'], ['mnt_devname', '*char'],
  ],
  mnt_namespace: [['ns', 'u64'], ['list', 'list_head']],

  // Sockets: struct sock starts with sock_common, unix_sock with sock (readers rely on both).
  socket: [['state', 'u32'], ['type', 's16'], ['flags', 'u64'], ['file', '*file'], ['sk', '*sock']],
  socket_alloc: [['socket', 'socket'], ['vfs_inode', 'inode']],
  possible_net_t: [['net', 'ptr']],
  sock_common: [
    ['skc_family', 'u16'], ['skc_state', 'u8'], ['skc_reuse', 'u8:4'], ['skc_reuseport', 'u8:1'], ['skc_flags', 'u64'], ['skc_net', 'possible_net_t'],
  ],
  atomic_t: [['counter', 's32']],
  refcount_t: [['refs', 'atomic_t']],
  sk_buff_head: [['next', '*sk_buff'], ['prev', '*sk_buff'], ['qlen', 'u32']],
  sock: [
    ['__sk_common', 'sock_common'], ['sk_receive_queue', 'sk_buff_head'], ['sk_rcvbuf', 's32'], ['sk_sndbuf', 's32'],
    ['sk_wmem_alloc', 'refcount_t'], ['sk_shutdown', 'u8'], ['sk_no_check_tx', 'u8:1'], ['sk_userlocks', 'u8:4'], ['sk_type', 'u16'],
    ['sk_max_ack_backlog', 'u32'], ['sk_priority', 'u32'], ['sk_mark', 'u32'], ['sk_rcvlowat', 's32'], ['sk_lingertime', 'u64'],
    ['sk_sndtimeo', 's64'], ['sk_rcvtimeo', 's64'], ['sk_socket', '*socket'],
  ],
  unix_address: [['refcnt', 'u32'], ['len', 's32'], ['name', 'u8[0]']],
  unix_sock: [['sk', 'sock'], ['addr', '*unix_address'], ['path', 'path'], ['peer', '*sock']],
  sk_buff: [['next', '*sk_buff'], ['prev', '*sk_buff'], ['cb', 'char[48]'], ['len', 'u32'], ['data_len', 'u32'], ['end', 'u32'], ['head', 'ptr'], ['data', 'ptr']],
  unix_skb_parms: [['pid', 'ptr'], ['uid', 'kuid_t'], ['gid', 'kgid_t'], ['fp', 'ptr'], ['consumed', 'u32']],
  bio_vec: [['bv_page', '*page'], ['bv_len', 'u32'], ['bv_offset', 'u32']],
  skb_shared_info: [['flags', 'u8'], ['nr_frags', 'u8'], ['frag_list', '*sk_buff'], ['frags', 'bio_vec[17]']],

  // The page cache, struct page and pipes.
  xarray: [['xa_lock', 'u32'], ['xa_flags', 'u32'], ['xa_head', 'ptr']],
  address_space: [['host', '*inode'], ['i_pages', 'xarray']],
  xa_node: [['shift', 'u8'], ['offset', 'u8'], ['count', 'u8'], ['nr_values', 'u8'], ['parent', 'ptr'], ['array', 'ptr'], ['private_list', 'list_head'], ['slots', 'ptr[64]']],
  page: [['flags', 'u64'], ['compound_head', 'u64'], ['mapping', 'ptr'], ['index', 'u64'], ['private', 'u64'], ['_mapcount', 's32'], ['_refcount', 's32'], ['memcg_data', 'u64']],
  pipe_buffer: [['page', '*page'], ['offset', 'u32'], ['len', 'u32'], ['ops', 'ptr'], ['flags', 'u32'], ['private', 'u64']],
  pipe_inode_info: [['head', 'u32'], ['tail', 'u32'], ['max_usage', 'u32'], ['ring_size', 'u32'], ['readers', 'u32'], ['writers', 'u32'], ['bufs', '*pipe_buffer']],
};

export const KERNEL_ENUMS: EnumDecls = {
  // include/linux/cgroup-defs.h (6.1).
  cgroup_root_flag: [
    ['CGRP_ROOT_NOPREFIX', 2], ['CGRP_ROOT_XATTR', 4], ['CGRP_ROOT_NS_DELEGATE', 8], ['CGRP_ROOT_FAVOR_DYNMODS', 16],
    ['CGRP_ROOT_CPUSET_V2_MODE', 1 << 16], ['CGRP_ROOT_MEMORY_LOCAL_EVENTS', 1 << 17], ['CGRP_ROOT_MEMORY_RECURSIVE_PROT', 1 << 18],
  ],
  // include/net/sock.h (6.1).
  sock_flags: [
    ['SOCK_DEAD', 0], ['SOCK_DONE', 1], ['SOCK_URGINLINE', 2], ['SOCK_KEEPOPEN', 3], ['SOCK_LINGER', 4], ['SOCK_DESTROY', 5],
    ['SOCK_BROADCAST', 6], ['SOCK_TIMESTAMP', 7], ['SOCK_ZAPPED', 8], ['SOCK_USE_WRITE_QUEUE', 9], ['SOCK_DBG', 10],
    ['SOCK_RCVTSTAMP', 11], ['SOCK_RCVTSTAMPNS', 12], ['SOCK_LOCALROUTE', 13],
  ],
};

import { walkRange } from '../../introspect/arch/x86-64.js';
import { BadDataError } from '../../common/errors.js';
import { FileTable } from '../../introspect/dump/files.js';
import { DumpProblem } from '../../introspect/dump/problem.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { planMemory } from '../../introspect/dump/memory.js';
import { KObject } from '../../introspect/kernel/object.js';
import { openFiles } from '../../introspect/linux/files.js';
import { otherName } from '../../introspect/linux/inode-path.js';
import { forEachVma, mapsText } from '../../introspect/linux/mm.js';
import { mounts } from '../../introspect/linux/mounts.js';
import { pageCacheEntry } from '../../introspect/linux/page-cache.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { pipeContents } from '../../introspect/linux/pipes.js';
import { tmpfsEntries } from '../../introspect/linux/tmpfs.js';
import { readUserMemory } from '../../introspect/linux/user-memory.js';
import { mmWithVmas } from '../unit/helpers/fake-maple.js';
import { cachedPage, xarray } from '../unit/helpers/fake-tmpfs.js';
import { FakeKernel } from '../unit/helpers/fake-program.js';
import { KERNEL_STRUCTS } from '../unit/helpers/kernel-structs.js';
import { fakePtySlave, ttyStructs } from '../unit/helpers/tty-structs.js';
import { ttyState } from '../../introspect/linux/tty.js';
import { Fields } from '../unit/helpers/kernel-types.js';
import { FakeVfs } from '../unit/helpers/fake-vfs.js';
import { EVENT_STRUCTS, fakeTimekeeper } from '../unit/helpers/event-structs.js';
import { FILE_OBJECT_STRUCTS } from '../unit/helpers/file-object-structs.js';
import { fileLocks } from '../../introspect/linux/file-locks.js';
import { inotifyWatches } from '../../introspect/linux/inotify.js';
import { fanotifyGroup } from '../../introspect/linux/fanotify.js';
import { fakeTaskState, taskStateStructs } from '../unit/helpers/task-state-structs.js';
import { seccompState } from '../../introspect/linux/seccomp.js';
import { processItimers } from '../../introspect/linux/itimers.js';
import { posixTimers } from '../../introspect/linux/posix-timers.js';
import { guestClocks } from '../../introspect/linux/clocks.js';
import { tcpRepairState } from '../../introspect/linux/tcp-repair.js';
import { TCP_STRUCTS, fakeTcpSocket } from '../unit/helpers/tcp-structs.js';
import { sysvMsgQueues, sysvSems, sysvShms } from '../../introspect/linux/sysv-ipc.js';
import { SYSV_STRUCTS, fakeSysv } from '../unit/helpers/sysv-ipc-structs.js';
import { NET_ENUMS, NET_STRUCTS, fakeNetNs } from '../unit/helpers/fake-net.js';
import { netDevices } from '../../introspect/linux/net-devices.js';
import { inet4Addresses, inet6Addresses } from '../../introspect/linux/net-addresses.js';
import { deviceSysctls, netnsSysctls } from '../../introspect/linux/net-sysctls.js';
import { mainRoutes4 } from '../../introspect/linux/fib4.js';
import { mainRoutes6 } from '../../introspect/linux/fib6.js';
import { rules4 } from '../../introspect/linux/fib-rules.js';
import { netfilterHooks } from '../../introspect/linux/netfilter.js';
import { ifaddrImage, route6Image, routeImage, ruleImage } from '../../introspect/dump/namespaces/net-rtnl-images.js';

const VM_READ = 0x1n, VM_WRITE = 0x2n, VM_EXEC = 0x4n, VM_SHARED = 0x8n, VM_MAYSHARE = 0x80n;
/** Where FakeKernel's heap starts (guest-physical): every object, page table and page lies above. */
const HEAP_START = 0x40_0000;

/**
 * One process of everything the dump reads, in a fake kernel: VMAs in a
 * maple tree, page tables and resident pages, a file mapping with its page
 * cache, an fd table holding a pipe and a tmpfs file, the pipe's ring, a
 * tmpfs superblock, a mount namespace, event files (eventfd,
 * signalfd, timerfd, an epoll) with the guest's timekeeper, an inotify
 * watching the tmpfs file, a POSIX lock, an flock and a lease being broken on it, a fanotify with an inode mark on it
 * and a mount mark on its mount, a pty slave, an IPC namespace's SysV objects, and an
 * established TCP socket with data queued both ways (not in the fd table: its repair reader alone). `heap` is the range of guest RAM
 * those objects take, for a fuzzer to corrupt.
 */
export function fakeProcess() {
  // The members memory planning reads besides the maps' (mmState).
  const k = new FakeKernel({ enums: NET_ENUMS, structs: { ...NET_STRUCTS, ...EVENT_STRUCTS, ...FILE_OBJECT_STRUCTS, ...taskStateStructs(), ...ttyStructs(taskStateStructs()), ...TCP_STRUCTS, ...SYSV_STRUCTS, mm_struct: [...(KERNEL_STRUCTS.mm_struct as Fields), ['flags', 'u64'], ['task_size', 'u64'], ['exe_file', '*file'], ['saved_auxv', 'u64[48]'],
    ...(['start_code', 'end_code', 'start_data', 'end_data', 'arg_start', 'arg_end', 'env_start', 'env_end'].map((n) => [n, 'u64'] as [string, string]))] } });
  const pipefifoFops = k.symbol('pipefifo_fops');
  const fops = Object.fromEntries(['eventfd_fops', 'signalfd_fops', 'timerfd_fops', 'eventpoll_fops', 'inotify_fops', 'fanotify_fops'].map((n) => [n, k.symbol(n)]));
  const shmemEncodeFh = k.symbol('shmem_encode_fh');
  const mono = 5000n * 1_000_000_000n;
  fakeTimekeeper(k, mono, 1n << 60n);
  const pipefsDname = k.symbol('pipefs_dname');
  const vfs = new FakeVfs(k);
  const pgd = k.newPgd();

  // A file mapping whose page is in the page cache, two anonymous VMAs with resident pages.
  const cached = k.allocPage();
  k.put(cached.va, Buffer.from('from the page cache'));
  k.write(cached.page, 'page', { index: 0 });
  const appInode = vfs.inode(0o100755, 1234n, { i_mapping: k.new('address_space', { 'i_pages.xa_head': cached.page }) });
  const app = vfs.file(vfs.dentry('app', vfs.path('usr/bin'), { d_inode: appInode }), vfs.rootMount, { f_mapping: k.ptr('inode', appInode, 'i_mapping') });
  // Shared memory on shm_mnt: MAP_SHARED|MAP_ANONYMOUS with three pages in its page cache and a hole, and a sealed memfd.
  const shmSb = vfs.superBlock('tmpfs', 0x5);
  k.u64(k.symbol('shm_mnt', 8), k.new('vfsmount', { mnt_sb: shmSb }));
  const shmFile = (name: string, ino: bigint, size: bigint, xaHead: bigint) => {
    const inode = k.addr('shmem_inode_info', k.new('shmem_inode_info', { seals: 1 }), 'vfs_inode');
    k.write(inode, 'inode', { i_mode: 0o100777, i_ino: ino, i_size: size, i_sb: shmSb, i_mapping: k.new('address_space', { 'i_pages.xa_head': xaHead }) });
    return vfs.file(vfs.dentry(name, vfs.rootDentry, { d_inode: inode }), vfs.rootMount, { f_mode: 3, f_mapping: k.ptr('inode', inode, 'i_mapping') });
  };
  const anonShared = shmFile('dev/zero', 4242n, 0x4000n, xarray(k, new Map([0n, 1n, 2n].map((i) => [i, cachedPage(k, i, `shared ${i}`)])), 6));
  const memfd = shmFile('memfd:fz', 4343n, 0x1000n, cachedPage(k, 0n, 'memfd 0'));
  const { mm } = mmWithVmas(k, [
    { start: 0x400000n, end: 0x401000n, values: { vm_file: app, vm_flags: VM_READ | VM_EXEC } },
    { start: 0x555000n, end: 0x558000n },
    { start: 0x600000n, end: 0x604000n, values: { vm_file: anonShared, vm_flags: VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE } },
    { start: 0x700000n, end: 0x701000n, values: { vm_file: memfd, vm_flags: VM_READ | VM_WRITE | VM_SHARED | VM_MAYSHARE } },
    { start: 0x7ffe000n, end: 0x7fff000n },
  ], { pgd: pgd.va, task_size: 0x7ffffffff000n, flags: 1, exe_file: app, start_brk: 0x555000n, brk: 0x558000n, start_stack: 0x7ffe800n });
  for (const va of [0x555000n, 0x557000n, 0x7ffe000n]) {
    const p = k.allocPage();
    k.put(p.va, Buffer.from(`page at ${va.toString(16)}`));
    k.map(pgd.phys, va, p.phys);
  }

  // A pipe with two buffers queued.
  const bufSize = k.types.sizeof('pipe_buffer');
  const bufs = k.alloc(4 * bufSize);
  ['hello ', 'world'].forEach((text, i) => {
    const page = k.allocPage();
    k.put(page.va + 100n, Buffer.from(text));
    k.write(bufs + BigInt((1 + i) * bufSize), 'pipe_buffer', { page: page.page, offset: 100, len: text.length });
  });
  const pipeInfo = k.new('pipe_inode_info', { head: 3, tail: 1, ring_size: 4, max_usage: 4, bufs });
  const pipeInode = k.new('inode', { i_mode: 0o010600, i_ino: 777, i_pipe: pipeInfo, i_sb: vfs.sb });

  // A tmpfs with one file, mounted on /run/data, and a file open on it.
  const tmpSb = vfs.superBlock('tmpfs', 0x2a);
  k.write(tmpSb, 'super_block', { s_export_op: k.new('export_operations', { encode_fh: shmemEncodeFh }) });
  const tmpPage = k.allocPage();
  k.put(tmpPage.va, Buffer.from('tmpfs bytes'));
  k.write(tmpPage.page, 'page', { index: 0 });
  const tmpFileInode = k.new('inode', { i_mode: 0o100644, i_sb: tmpSb, i_size: 11, i_mapping: k.new('address_space', { 'i_pages.xa_head': tmpPage.page }) });
  const tmpRoot = vfs.dentry('/', undefined, { d_inode: k.new('inode', { i_mode: 0o041777, i_sb: tmpSb }) });
  k.write(tmpSb, 'super_block', { s_root: tmpRoot });
  const tmpFile = vfs.dentry('note', tmpRoot, { d_inode: tmpFileInode });
  k.write(tmpFileInode, 'inode', { 'i_dentry.first': k.addr('dentry', tmpFile, 'd_u.d_alias') });
  k.link(k.addr('dentry', tmpRoot, 'd_subdirs'), [k.addr('dentry', tmpFile, 'd_child')]);
  const tmpMount = vfs.mount(tmpRoot, tmpSb, { mnt_id: 30, mnt_devname: k.cstr('tmpfs') }, { mount: vfs.rootMount, at: vfs.path('run/data') });
  // A file open after its name was unlinked, its inode still linked as /run/data/other (the newest alias).
  const linkedInode = k.new('inode', { i_mode: 0o100600, i_sb: tmpSb });
  const unlinked = vfs.dentry('orig', tmpRoot, { d_inode: linkedInode, 'd_hash.pprev': 0 });
  const otherDentry = vfs.dentry('other', tmpRoot, { d_inode: linkedInode });
  k.u64(k.addr('dentry', otherDentry, 'd_u.d_alias'), k.addr('dentry', unlinked, 'd_u.d_alias'));
  k.write(linkedInode, 'inode', { 'i_dentry.first': k.addr('dentry', otherDentry, 'd_u.d_alias') });
  const linkedOpen = vfs.file(unlinked, tmpMount);
  const ns = k.new('mnt_namespace');
  if (k.types.layout('mnt_namespace').fields.some((f) => f.name === 'list')) {
    k.link(k.addr('mnt_namespace', ns, 'list'), [vfs.rootMount, tmpMount].map((m) => k.addr('mount', m, 'mnt_list')));
  }

  // The fd table: 0 the app, 1 the pipe, 2 the tmpfs file, 3-6 an eventfd, a signalfd, a periodic timerfd expired unread, an
  // epoll watching the pipe and the eventfd.
  const pipeDentry = vfs.dentry('', vfs.rootDentry, { d_inode: pipeInode, d_op: k.new('dentry_operations', { d_dname: pipefsDname }) });
  const anonInode = vfs.inode(0o600, 1n);
  const anon = (name: string, ctx: bigint) => vfs.file(vfs.dentry(`[${name}]`, vfs.rootDentry, { d_inode: anonInode }), vfs.rootMount, { f_op: fops[`${name}_fops`], private_data: ctx, f_flags: 2 });
  const eventfd = anon('eventfd', k.new('eventfd_ctx', { count: 5 }));
  const pipeFile = k.new('file', { 'f_path.dentry': pipeDentry, 'f_path.mnt': vfs.vfsmount(vfs.rootMount), f_inode: pipeInode, f_op: pipefifoFops });
  const ep = k.new('eventpoll');
  const items = [[1, pipeFile], [3, eventfd]].map(([n, f]) => k.new('epitem', { 'ffd.fd': n, 'ffd.file': f, ep, 'event.events': 1, 'event.data': n }));
  k.write(items[0], 'epitem', { 'rbn.rb_right': items[1] });
  k.write(ep, 'eventpoll', { 'rbr.rb_root.rb_node': items[0] });
  const files = [app, pipeFile, vfs.file(tmpFile, tmpMount), eventfd, anon('signalfd', k.new('signalfd_ctx', { 'sigmask.sig[0]': ~(1n << 9n) & ((1n << 64n) - 1n) })),
    anon('timerfd', k.new('timerfd_ctx', { clockid: 1, 't.tmr.node.expires': mono - 1000n, expired: 1, ticks: 1, tintv: 300n })), anon('eventpoll', ep)];
  // 7 an inotify watching the tmpfs file (wd 1); a POSIX lock of this files table and an flock on that file (fd 2).
  const group = k.new('fsnotify_group', { 'inotify_data.idr.idr_next': 2 });
  const conn = k.new('fsnotify_mark_connector', { type: 0, obj: k.addr('inode', tmpFileInode, 'i_fsnotify_marks') });
  k.write(tmpFileInode, 'inode', { i_fsnotify_marks: conn });
  const mark = k.new('inotify_inode_mark', { 'fsn_mark.mask': 0x102, 'fsn_mark.group': group, 'fsn_mark.connector': conn, wd: 1 });
  k.link(k.addr('fsnotify_group', group, 'marks_list'), [k.addr('inotify_inode_mark', mark, 'fsn_mark.g_list')]);
  files.push(anon('inotify', group));
  // 8 pts/0, the controlling terminal of the task's session (its master outside, as `ctr run -t` leaves it).
  const pty = fakePtySlave(k, vfs, 0x1234n);
  files.push(pty.file);
  const filesStruct = k.alloc(k.types.sizeof('files_struct'), 8);
  const lockCtx = k.new('file_lock_context');
  k.write(tmpFileInode, 'inode', { i_flctx: lockCtx });
  const tmpOpen = files[2];
  const posix = k.new('file_lock', { fl_flags: 1, fl_type: 1, fl_owner: filesStruct, fl_file: tmpOpen, fl_start: 0, fl_end: 9 });
  const flock = k.new('file_lock', { fl_flags: 2, fl_type: 0, fl_owner: tmpOpen, fl_file: tmpOpen, fl_start: 0, fl_end: 0x7fffffffffffffffn });
  k.link(k.addr('file_lock_context', lockCtx, 'flc_posix'), [k.addr('file_lock', posix, 'fl_list')]);
  k.link(k.addr('file_lock_context', lockCtx, 'flc_flock'), [k.addr('file_lock', flock, 'fl_list')]);
  // A read lease of that open file, being broken (FL_LEASE|FL_UNLOCK_PENDING).
  const lease = k.new('file_lock', { fl_flags: 32 | 512, fl_type: 0, fl_owner: tmpOpen, fl_file: tmpOpen, fl_end: 0x7fffffffffffffffn });
  k.link(k.addr('file_lock_context', lockCtx, 'flc_lease'), [k.addr('file_lock', lease, 'fl_list')]);
  // 9 a fanotify group: a mark on the tmpfs file (the inotify's connector) and one on the tmpfs mount.
  const fanGroup = k.new('fsnotify_group', { 'fanotify_data.flags': 3, 'fanotify_data.f_flags': 0x8000 });
  const mountConn = k.new('fsnotify_mark_connector', { type: 1, obj: k.addr('mount', tmpMount, 'mnt_fsnotify_marks') });
  k.write(tmpMount, 'mount', { mnt_fsnotify_marks: mountConn });
  const fanMarks = [k.new('fsnotify_mark', { mask: 0x2, group: fanGroup, connector: conn }), k.new('fsnotify_mark', { mask: 0x8, group: fanGroup, connector: mountConn })];
  k.link(k.addr('fsnotify_group', fanGroup, 'marks_list'), fanMarks.map((m) => k.addr('fsnotify_mark', m, 'g_list')));
  files.push(anon('fanotify', fanGroup));
  const fd = k.alloc(64 * 8, 8);
  files.forEach((f, i) => k.u64(fd + BigInt(i * 8), f));
  const openFds = k.alloc(8, 8);
  k.put(openFds, Buffer.from([0b11111111, 0b11]));
  const fdt = k.new('fdtable', { max_fds: 64, fd, open_fds: openFds, close_on_exec: k.alloc(8, 8) });
  k.write(filesStruct, 'files_struct', { fdt });
  // An established TCP connection with data queued both ways (the --tcp-established reader).
  const tcp = fakeTcpSocket(k);
  // And one half-closed: in CLOSE_WAIT, the peer's FIN after the queued bytes (SOCK_DONE), our FIN in FIN_WAIT1's place.
  const tcpHalf = fakeTcpSocket(k);
  k.write(tcpHalf.sk, 'tcp_sock', { 'sk.__sk_common.skc_state': 8, 'sk.__sk_common.skc_flags': 1n << 1n, rcv_nxt: 1017 });
  const taskState = fakeTaskState(k, mono);
  k.write(BigInt(taskState.signal), 'signal_struct', { tty: pty.tty });
  const task = k.new('task_struct', { pid: 50, mm, files: filesStruct, nsproxy: k.new('nsproxy', { mnt_ns: ns }), ...taskState });

  // An IPC namespace with SysV segments (on the shared memory files above), a semaphore set and a queue of messages.
  const { ipcNs } = fakeSysv(k, [anonShared, memfd]);

  // A network namespace of its own: lo and a veth, addresses, both main tables, the default rules.
  const { net } = fakeNetNs(k);

  const prog = k.program();
  const heapEnd = Number(k.phys(k.alloc(0, 8)));
  return { k, prog, vfs, task, mm, pgd, ipcNs, pipeInode, tcpSk: tcp.sk, tcpHalfSk: tcpHalf.sk, tmpSb, inotify: files[7], fanotify: files[9], tty: pty.file, tmpOpen, linkedOpen, filesStruct, net, appMapping: k.ptr('inode', appInode, 'i_mapping'), heap: { at: BigInt(HEAP_START), size: heapEnd - HEAP_START } };
}

export type FakeProcess = ReturnType<typeof fakeProcess>;

/**
 * What the dump reads of a process, each reader in turn: maps, page tables
 * of every VMA, user memory, the page cache, open files, the pipe, tmpfs,
 * mounts, the dump's memory plan (VMAs, page runs, pagemap), and every fd
 * through its dumper. Returns
 * how many readers gave a result.
 */
export function readEverything(p: FakeProcess, typedOnly: (fn: () => unknown) => boolean): number {
  const prog = p.prog;
  const task = KObject.struct(prog, 'task_struct', p.task);
  const pages = new PageInfo(prog);
  const root = p.vfs.root;
  const readers: (() => unknown)[] = [
    () => mapsText(task, root),
    () => {
      const mm = task.member('mm').deref();
      const pgd = prog.pgdPhys(mm.member('pgd').value());
      for (const vma of forEachVma(mm)) {
        const start = vma.member('vm_start').value();
        const end = vma.member('vm_end').value();
        let runs = 0;
        for (const _ of walkRange(prog.mem, pgd, start, end, prog.pagingLevels, prog.smeMask)) if (++runs > 1 << 16) break;
        readUserMemory(task, start, Number(end - start > 0x3000n ? 0x3000n : end - start));
      }
    },
    () => [0n, 1n, 5n, 1023n].map((i) => pageCacheEntry(KObject.struct(prog, 'address_space', p.appMapping), i)),
    () => openFiles(task, root),
    () => pipeContents(KObject.struct(prog, 'inode', p.pipeInode), pages),
    () => tmpfsEntries(KObject.struct(prog, 'super_block', p.tmpSb)),
    () => mounts(task, root),
    () => {
      const files = new FileTable({ prog, ids: new IdAllocator(), pages, root, mntIds: false, netNsId: () => 1, vpid: () => 0 });
      return planMemory(task, task.member('mm').deref(), files, 'pid 50');
    },
    // The shared memory objects the mappings name, once each: their page caches (pagemap-shmem) and memfd inodes.
    () => {
      const files = new FileTable({ prog, ids: new IdAllocator(), pages, root, mntIds: false, netNsId: () => 1, vpid: () => 0 });
      planMemory(task, task.member('mm').deref(), files, 'pid 50');
      const problems: DumpProblem[] = [];
      const plans = files.shmem.plan(problems);
      if (problems.length) throw new BadDataError(problems[0].text);
      return [plans, files.shmem.memfdInodes()];
    },
    () => inotifyWatches(KObject.struct(prog, 'file', p.inotify)),
    () => fanotifyGroup(KObject.struct(prog, 'file', p.fanotify)),
    () => [sysvShms, sysvSems, sysvMsgQueues].map((read) => read(KObject.struct(prog, 'ipc_namespace', p.ipcNs))),
    () => fileLocks(KObject.struct(prog, 'file', p.tmpOpen), p.filesStruct),
    // The network namespace as --net-ns dumps it: links and their sysctls, addresses, routes, rules, hooks, and the ip save images.
    () => {
      const net = KObject.struct(prog, 'net', p.net);
      const devs = netDevices(net);
      return [devs.map((d) => deviceSysctls(d.dev, 250n)), netnsSysctls(net, 250n), netfilterHooks(net), routeImage(mainRoutes4(net)),
        route6Image(mainRoutes6(net)), ruleImage(rules4(net)), ifaddrImage(devs.flatMap((d) => inet4Addresses(d.dev)), devs.flatMap((d) => inet6Addresses(d.dev)), 250n)];
    },
    // Every fd through its dumper (files.img entries): the event files' readers, the epoll's rbtree, the guest's clocks,
    // the inotify's watch and the fanotify's marks (paths, file handles, the mount).
    () => new FileTable({ prog, ids: new IdAllocator(), pages, root, mntIds: false, netNsId: () => 1, vpid: () => 0 }).fdinfo(task, 'pid 50'),
    // Task state: the seccomp chain, the interval timers, the POSIX timer list.
    () => [seccompState(task), processItimers(task, guestClocks(prog)), posixTimers(task, guestClocks(prog))],
    // An established TCP socket's repair state: its receive queue, retransmit rb-tree and write queue, skb frags.
    () => tcpRepairState(KObject.struct(prog, 'sock', p.tcpSk), pages, guestClocks(prog)),
    // A half-closed one: the FIN accounting on top of the same queues.
    () => tcpRepairState(KObject.struct(prog, 'sock', p.tcpHalfSk), pages, guestClocks(prog)),
    // The pty slave's tty_struct: driver, termios, window size, session.
    () => ttyState(KObject.struct(prog, 'file', p.tty), false),
    // Another name of a file unlinked while still linked: the inode's aliases, each one's path.
    () => {
      const name = otherName(KObject.struct(prog, 'file', p.linkedOpen).member('f_path'), root);
      if (name !== '/run/data/other') throw new BadDataError(`other name ${name}`);
      return name;
    },
  ];
  return readers.filter((r) => typedOnly(r)).length;
}

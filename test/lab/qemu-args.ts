import fs from 'node:fs';
import path from 'node:path';
import { BACKEND_PORT } from '../../common/backend-api.js';
import { InvalidArgumentError, NotFoundError } from '../../common/errors.js';
import { RAM_BLOCK } from '../../introspect/vm/index.js';
import { GuestKernel } from './kernel.js';
import { GuestSpec } from './guest.js';
import { GuestPaths, projectRoot } from './paths.js';

/** Name of the lab's own control port (lab exec). */
export const CONTROL_PORT = 'ovmigrate.ctl';

/** Characters a host path may hold: QEMU's option syntax and the kernel command line take no others. */
const SAFE_PATH = /^\/[A-Za-z0-9._/+-]*$/;

export function checkPath(what: string, p: string): string {
  if (!SAFE_PATH.test(p)) throw new InvalidArgumentError(`${what} ${p}: a lab guest takes only letters, digits and ._/+- in this path`);
  return p;
}

/**
 * CPU features a kernel build is not shown under this machine's QEMU (7.2) TCG, by `--kernel` choice. Debian's
 * 6.12 cloud build panics in early boot when the host is loaded (11 of 14 boots, two at a time: a double fault or page
 * fault at kmem_cache_alloc_noprof+0xc3, just after SLUB's per-CPU `cmpxchg16b %gs:(%rsi); jne`, the oops's EFLAGS
 * holding the low half of a pointer: TCG left that instruction's flags wrong, so SLUB's freelist update goes astray).
 * It does so with `-accel tcg,thread=single` too (2 of 4); with CX16 hidden the kernel's SLUB takes its locked path instead and
 * every boot came up (0 of 8 failed). The 6.1 builds and the other 6.12 builds boot with it (compiled differently).
 */
const TCG_HIDDEN_FEATURES: Record<string, string[]> = { '6.12-cloud': ['cx16'] };

/** The QEMU command line of a lab guest (TCG: this machine's KVM cannot run a stock kernel). */
export function qemuArgs(spec: GuestSpec, paths: GuestPaths, kernel: GuestKernel, initramfs: string): string[] {
  const shares = spec.shares.map((dir, i) => ({ tag: `share${i}`, dir }));
  const virtiofs = spec.virtiofs.map((dir, i) => ({ tag: `vfs${i}`, dir, socket: paths.virtiofs(i) }));
  const append = [
    'console=ttyS0', 'loglevel=4', 'panic=-1', 'rdinit=/init',
    // TCG on a loaded host can miss the early IO-APIC timer check ("IO-APIC + timer doesn't work" panic).
    'no_timer_check',
    `ovm.name=${spec.name}`,
    ...(spec.rootShare === 'virtiofs' ? ['ovm.root=virtiofs'] : []),
    `ovm.modules=${checkPath('kernel modules', path.dirname(kernel.modules))}`,
    `ovm.project=${checkPath('the checkout', projectRoot)}`,
    `ovm.agent=${path.join(projectRoot, 'dist', 'test', 'lab', 'agent', 'main.js')}`,
    ...(shares.length ? [`ovm.shares=${shares.map((s) => `${s.tag}:${s.dir}`).join(',')}`] : []),
    ...(virtiofs.length ? [`ovm.virtiofs=${virtiofs.map((s) => `${s.tag}:${s.dir}`).join(',')}`] : []),
  ];
  return [
    // Threads named ("CPU 0/TCG"...): the kubelet bench reads the vCPU threads' CPU time.
    '-name', `ovmigrate-lab-${spec.name},debug-threads=on`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-machine', `q35,memory-backend=${RAM_BLOCK}`,
    '-accel', 'tcg,thread=multi',
    '-cpu', ['max', ...(spec.paging === 5 ? [] : ['la57=off']), ...(TCG_HIDDEN_FEATURES[spec.kernelChoice] ?? []).map((f) => `${f}=off`)].join(','),
    '-smp', String(spec.cpus),
    '-m', `${spec.memoryMiB}M`,
    '-object', `memory-backend-file,id=${RAM_BLOCK},size=${spec.memoryMiB}M,mem-path=${paths.memory},share=on`,
    '-kernel', kernel.vmlinuz, '-initrd', initramfs, '-append', append.join(' '),
    '-chardev', `file,id=console,path=${paths.console}`, '-serial', 'chardev:console',
    '-qmp', `unix:${paths.qmp},server=on,wait=off`,
    '-device', 'virtio-serial-pci,id=vser0',
    '-chardev', `socket,id=control,path=${paths.control},server=on,wait=off`,
    '-device', `virtserialport,chardev=control,name=${CONTROL_PORT}`,
    '-chardev', `socket,id=backend,path=${paths.channel},server=on,wait=off`,
    '-device', `virtserialport,chardev=backend,name=${BACKEND_PORT}`,
    ...(spec.rootShare === 'virtiofs' ? [
      '-chardev', `socket,id=hostroot,path=${paths.rootVirtiofs}`,
      '-device', 'vhost-user-fs-pci,chardev=hostroot,tag=hostroot',
    ] : [
      '-fsdev', 'local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap',
      '-device', 'virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot',
    ]),
    ...shares.flatMap((s) => [
      '-fsdev', `local,id=${s.tag},path=${s.dir},security_model=none,multidevs=remap`,
      '-device', `virtio-9p-pci,fsdev=${s.tag},mount_tag=${s.tag}`,
    ]),
    // vhost-user needs the guest's RAM shared with virtiofsd: the memory backend above is share=on.
    ...virtiofs.flatMap((s) => [
      '-chardev', `socket,id=${s.tag},path=${s.socket}`,
      '-device', `vhost-user-fs-pci,chardev=${s.tag},tag=${s.tag}`,
    ]),
  ];
}

/**
 * A virtiofsd serving `dir` on `socket` (the Rust one of Debian's virtiofsd package, else QEMU's own), uncached:
 * the host changes files under the guest. The namespace sandbox, not chroot: virtiofsd answers a FUSE `..`
 * lookup, and under chroot one from a directory the backend moved out of the share climbs to the host's `/`.
 */
export function virtiofsdCommand(dir: string, socket: string): { command: string; args: string[] } {
  if (fs.existsSync(RUST_VIRTIOFSD)) {
    return { command: RUST_VIRTIOFSD, args: ['--socket-path', socket, '--shared-dir', dir, '--cache', 'never', '--sandbox', 'namespace'] };
  }
  if (fs.existsSync(QEMU_VIRTIOFSD)) {
    return { command: QEMU_VIRTIOFSD, args: [`--socket-path=${socket}`, '-o', `source=${dir}`, '-o', 'cache=none', '-o', 'sandbox=namespace'] };
  }
  throw new NotFoundError(`no virtiofsd (${RUST_VIRTIOFSD} from Debian's virtiofsd package, or ${QEMU_VIRTIOFSD}) for --virtiofs`);
}

/**
 * The virtiofsd of the host root for kernels without 9p: cached (the root
 * changes little under the guest, as with 9p's cache=loose), read-only where
 * virtiofsd can say so (the guest mounts it ro in any case), and chroot: the
 * namespace sandbox cannot pivot_root into `/` itself, and there is nothing
 * above `/` to climb to.
 */
export function rootVirtiofsdCommand(socket: string): { command: string; args: string[] } {
  if (fs.existsSync(RUST_VIRTIOFSD)) {
    return { command: RUST_VIRTIOFSD, args: ['--socket-path', socket, '--shared-dir', '/', '--cache', 'auto', '--sandbox', 'chroot', '--readonly'] };
  }
  if (fs.existsSync(QEMU_VIRTIOFSD)) {
    return { command: QEMU_VIRTIOFSD, args: [`--socket-path=${socket}`, '-o', 'source=/', '-o', 'cache=auto', '-o', 'sandbox=chroot'] };
  }
  throw new NotFoundError(`no virtiofsd (${RUST_VIRTIOFSD} from Debian's virtiofsd package, or ${QEMU_VIRTIOFSD}) for a kernel without 9p`);
}

const RUST_VIRTIOFSD = '/usr/libexec/virtiofsd';
const QEMU_VIRTIOFSD = '/usr/lib/qemu/virtiofsd';

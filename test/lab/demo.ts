import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../../common/errors.js';
import { BUSYBOX_IMAGE, buildBusyboxImage } from './busybox-image.js';
import { exportGuestImage, guestScript, startGuestContainerd } from './containerd.js';
import { down, up } from './lab.js';
import { projectRoot } from './paths.js';

/** The product's own CLI: the lab only started the guests, the VM descriptions tell ovmigrate where they are. */
const CLI = path.join(projectRoot, 'dist', 'introspect', 'cli', 'main.js');

function say(line: string): void {
  process.stdout.write(`\n== ${line}\n`);
}

/** Runs the ovmigrate CLI as a user would, its output on ours. */
function ovmigrate(args: string[]): Promise<void> {
  process.stdout.write(`$ ovmigrate ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new ExternalError(`ovmigrate ${args[0]} exited ${code}`))));
  });
}

async function inGuest(guest: string, script: string): Promise<string> {
  process.stdout.write(`[${guest}]$ ${script.trim().split('\n').join('; ')}\n`);
  return guestScript(guest, script, 120_000);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `ovmigrate serve` for a guest, its log lines shown prefixed. */
function serve(guest: string, images: string): ChildProcess {
  process.stdout.write(`$ ovmigrate serve --vm ${guest} --images ${images} &\n`);
  const child = spawn(process.execPath, [CLI, 'serve', '--vm', guest, '--images', images], { stdio: ['ignore', 'pipe', 'pipe'] });
  const show = (d: Buffer) => process.stdout.write(d.toString().split('\n').filter(Boolean).map((l) => `  [serve] ${l}\n`).join(''));
  child.stdout!.on('data', show);
  child.stderr!.on('data', show);
  return child;
}

/**
 * `make demo`: a container moves between two VMs through containerd, and
 * CRIU never runs in the first one. containerd in guest A runs a counter
 * container with our shim; `ctr containers checkpoint` there is done by
 * `ovmigrate serve` on the host from A's RAM; the checkpoint image goes to
 * guest B, where `ctr containers restore` brings the container back and it
 * counts on.
 */
export async function demo(): Promise<void> {
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-demo-');
  // The backend's image directory is a share of its own; its staging directory beside it stays out of the guest's sight.
  const imagesParent = fs.mkdtempSync('/var/tmp/ovmigrate-demo-images-');
  const images = path.join(imagesParent, 'images');
  fs.mkdirSync(images);
  const [a, b] = ['demo-a', 'demo-b'];
  let backend: ChildProcess | undefined;
  try {
    say(`booting guests ${a} and ${b} (QEMU TCG), sharing ${share}; ${a} also shares ${images} with the host's backend`);
    await Promise.all([up(a, { shares: [share, images] }), up(b, { shares: [share] }), buildBusyboxImage(path.join(share, 'busybox.tar'))]);
    say(`${a}'s kernel, identified by the host from its RAM alone`);
    await ovmigrate(['info', '--vm', a]);
    say(`the backend for ${a} on the host, on ${a}'s channel`);
    backend = serve(a, images);
    say('containerd in both guests, with containerd-shim-ovmigrate-v1 on its PATH');
    await Promise.all([startGuestContainerd(a), startGuestContainerd(b)]);
    await Promise.all([a, b].map((g) => inGuest(g, `ctr image import ${share}/busybox.tar >/dev/null`)));
    await inGuest(a, `mkdir -p /etc/ovmigrate && echo '{"images": "${images}"}' > /etc/ovmigrate/shim.json`);
    say(`${a}: a counter container, run by our shim`);
    await inGuest(a, `ctr run -d --runtime io.containerd.ovmigrate.v1 ${BUSYBOX_IMAGE} counter sh -c 'i=0; while :; do i=$((i+1)); echo $i >> /count; sleep 0.5; done'`);
    await sleep(4000);
    process.stdout.write(await inGuest(a, 'ctr task ls; ctr task exec --exec-id t1 counter tail -n 2 /count'));
    say(`checkpoint in ${a} through containerd: the shim pauses the container, the host dumps it from ${a}'s RAM (CRIU does not run in ${a})`);
    const t0 = Date.now();
    await inGuest(a, 'ctr containers checkpoint --rw --task counter checkpoint/counter:demo');
    process.stdout.write(`(${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    process.stdout.write(await inGuest(a, 'grep "checkpointed out of the VM" /run/containerd.log | tail -1; ctr image ls -q | grep checkpoint'));
    const last = (await inGuest(a, 'ctr task exec --exec-id t2 counter tail -n 1 /count')).trim();
    await inGuest(a, 'ctr task kill -s SIGKILL counter');
    say(`the checkpoint image goes from ${a}'s containerd to ${b}'s (ctr content get, ctr image import)`);
    await exportGuestImage(a, 'checkpoint/counter:demo', path.join(share, 'export'), path.join(share, 'counter.tar'));
    await inGuest(b, `ctr image import --no-unpack --all-platforms ${share}/counter.tar`);
    say(`restore in ${b} through containerd (ctr containers restore --rw --live)`);
    await inGuest(b, 'ctr containers restore --rw --live counter checkpoint/counter:demo </dev/null >/tmp/restore.out 2>&1; sleep 3');
    process.stdout.write(await inGuest(b, 'ctr task ls'));
    process.stdout.write((await inGuest(b, 'ctr task exec --exec-id t1 counter tail -n 8 /count')).trim().split('\n').join(' ') + '\n');
    say(`the counter went on in ${b} from where ${a} left it (${a} had counted to ${last} a moment before the kill)`);
  } finally {
    backend?.kill('SIGKILL');
    await Promise.allSettled([down(a), down(b)]);
    fs.rmSync(share, { recursive: true, force: true });
    fs.rmSync(imagesParent, { recursive: true, force: true });
  }
}

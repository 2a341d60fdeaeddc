import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ExternalError } from '../../common/errors.js';
import { execCapture } from './exec-client.js';
import { down, up } from './lab.js';

const CLI = path.resolve(__dirname, '..', 'cli', 'main.js');

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
  const r = await execCapture(guest, ['sh', '-c', script], { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new ExternalError(`in ${guest}: exit ${r.exitCode}: ${r.stderr.trim()}`);
  return r.stdout;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `make demo`: a process moves between two VMs without CRIU running in the
 * first one. Guest A runs a counter; the host reads it out of A's RAM into
 * CRIU images on storage both guests share; stock CRIU restores it in guest
 * B, where it counts on.
 */
export async function demo(): Promise<void> {
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-demo-');
  const log = path.join(share, 'counter.log');
  const [a, b] = ['demo-a', 'demo-b'];
  try {
    say(`booting guests ${a} and ${b} (QEMU TCG), sharing ${share}`);
    await Promise.all([up(a, { shares: [share] }), up(b, { shares: [share] })]);
    say(`${a}'s kernel, identified by the host from its RAM alone`);
    await ovmigrate(['info', '--vm', a]);
    say(`${a}: a shell loop counting into ${log}, in cgroup /demo`);
    await inGuest(a, `echo 30000 > /proc/sys/kernel/ns_last_pid; mkdir -p /sys/fs/cgroup/demo
      setsid sh -c 'echo $$ > /sys/fs/cgroup/demo/cgroup.procs; i=0; while :; do i=$((i+1)); echo "$(hostname) $i"; sleep 0.5; done' >> ${log} 2>&1 </dev/null &`);
    await sleep(4000);
    process.stdout.write(fs.readFileSync(log, 'utf8').trim().split('\n').slice(-3).join('\n') + '\n');
    say(`the host sees it in ${a}'s RAM (ovmigrate ps, the processes of cgroup /demo)`);
    process.stdout.write('$ ovmigrate ps --vm demo-a | grep /demo\n');
    const ps = execFileSync(process.execPath, [CLI, 'ps', '--vm', a], { encoding: 'utf8' }).split('\n');
    process.stdout.write([ps[0], ...ps.filter((l) => l.endsWith('\t/demo'))].join('\n') + '\n');
    say(`checkpoint from outside ${a}: CRIU images written by the host (no CRIU runs in ${a}); the dump kills it there`);
    await ovmigrate(['dump', '--vm', a, '--cgroup', '/demo', '-D', path.join(share, 'images')]);
    const before = fs.readFileSync(log, 'utf8').trim().split('\n').at(-1);
    say(`restore with stock CRIU in ${b}`);
    await inGuest(b, `criu restore -D ${share}/images -d -o restore.log`);
    await sleep(3000);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    const at = lines.lastIndexOf(before!);
    process.stdout.write(lines.slice(Math.max(0, at - 2), at + 6).join('\n') + '\n');
    say(`the counter went on in ${b} from where ${a} left it`);
  } finally {
    await Promise.allSettled([down(a), down(b)]);
    fs.rmSync(share, { recursive: true, force: true });
  }
}

/**
 * `make bench`, CRI forwarding: ovmigrate-cri's CPU per forwarded call,
 * grpc-js's path (a Server and a Client, raw bytes: grpcjs-forward-main.ts,
 * the proxy before grpc-wire.ts) against the HTTP/2 stream-to-stream path
 * (shim/cri/main.js), in the same run, in front of one real containerd 2.x
 * of the component cache on this host (its CRI with nothing configured: no
 * pod is run, Version and ListContainers need none). Prints CPU per call of
 * each proxy and of containerd, and the ratio.
 *   OVMIGRATE_CRI_CALLS=N (default 2000, half Version, half ListContainers)
 */
import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CriClient } from '../helpers/cri-client.js';
import { cpuSeconds } from '../helpers/cri-poll.js';
import { componentBinary } from '../lab/components/index.js';

const CALLS = Number(process.env.OVMIGRATE_CRI_CALLS ?? 2000);
const PROF = process.env.OVMIGRATE_CRI_CPU_PROF;
/** Each proxy's argv for (listen, containerd); OVMIGRATE_CRI_CPU_PROF=DIR writes a V8 CPU profile of ours there. */
const PROXIES: [string, (listen: string, containerd: string, tmp: string) => string[]][] = [
  ['grpc-js Server + Client', (listen, containerd) => [path.resolve(__dirname, 'grpcjs-forward-main.js'), listen, containerd]],
  ['node:http2 stream to stream', (listen, containerd, tmp) => [...(PROF ? ['--cpu-prof', '--cpu-prof-dir', PROF] : []),
    path.resolve(__dirname, '..', '..', 'shim', 'cri', 'main.js'), '--log-level', 'warn', '--listen', listen, '--containerd', containerd, '--checkpoint-notes', path.join(tmp, 'notes')]],
];

async function untilSocket(file: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 300 && !fs.existsSync(file); i++) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited ${child.exitCode}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** CALLS calls through `socket`, after a warm-up; CPU seconds of `pids` meanwhile. */
async function measure(socket: string, pids: number[]): Promise<number[]> {
  const client = new CriClient(socket);
  try {
    for (let i = 0; i < 100; i++) await client.call(i % 2 ? 'Version' : 'ListContainers', {});
    const before = pids.map(cpuSeconds);
    for (let i = 0; i < CALLS; i++) await client.call(i % 2 ? 'Version' : 'ListContainers', {});
    return pids.map((p, i) => cpuSeconds(p) - before[i]);
  } finally {
    client.close();
  }
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-cri-forward-'));
  const state = fs.mkdtempSync('/run/ovm-cri-forward-');
  const address = path.join(tmp, 'containerd.sock');
  fs.writeFileSync(path.join(tmp, 'config.toml'), ['version = 3', `root = "${tmp}/root"`, `state = "${state}"`, '[grpc]', `  address = "${address}"`, ''].join('\n'));
  const containerd = spawn(componentBinary('containerd'), ['--config', path.join(tmp, 'config.toml')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(tmp, 'containerd.log'), 'a')] });
  const children: ChildProcess[] = [containerd];
  try {
    await untilSocket(address, containerd);
    const direct = (await measure(address, [containerd.pid!]))[0];
    const ms = (s: number) => ((s * 1000) / CALLS).toFixed(3);
    const results: { name: string; proxy: number; containerd: number }[] = [];
    for (const [name, argv] of PROXIES) {
      const socket = path.join(tmp, `${results.length}.sock`);
      const child = spawn(process.execPath, argv(socket, address, tmp), { stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
      await untilSocket(socket, child);
      const [proxy, ctrd] = await measure(socket, [child.pid!, containerd.pid!]);
      results.push({ name, proxy, containerd: ctrd });
      await stop(child);
    }
    console.log(`ovmigrate-cri forwarding ${CALLS} unary calls (Version, ListContainers) to containerd ${path.basename(path.dirname(path.dirname(componentBinary('containerd'))))}:`);
    console.log(`  containerd alone, called directly: ${ms(direct)} ms of CPU a call`);
    for (const r of results) console.log(`  ${r.name.padEnd(28)} proxy ${ms(r.proxy)} ms a call, containerd ${ms(r.containerd)} ms a call`);
    const [before, after] = results;
    console.log(`  ratio, proxy CPU a call, grpc-js / http2: ${(before.proxy / Math.max(after.proxy, 0.01)).toFixed(2)}`);
  } finally {
    for (const c of children.reverse()) await stop(c);
    fs.rmSync(tmp, { recursive: true, force: true });
    spawn('umount', ['-R', state], { stdio: 'ignore' }).on('exit', () => fs.rmSync(state, { recursive: true, force: true }));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

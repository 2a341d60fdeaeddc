import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, encodeImage } from '../../introspect/criu/index.js';
import { cli, cliOk, requirePrograms } from '../helpers/cli.js';
import { assertSameDump } from '../helpers/criu-images.js';
import { UpResult } from '../helpers/lab-guests.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');

interface Workload {
  name: string;
  args: (share: string) => string;
}

const WORKLOADS: Workload[] = [
  { name: 'counter', args: (s) => `${s}/counter.data` },
  { name: 'tree', args: () => '' },
  { name: 'threads', args: () => '' },
  { name: 'ipc', args: () => '' },
  { name: 'avx', args: () => '' },
  { name: 'shmem', args: () => '/dev/shm/ovm-shmem' },
];

// Every case on each kernel: the 6.12 guests (kernel differences read from BTF) are their own pair.
for (const kernel of POOL_KERNELS) {
  describe(`ovmigrate dump: CRIU images from guest RAM, restored by stock CRIU in another guest${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`dump${kernelTag(kernel)}`, [{ slot: 'a', kernel }, { slot: 'b', kernel }]);
    const sh = suite.sh;
    const cg = suite.cgroup;
    let share: string;
    let a: UpResult;
    let b: UpResult;
    const pids = new Map<string, number>();

    /** Programs run in guest A, each in a cgroup of its own, cwd and NAME.log in the share. */
    const start = (name: string, command: string) => suite.startProgram(a.name, name, command);
    const freeze = (name: string, on: 0 | 1) => suite.freeze(a.name, name, on);
    const log = (name: string) => fs.readFileSync(path.join(share, `${name}.log`), 'utf8');

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'gcc', 'criu', 'crit']);
      share = suite.dir;
      for (const w of WORKLOADS) execFileSync('gcc', ['-O1', '-static', '-pthread', '-o', path.join(share, w.name), path.join(PROGRAMS, `${w.name}.c`)]);
      [a, b] = await suite.guests();
      // Pids far above guest B's own, so the restored tree finds its pids free there.
      await sh(a.name, 'echo 30000 > /proc/sys/kernel/ns_last_pid');
      for (const w of WORKLOADS) pids.set(w.name, await start(w.name, `${share}/${w.name} ${w.args(share)}`));
      // A blocked signal left pending: it must still be pending after the restore.
      await sh(a.name, `kill -USR2 ${pids.get('counter')}`);
    });
    after(async () => {
      if (a) await sh(a.name, 'swapoff /dev/zram0 2>/dev/null; true');
      await suite.leave();
    });

    for (const w of WORKLOADS) {
      it(`${w.name}: images equal CRIU's own dump of the same frozen tree, field by field`, async () => {
        const pid = pids.get(w.name)!;
        await freeze(w.name, 1);
        const ours = path.join(share, `${w.name}-ours`);
        const theirs = path.join(share, `${w.name}-criu`);
        // ovmigrate first: CRIU's parasite runs code in the tasks, which ovmigrate never does.
        await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running']);
        await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --freeze-cgroup /sys/fs/cgroup${cg}/${w.name} -o dump.log` +
          ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
        assertSameDump(ours, theirs);
      });
    }

    it('its images re-encode byte for byte, decoded by crit and by our own reader', () => {
      const dir = path.join(share, 'ipc-ours');
      const names = fs.readdirSync(dir).filter((f) => !f.startsWith('pages-'));
      assert.ok(names.includes('sk-queues.img') && names.includes('pipes-data.img'));
      // The shared memory images too (memfd.img, pagemap-shmem-*.img).
      const shmem = fs.readdirSync(path.join(share, 'shmem-ours')).filter((f) => f === 'memfd.img' || f.startsWith('pagemap-shmem-'));
      assert.ok(shmem.length >= 3, `memfd.img and a pagemap-shmem image each for the anonymous memory and the memfd: ${shmem}`);
      for (const name of [...names, ...shmem.map((f) => path.join('..', 'shmem-ours', f))]) {
        const raw = fs.readFileSync(path.join(dir, name));
        const image = decodeImage(raw, name);
        assert.ok(encodeImage(image.kind.name, image.entries).equals(raw), `${name} through our reader`);
        const json = execFileSync('crit', ['decode', '-i', path.join(dir, name)]);
        const again = execFileSync('crit', ['encode'], { input: json });
        assert.ok(again.equals(raw), `${name} through crit`);
      }
    });

    it('counter: killed after the dump, restored in guest B: counter, memory, file offset, cwd, handler, mask and pending signal continue', async () => {
      const pid = pids.get('counter')!;
      const dir = path.join(share, 'counter-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      assert.equal((await sh(a.name, `kill -0 ${pid} 2>/dev/null && echo alive || echo gone`)).trim(), 'gone', 'the dump kills the tree');
      const before = log('counter');
      const lastTick = Math.max(...[...before.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1])));
      const sum = /^start \d+ ([0-9a-f]+)$/m.exec(before)![1];
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2; kill -USR1 ${pid}; sleep 1`, 120);
      const after = log('counter').slice(before.length);
      const ticks = [...after.matchAll(/^tick (\d+)$/gm)].map((m) => Number(m[1]));
      assert.ok(ticks.length > 3 && ticks[0] === lastTick + 1, `ticks go on from ${lastTick}: ${ticks.slice(0, 3).join(' ')}`);
      const usr1 = /^usr1 \d+ sum ([0-9a-f]+) blocked ([0-9a-f]+) pending ([0-9a-f]+) cwd (.*)$/m.exec(after);
      assert.ok(usr1, `the SIGUSR1 handler ran in guest B:\n${after.slice(0, 300)}`);
      assert.equal(usr1[1], sum, 'the 32 MiB buffer has the same checksum');
      assert.equal(BigInt('0x' + usr1[2]) & (1n << 11n), 1n << 11n, 'SIGUSR2 is still blocked');
      assert.equal(BigInt('0x' + usr1[3]) & (1n << 11n), 1n << 11n, 'the SIGUSR2 sent before the dump is still pending');
      assert.equal(usr1[4], `${share}/cwd-counter`);
      const data = fs.readFileSync(path.join(share, 'counter.data'), 'utf8');
      const records = data.split('\n').slice(0, -1);
      assert.deepEqual(records, records.map((_, i) => String(i).padStart(8, '0')), 'records continue at the file offset, none lost or doubled');
      await sh(b.name, `kill -9 ${pid}`);
    });

    it('tree: every process continues in guest B with its pid and parent', async () => {
      const root = pids.get('tree')!;
      const dir = path.join(share, 'tree-final');
      // By cgroup this time: the whole cgroup is one tree.
      await cliOk(['dump', '--vm', a.name, '--cgroup', `${cg}/tree`, '-D', dir]);
      const before = log('tree');
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2`, 120);
      const after = log('tree').slice(before.length);
      for (const name of ['root', 'a', 'b', 'c']) {
        const last = (text: string) => [...text.matchAll(new RegExp(`^tree ${name} (\\d+) (\\d+) (\\d+)$`, 'gm'))].map((m) => m.slice(1).map(Number));
        const was = last(before).at(-1)!;
        const now = last(after);
        assert.ok(now.length > 3, `${name} runs in guest B`);
        assert.equal(now[0][0], was[0], `${name} keeps pid ${was[0]}`);
        assert.equal(now[0][2], was[2] + 1, `${name} counts on from ${was[2]}`);
        if (name !== 'root') assert.equal(now[0][1], was[1], `${name} keeps its parent`);
      }
      await sh(b.name, `kill -9 -${root}`);
    });

    it('threads: all four threads continue in guest B', async () => {
      const dir = path.join(share, 'threads-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pids.get('threads')), '-D', dir]);
      const before = log('threads');
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2`, 120);
      const after = log('threads').slice(before.length);
      for (let i = 0; i < 4; i++) {
        const counts = (text: string) => [...text.matchAll(new RegExp(`^thread ${i} \\d+ (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
        assert.equal(counts(after)[0], counts(before).at(-1)! + 1, `thread ${i} counts on`);
        assert.ok(counts(after).length > 3);
      }
      await sh(b.name, `kill -9 ${pids.get('threads')}`);
    });

    it('ipc: what was in flight in the pipe and the unix socket pair arrives in guest B, in order', async () => {
      const dir = path.join(share, 'ipc-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pids.get('ipc')), '-D', dir]);
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 3`, 120);
      for (const kind of ['pipe', 'sock']) {
        const seq = [...log('ipc').matchAll(new RegExp(`^${kind} (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
        assert.ok(seq.length > 20);
        assert.deepEqual(seq, seq.map((_, i) => i), `${kind} records arrive one by one, none lost across the restore`);
      }
      assert.ok(fs.readFileSync(path.join(dir, 'pipes-data.img')).length > 100, 'the pipe held data at the dump');
      await sh(b.name, `kill -9 -${pids.get('ipc')}`);
    });

    it('avx: ymm and callee-saved registers hold their values in guest B', async () => {
      const dir = path.join(share, 'avx-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pids.get('avx')), '-D', dir]);
      const before = log('avx').length;
      await sh(b.name, `criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 2`, 120);
      const after = log('avx').slice(before);
      assert.match(after, /^\.{5,}$/, 'the register check passes after every sleep in guest B');
      await sh(b.name, `kill -9 ${pids.get('avx')}`);
    });

    it('shmem: restored in guest B, the shared contents hold and the child still writes where the parent reads', async () => {
      const pid = pids.get('shmem')!;
      const dir = path.join(share, 'shmem-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      const before = log('shmem');
      const gens = (text: string) => [...text.matchAll(/^see (\d+) (\d+) (\d+) (\d+)$/gm)].map((m) => m.slice(1).map(Number));
      const was = gens(before).at(-1)!;
      // The /dev/shm file is a file on guest A's tmpfs: carried over to guest B as a runtime would carry /dev/shm.
      await sh(a.name, `cp /dev/shm/ovm-shmem ${share}/ovm-shmem.copy`);
      await sh(b.name, `cp ${share}/ovm-shmem.copy /dev/shm/ovm-shmem && criu restore -D ${dir} -d -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 3`, 120);
      const after = log('shmem').slice(before.length);
      const now = gens(after);
      assert.ok(now.length > 3, `the parent runs in guest B:\n${after.slice(0, 300)}`);
      assert.doesNotMatch(after, /^contents bad$/m, 'the contents filled before the fork are all there (anonymous, memfd, /dev/shm; memfd seals)');
      assert.match(after, /^contents ok$/m);
      for (let i = 0; i < 4; i++) assert.ok(now[0][i] >= was[i], `region ${i} restored at generation ${now[0][i]} (was ${was[i]})`);
      const last = now.at(-1)!;
      assert.ok(last.every((g, i) => g > now[0][i]), `the child's writes reach the parent in every region (anonymous, memfd mapping, memfd fd, /dev/shm): ${now[0]} -> ${last}`);
      await sh(b.name, `kill -9 -${pid}`);
    });

    it('refuses what it cannot dump, before writing anything, and leaves the tree running', async () => {
      // An established TCP connection over loopback.
      fs.writeFileSync(path.join(share, 'tcp.py'), [
        'import socket, time',
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()",
        'c = socket.create_connection(s.getsockname()); a, _ = s.accept()',
        'while True: print("tick", flush=True); time.sleep(0.2)',
      ].join('\n') + '\n');
      const tcp = await start('tcp', `python3 ${share}/tcp.py`);
      const dir = path.join(share, 'tcp-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(tcp), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${tcp} \\(python3\\) fd \\d+: TCP socket in state ESTABLISHED`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      assert.deepEqual(fs.readdirSync(share).filter((f) => f.includes('.tcp-img.')), [], 'no staging directory left');
      const events = await sh(a.name, `cat /sys/fs/cgroup${cg}/tcp/cgroup.events`);
      assert.match(events, /frozen 0/, 'thawed again');
      const n = log('tcp').length;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.ok(log('tcp').length > n, 'still running');
    });

    it('refuses unfrozen tasks when it cannot freeze them, and an unknown pid', async () => {
      const pid = await start('loose', 'sh -c "while true; do echo x; sleep 0.2; done"');
      const dir = path.join(share, 'loose-img');
      const r = await cli(['dump', '--mem', a.memoryFile, '--qmp', a.qmpSocket, '--pid', String(pid), '-D', dir, '--leave-running']);
      assert.equal(r.code, 1);
      // The loop's shell, or a child it has just forked for sleep (still named sh until it execs).
      assert.match(r.stderr, /pid \d+ \((sh|sleep)\) is not frozen/);
      assert.ok(!fs.existsSync(dir));
      const noKill = await cli(['dump', '--mem', a.memoryFile, '--pid', String(pid), '-D', dir]);
      assert.equal(noKill.code, 2, 'kill without a way into the guest is a usage error');
      assert.match(noKill.stderr, /--leave-running/);
      const gone = await cli(['dump', '--vm', a.name, '--pid', '999999', '-D', dir]);
      assert.equal(gone.code, 1);
      assert.match(gone.stderr, /no task with pid 999999/);
    });

    it('refuses a tree with swapped-out pages, naming the address', async () => {
      // Swap on zram, and a cgroup memory limit below what the counter's 32 MiB buffer needs: the kernel swaps it out.
      await sh(a.name, `modprobe zram && echo 128M > /sys/block/zram0/disksize && mkswap /dev/zram0 >/dev/null && swapon /dev/zram0
        echo +memory > /sys/fs/cgroup/cgroup.subtree_control; echo +memory > /sys/fs/cgroup${cg}/cgroup.subtree_control`);
      const pid = await start('swap', `${share}/counter ${share}/swap.data`);
      await sh(a.name, `echo 4M > /sys/fs/cgroup${cg}/swap/memory.max
        for i in $(seq 100); do [ $(awk '/^anon /{print $2}' /sys/fs/cgroup${cg}/swap/memory.stat) -lt 8000000 ] && break; sleep 0.2; done`);
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', path.join(share, 'swap-img')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(counter\\): memory at 0x[0-9a-f]+ is swapped out`));
      assert.ok(!fs.existsSync(path.join(share, 'swap-img')));
      assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/swap/cgroup.events`), /frozen 0/);
      await sh(a.name, `kill -9 ${pid}; swapoff /dev/zram0`);
    });

    it('a full target disk fails cleanly: nothing half-written, the tree thawed', async function () {
      const pid = await start('full', `${share}/counter ${share}/full.data`);
      const small = path.join(share, 'small');
      fs.mkdirSync(small);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', small]);
      try {
        const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', path.join(small, 'img')]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /ENOSPC|no space/i);
        assert.deepEqual(fs.readdirSync(small), [], 'nothing left on the full disk');
      } finally {
        execFileSync('umount', [small]);
      }
      assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/full/cgroup.events`), /frozen 0/);
      assert.match((await sh(a.name, `kill -0 ${pid} && echo alive`)).trim(), /alive/);
    });
  });
}

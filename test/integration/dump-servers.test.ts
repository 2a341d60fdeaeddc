import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cli, requirePrograms } from '../helpers/cli.js';
import { assertSameDump, buildIdsNotCached, decodeDir } from '../helpers/criu-images.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { PORTS, SERVERS, Server, setUpClient, timersThatRan } from '../helpers/servers.js';

/**
 * Real servers from Debian packages (redis, nginx, postgres) and on the
 * host's runtimes (python asyncio, node), started together in guest A with
 * data stored and a client left connected, each dumped once from the host:
 * those ovmigrate dumps are compared with CRIU's own dump of the same frozen
 * state (two of them here; all of them in `make kernels`) and restored by
 * stock CRIU in guest B, where they go on. The servers still refused name the
 * object that stops them: those cases flip to full ones when that lands.
 */
for (const kernel of POOL_KERNELS) {
  describe(`ovmigrate dump: real servers (redis, nginx, postgres, python asyncio, node)${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`servers${kernelTag(kernel)}`, [{ slot: 'a', kernel }, { slot: 'b', kernel }]);
    const sh = suite.sh;
    const cg = suite.cgroup;
    // Field by field against CRIU for three servers in `make test` (postgres for its IPC namespace's SysV segments) (each comparison is a CRIU dump in a TCG guest); all in `make kernels`.
    const compared = new Set(kernel === '6.1' && !process.env.OVMIGRATE_SERVERS_COMPARE_ALL ? ['redis', 'asyncio', 'postgres'] : SERVERS.map((s) => s.name));
    let share: string;
    let a: UpResult;
    let b: UpResult;
    const pids = new Map<string, number>();
    /** io_uring mappings and fds of a process in guest A, as `grep -c` counts them. */
    const rings = async (pid: number) => (await sh(a.name, `grep -c io_uring /proc/${pid}/maps || true; ls -l /proc/${pid}/fd | grep -c io_uring || true`))
      .trim().split(/\s+/).map(Number);
    let nodeRings: number[] = [];

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'criu', 'crit', 'redis-server', 'redis-cli', 'nginx', 'psql', 'node', 'python3']);
      share = suite.dir;
      const hold = setUpClient(share);
      for (const s of SERVERS) s.setUp?.(share);
      [a, b] = await suite.guests();
      // Each server's pids from a range of its own, below the other dump suites' (30000, 32000) and far above guest B's own.
      let base = 20000;
      for (const s of SERVERS) {
        await sh(a.name, `echo ${base} > /proc/sys/kernel/ns_last_pid`);
        base += 1000;
        pids.set(s.name, await suite.startProgram(a.name, s.name, s.command(share)));
        await s.ready?.(a.name, sh, share);
        if (s.name === 'node') nodeRings = await rings(pids.get('node')!);
      }
      for (const s of SERVERS) if (s.store) await s.store(a.name, sh, share);
      // One client per server stays connected across the checkpoint (and is cut by --tcp-close in the restored server).
      await sh(a.name, `echo ${base} > /proc/sys/kernel/ns_last_pid`);
      await suite.startProgram(a.name, 'clients', hold);
      const held = fs.readFileSync(path.join(share, 'clients.log'), 'utf8');
      for (const s of SERVERS) assert.match(held, new RegExp(`^${s.name} connected`, 'm'), `a client holds a connection to ${s.name}: ${held}`);
    });
    after(async () => {
      await suite.leave();
    });

    /** ovmigrate dump of a frozen server; then, when it is compared, CRIU's dump of the same frozen state (both leave it running). */
    async function dumpBoth(s: Server, pid: number): Promise<string> {
      await suite.freeze(a.name, s.name, 1);
      const t0 = Date.now();
      const ours = path.join(share, `${s.name}-ours`);
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running', '--tcp-close']);
      assert.equal(r.code, 0, `ovmigrate dump of ${s.name}: ${r.stderr}`);
      // The held client's connection was in the frozen server: dumped ESTABLISHED, for restore to close (--tcp-close).
      const inet = (decodeDir(ours).get('files.img') as { isk?: { state: number; src_port: number } }[]).flatMap((f) => (f.isk ? [f.isk] : []));
      assert.ok(inet.some((e) => e.state === 1 && e.src_port === PORTS[s.name]), `${s.name}: a client's connection in the images: ${JSON.stringify(inet)}`);
      if (compared.has(s.name)) {
        const theirs = path.join(share, `${s.name}-criu`);
        await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --tcp-close --freeze-cgroup /sys/fs/cgroup${cg}/${s.name} -o dump.log` +
          ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 300);
        assertSameDump(ours, theirs, { ...buildIdsNotCached(r.stderr), ...timersThatRan(theirs, (Date.now() - t0) / 1000), ...(s.knownDifferences ?? {}) });
      }
      return ours;
    }

    for (const s of SERVERS) {
      const refused = s.refused;
      if (refused) {
        it(`${s.name}: refused today, before anything is written, naming the object and the task (${refused.object})`, async () => {
          const pid = pids.get(s.name)!;
          const dir = path.join(share, `${s.name}-refused`);
          const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--tcp-close']);
          assert.equal(r.code, 1, r.stderr);
          assert.match(r.stderr, refused.pattern(pid), r.stderr);
          assert.ok(!fs.existsSync(dir), 'no image directory');
          assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/${s.name}/cgroup.events`), /frozen 0/, 'thawed again');
          const out = (await s.check(a.name, sh, share, 'before')).trim();
          assert.match(out, s.answer('before'), `${s.name} still answers in guest A: ${out}`);
        });
        continue;
      }
      it(`${s.name}: dumped from guest RAM${compared.has(s.name) ? ', the same as `criu dump` field by field,' : ''} restored by stock CRIU in guest B, goes on`, async () => {
        const pid = pids.get(s.name)!;
        const ours = await dumpBoth(s, pid);
        // The source is stopped (as a dump without --leave-running would), so that only guest B's copy runs.
        await sh(a.name, `echo 1 > /sys/fs/cgroup${cg}/${s.name}/cgroup.kill; while ! grep -q 'populated 0' /sys/fs/cgroup${cg}/${s.name}/cgroup.events; do sleep 0.1; done`);
        await sh(b.name, `criu restore -D ${ours} -d --tcp-close -o restore.log || { tail -20 ${ours}/restore.log; exit 1; }; sleep 1`, 300);
        const out = (await s.check(b.name, sh, share, 'after')).trim();
        assert.match(out, s.answer('after'), `${s.name} answers in guest B with what it held: ${out}`);
        await sh(b.name, `kill -9 ${pid} 2>/dev/null; true`);
      });
    }

    it('node 20: no io_uring ring by default (libuv 1.46 in node >= 20.11.1 leaves it off); UV_USE_IO_URING=1 makes one, which is refused by name', async () => {
      assert.deepEqual(nodeRings, [0, 0], 'node has no io_uring mapping or fd');
      const pid = await suite.startProgram(a.name, 'nodeuring', `env UV_USE_IO_URING=1 node ${share}/server.js ${PORTS.nodeuring}`);
      const [mapped, fds] = await rings(pid);
      assert.ok(mapped > 0 && fds > 0, `UV_USE_IO_URING=1: io_uring rings mapped (${mapped}) and open (${fds})`);
      const dir = path.join(share, 'nodeuring-refused');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid \\d+ \\(node\\).*io_uring`), r.stderr);
      assert.ok(!fs.existsSync(dir), 'no image directory');
    });

    it('the suite\'s servers are ones whose packages `make deps` installs', () => {
      const apt = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'Makefile'), 'utf8');
      for (const p of ['redis-server', 'nginx', 'postgresql']) assert.match(apt, new RegExp(`^APT_PACKAGES :=.* ${p}( |$)`, 'm'), p);
      execFileSync('dpkg-query', ['-W', 'redis-server', 'nginx', 'postgresql']);
    });
  });
}

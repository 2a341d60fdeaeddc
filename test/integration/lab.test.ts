import assert from 'node:assert/strict';
import fs from 'node:fs';
import { vmDescriptionPath } from '../../introspect/vm/index.js';
import { PRODUCT_CLI, cli, cliOk, guestSh, requirePrograms } from '../helpers/cli.js';
import { POOL_LABEL } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { UpResult, labUp, leftovers, testGuestName } from '../helpers/lab-guests.js';

const QEMU_TOOLS = ['qemu-system-x86_64', 'busybox', 'cpio', 'depmod', 'apt-get'];

/** Stops this file's own guests; the pooled guests of the other suites stay up (the root hook checks that they go too). */
async function downLabGuests(labels: string[]): Promise<void> {
  await Promise.all(labels.map((l) => cli(['lab', 'down', testGuestName(l)])));
}

/** What the lab tests' own guests left behind. */
const ownLeftovers = () => leftovers().filter((l) => !l.includes(testGuestName(POOL_LABEL)));

interface Info {
  osRelease: string;
  kernelOffset: string;
  physBase: string;
  pagingLevels: number;
  kallsyms: Record<string, string>;
  utsname: { sysname: string; release: string };
}

describe('lab guests', function () {
  // The 4-level guest only has its kernel read: the pooled one (introspect-ps boots it); `five` is this suite's own.
  const suite = new PoolSuite('lab', [{ paging: 4 }]);
  let five: UpResult;
  let four: UpResult;
  const share = fs.mkdtempSync('/var/tmp/ovmigrate-share-');

  before(async function () {
    requirePrograms(this, QEMU_TOOLS);
    // A 5-level guest with a share of its own, booting while the pool brings up the 4-level one.
    [five, [four]] = await Promise.all([labUp('five', ['--share', share]), suite.guests()]);
  });

  after(async () => {
    await downLabGuests(['five']);
    await suite.leave();
    fs.rmSync(share, { recursive: true, force: true });
  });

  it('prints the guest as JSON with pid, memory file, sockets and shares', () => {
    assert.equal(five.name, testGuestName('five'));
    assert.ok(five.qemuPid > 0);
    assert.ok(fs.statSync(five.memoryFile).size === 1024 << 20, 'memory file is the guest RAM');
    assert.ok(fs.statSync(five.qmpSocket).isSocket());
    assert.ok(fs.statSync(five.channelSocket).isSocket());
    assert.deepEqual(five.shares, [share]);
  });

  it('runs a command with its stdout, stderr and exit code', async () => {
    const r = await cli(['lab', 'exec', five.name, '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.deepEqual([r.code, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
  });

  it('reports a signal as 128+N and a command that does not exist as 127', async () => {
    const killed = await cli(['lab', 'exec', five.name, '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(killed.code, 128 + 15);
    const missing = await cli(['lab', 'exec', five.name, '--', '/no/such/program']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /ENOENT/);
  });

  it('kills a command that outlives --timeout and exits 124', async () => {
    const r = await cli(['lab', 'exec', five.name, '--timeout', '1', '--', 'sleep', '30']);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /killed after 1 s/);
  });

  it('forwards stdin with -i and streams binary output intact', async () => {
    const r = await cli(['lab', 'exec', five.name, '-i', '--', 'sh', '-c', 'wc -c; head -c 3000000 /dev/urandom | sha256sum; echo'], { input: 'x'.repeat(100_000) });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^100000\n[0-9a-f]{64}/);
    const big = await cli(['lab', 'exec', five.name, '--', 'sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" a']);
    assert.equal(big.stdout, 'a'.repeat(3_000_000));
  });

  it('runs several commands at once without mixing their output', async () => {
    const runs = await Promise.all([1, 2, 3, 4, 5].map((i) =>
      cli(['lab', 'exec', five.name, '--', 'sh', '-c', `for j in 1 2 3 4 5; do echo ${i}-$j; sleep 0.2; done; exit ${i}`])));
    runs.forEach((r, k) => {
      const i = k + 1;
      assert.equal(r.code, i);
      assert.equal(r.stdout, [1, 2, 3, 4, 5].map((j) => `${i}-${j}\n`).join(''));
    });
  });

  it('shares a host directory read-write at the same path', async () => {
    fs.writeFileSync(`${share}/from-host`, 'hello guest\n');
    assert.equal(await guestSh(five.name, `cat ${share}/from-host; echo hello host > ${share}/from-guest`), 'hello guest\n');
    assert.equal(fs.readFileSync(`${share}/from-guest`, 'utf8'), 'hello host\n');
  });

  it('is ready for containers: cgroup2, devpts, lo, tmpfs, modules, and criu check', async () => {
    const mounts = await guestSh(five.name, 'cat /proc/self/mounts');
    assert.match(mounts, /^none \/sys\/fs\/cgroup cgroup2 /m);
    assert.match(mounts, /^devpts \/dev\/pts devpts .*ptmxmode=666/m);
    for (const dir of ['/run', '/var/lib', '/tmp', '/mnt', '/dev/shm']) assert.match(mounts, new RegExp(`^tmpfs ${dir} tmpfs `, 'm'));
    assert.match(await guestSh(five.name, 'ip -o link show lo'), /state UNKNOWN|UP/);
    assert.match(await guestSh(five.name, 'modprobe nf_tables && lsmod'), /^nf_tables /m);
    const check = await cli(['lab', 'exec', five.name, '--', 'criu', 'check']);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /Looks good/);
  });

  it('reads the kernel identity from RAM: equal to uname -r, 5-level and 4-level paging', async () => {
    for (const [guest, levels] of [[five, 5], [four, 4]] as const) {
      const info = JSON.parse(await cliOk(['info', '--vm', guest.name, '--json'])) as Info;
      const uname = (await guestSh(guest.name, 'uname -r')).trim();
      assert.equal(info.osRelease, uname);
      assert.equal(info.pagingLevels, levels);
      assert.equal(info.utsname.release, uname);
      assert.equal(info.utsname.sysname, 'Linux');
      assert.match(info.kernelOffset, /^0x[0-9a-f]+$/);
      for (const sym of ['kallsyms_names', 'kallsyms_num_syms', 'kallsyms_token_table', 'kallsyms_token_index']) {
        assert.match(info.kallsyms[sym] ?? '', /^0xffffffff[0-9a-f]{8}$/, sym);
      }
      // KASLR: the text address the guest reports for _stext equals KERNELOFFSET's slide.
      const stext = (await guestSh(guest.name, "grep ' _stext$' /proc/kallsyms | cut -d' ' -f1")).trim();
      assert.equal(BigInt('0x' + stext), 0xffffffff81000000n + BigInt(info.kernelOffset));
    }
  });

  it('prints the same identity as text and accepts --mem with --qmp', async () => {
    const text = await cliOk(['info', '--vm', five.name]);
    assert.match(text, /^OSRELEASE\s+6\.1\.0-\d+-amd64$/m);
    const viaMem = JSON.parse(await cliOk(['info', '--mem', five.memoryFile, '--qmp', five.qmpSocket, '--json'])) as Info;
    const viaVm = JSON.parse(await cliOk(['info', '--vm', five.name, '--json'])) as Info;
    assert.equal(viaMem.kernelOffset, viaVm.kernelOffset);
    assert.equal(viaMem.physBase, viaVm.physBase);
  });

  it('describes each guest for the product, whose own CLI (without the lab) then reads it by name', async () => {
    const desc = JSON.parse(fs.readFileSync(vmDescriptionPath(five.name), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(desc, {
      version: 1, memoryFile: five.memoryFile, ramLayout: five.layout, qmpSocket: five.qmpSocket, channelSocket: five.channelSocket, shares: [share],
    });
    const viaProduct = JSON.parse(await cliOk(['info', '--vm', five.name, '--json'], { entry: PRODUCT_CLI })) as Info;
    const viaLab = JSON.parse(await cliOk(['info', '--vm', five.name, '--json'])) as Info;
    assert.deepEqual(viaProduct, viaLab);
    const ps = JSON.parse(await cliOk(['ps', '--vm', five.name, '--json'], { entry: PRODUCT_CLI })) as { pid: number }[];
    assert.ok(ps.some((p) => p.pid === 1));
    // No guest control in the product: it cannot kill the tree after a dump.
    const dump = await cli(['dump', '--vm', five.name, '--pid', '1', '-D', `${share}/img`], { entry: PRODUCT_CLI });
    assert.equal(dump.code, 2);
    assert.match(dump.stderr, /--leave-running/);
  });

  it('lists running guests and refuses a second guest of the same name', async () => {
    const ls = JSON.parse(await cliOk(['lab', 'ls', '--json'])) as { name: string; running: boolean }[];
    assert.ok(ls.some((g) => g.name === five.name && g.running));
    const again = await cli(['lab', 'up', five.name]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /already running/);
  });

  it('gives clear errors for bad names and unknown guests', async () => {
    const bad = await cli(['lab', 'up', '../etc']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /name/);
    const unknown = await cli(['lab', 'exec', 'no-such-guest', '--', 'true']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no running lab guest named no-such-guest/);
    const info = await cli(['info', '--vm', 'no-such-guest']);
    assert.match(info.stderr, /no running lab guest/);
  });

  it('down stops QEMU and removes the memory file and sockets', async () => {
    await cliOk(['lab', 'down', five.name]);
    assert.ok(!fs.existsSync(five.memoryFile));
    assert.ok(!fs.existsSync(five.qmpSocket));
    assert.ok(!fs.existsSync(vmDescriptionPath(five.name)), 'the VM description is gone');
    assert.throws(() => process.kill(five.qemuPid, 0));
  });
});

describe('a 4 GiB lab guest', function () {
  before(function () {
    requirePrograms(this, QEMU_TOOLS);
  });
  after(() => downLabGuests(['big']));

  it('has RAM above 4 GiB at another file offset, and info still finds the kernel', async () => {
    const big = await labUp('big', ['--memory', '4096', '--cpus', '1']);
    assert.ok(big.layout.length >= 2, 'RAM is split around the PCI hole');
    const high = big.layout.find((s) => BigInt(s.gpa) >= 0x1_0000_0000n);
    assert.ok(high && BigInt(high.fileOffset) < BigInt(high.gpa), 'RAM above 4 GiB sits lower in the file');
    const info = JSON.parse(await cliOk(['info', '--vm', big.name, '--json'])) as Info;
    assert.equal(info.osRelease, (await guestSh(big.name, 'uname -r')).trim());
    assert.equal(info.utsname.release, info.osRelease);
    // Processes, maps and memory through RAM above 4 GiB: a process holding 1.5 GiB spans both pieces.
    const pid = (await guestSh(big.name, "setsid python3 -c 'import os,time; b=b\"\\x33\"*(3<<29); print(os.getpid(), flush=True); time.sleep(1000)' > /run/big.pid 2>/dev/null </dev/null & while [ ! -s /run/big.pid ]; do sleep 0.5; done; cat /run/big.pid")).trim();
    const ps = JSON.parse(await cliOk(['ps', '--vm', big.name, '--json'])) as { pid: number; comm: string }[];
    assert.equal(ps.find((p) => p.pid === Number(pid))?.comm, 'python3');
    const maps = await guestSh(big.name, `cat /proc/${pid}/maps`);
    assert.equal(await cliOk(['maps', '--vm', big.name, '--pid', pid]), maps);
    const region = maps.split('\n').map((l) => l.split(' ')[0].split('-')).find(([a, b]) => b && BigInt('0x' + b) - BigInt('0x' + a) > 1_000_000_000n)![0];
    const sample = await cliOk(['read', '--vm', big.name, '--pid', pid, '--addr', region, '--len', String(64 << 20)], { binary: true });
    assert.ok(Buffer.from(sample, 'latin1').subarray(4096).every((b) => b === 0x33), 'the bytes the process wrote');
  });
});

describe('lab boot failure and cleanup', function () {
  before(function () {
    requirePrograms(this, QEMU_TOOLS);
  });

  it('a guest that does not boot in time is an error with its console tail, and leaves nothing behind', async () => {
    const r = await cli(['lab', 'up', testGuestName('slow'), '--boot-timeout', '2']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /did not boot within 2 s/);
    assert.match(r.stderr, /console tail/);
    assert.ok(!fs.existsSync(`/dev/shm/ovmigrate-lab-${testGuestName('slow')}.mem`));
  });

  it('the test run leaves no QEMU process or memory file behind', async () => {
    await downLabGuests(['five', 'big', 'slow']);
    assert.deepEqual(ownLeftovers(), []);
  });
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliOk, requirePrograms } from '../helpers/cli.js';
import { UpResult } from '../helpers/lab-guests.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';

interface Inspect {
  pgid: number;
  sid: number;
  tls: string[];
  registers: Record<string, string>;
  fpu: { ymm: string[]; mxcsr: number; compacted: boolean };
  signals: { blocked: string; pending: string; ignored: string; caught: string; actions: { signal: number; handler: string; flags: string; mask: string }[] };
  rlimits: { cur: string; max: string }[];
  creds: Record<string, number | string>;
  namespaces: Record<string, number>;
  cwd: string;
  root: string;
  files: { fd: number; path: string; flags: number; pos: number; kind: string }[];
  mm: Record<string, string>;
}

const SOURCE = path.resolve(__dirname, '..', '..', '..', 'test', 'programs', 'regs.c');
const hex = (v: string | bigint) => BigInt(v).toString(16);

// On each kernel of the run; the 6.12 guest is the one the other suites' 6.12 cases share.
for (const kernel of POOL_KERNELS) {
  describe(`inspect from guest RAM matches the program and the guest's /proc${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`inspect${kernelTag(kernel)}`, [{ kernel }]);
    let guest: UpResult;
    let pid: number;
    let fsBase: string;
    let report: Inspect;
    const guestSh = suite.sh;
    let share: string;

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'gcc']);
      share = suite.dir;
      execFileSync('gcc', ['-O0', '-static', '-o', path.join(share, 'regs'), SOURCE]);
      [guest] = await suite.guests();
      const out = await guestSh(guest.name, `cd /tmp && setsid ${share}/regs > /tmp/regs.out 2>&1 </dev/null & sleep 2; cat /tmp/regs.out`);
      [pid, fsBase] = out.trim().split(' ').map((v, i) => (i === 0 ? Number(v) : v)) as [number, string];
      report = JSON.parse(await cliOk(['inspect', '--vm', guest.name, '--pid', String(pid), '--json'])) as Inspect;
    });
    after(() => suite.leave());

    it('has the callee-saved registers the program set before it entered pause(), and its fs base', () => {
      assert.deepEqual(['r12', 'r13', 'r14', 'r15'].map((r) => hex(report.registers[r])),
        ['1111222233334444', '5555666677778888', '9999aaaabbbbcccc', 'ddddeeeeffff0000']);
      assert.equal(BigInt(report.registers.orig_ax), 34n, 'sleeping in pause()');
      assert.equal(hex(report.registers.fs_base), fsBase);
    });

    it('has the AVX registers the program loaded', () => {
      for (let r = 0; r < 4; r++) {
        const expected = Buffer.from(Array.from({ length: 32 }, (_, i) => r * 32 + i + 1)).toString('hex');
        assert.equal(report.fpu.ymm[r], expected, `ymm${r}`);
      }
    });

    it('has the signal state /proc/PID/status shows, and the SIGUSR1 handler', async () => {
      const status = await guestSh(guest.name, `cat /proc/${pid}/status`);
      const field = (name: string) => BigInt('0x' + new RegExp(`^${name}:\\s+([0-9a-f]+)$`, 'm').exec(status)![1]);
      assert.equal(BigInt(report.signals.blocked), field('SigBlk'));
      assert.equal(BigInt(report.signals.ignored), field('SigIgn'));
      assert.equal(BigInt(report.signals.caught), field('SigCgt'));
      const usr1 = report.signals.actions.find((a) => a.signal === 10)!;
      assert.ok(usr1 && BigInt(usr1.handler) > 1n);
      assert.equal(BigInt(usr1.mask), 1n << 14n, 'SIGTERM in the handler mask');
      assert.ok(BigInt(usr1.flags) & 0x10000000n, 'SA_RESTART');
    });

    it('has the credentials, namespaces, limits, cwd and root the guest shows', async () => {
      const status = await guestSh(guest.name, `cat /proc/${pid}/status`);
      const ids = (name: string) => /^\w+:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status.split('\n').find((l) => l.startsWith(name + ':'))!)!.slice(1).map(Number);
      assert.deepEqual(ids('Uid'), [report.creds.uid, report.creds.euid, report.creds.suid, report.creds.fsuid]);
      assert.deepEqual(ids('Gid'), [report.creds.gid, report.creds.egid, report.creds.sgid, report.creds.fsgid]);
      assert.equal(BigInt(report.creds.cap_effective as string), BigInt('0x' + /^CapEff:\s+(\w+)$/m.exec(status)![1]));
      const ns = await guestSh(guest.name, `for n in /proc/${pid}/ns/*; do echo "\${n##*/} $(readlink $n)"; done`);
      for (const line of ns.trim().split('\n')) {
        const [name, link] = line.split(' ');
        assert.equal(report.namespaces[name], Number(/\[(\d+)\]/.exec(link)![1]), `ns ${name}`);
      }
      const limits = (await guestSh(guest.name, `cat /proc/${pid}/limits`)).trim().split('\n').slice(1);
      limits.forEach((line, i) => {
        const [soft, hard] = line.slice(26).trim().split(/\s+/);
        const val = (v: string) => (v === 'unlimited' ? (1n << 64n) - 1n : BigInt(v));
        assert.deepEqual([BigInt(report.rlimits[i].cur), BigInt(report.rlimits[i].max)], [val(soft), val(hard)], line);
      });
      assert.equal(report.cwd, (await guestSh(guest.name, `readlink /proc/${pid}/cwd`)).trim());
      assert.equal(report.root, (await guestSh(guest.name, `readlink /proc/${pid}/root`)).trim());
      assert.equal(report.mm.exe, `${share}/regs`);
      const stat = (await guestSh(guest.name, `cat /proc/${pid}/stat`)).split(') ')[1].split(' ');
      assert.deepEqual([report.pgid, report.sid], [Number(stat[2]), Number(stat[3])]);
      assert.equal(report.pgid, pid, 'setsid made it a group and session leader');
      assert.equal(report.tls.length, 3);
    });

    it('has the files /proc/PID/fd and fdinfo show: paths, positions, flags and kinds', async () => {
      const truth = await guestSh(guest.name, `for f in /proc/${pid}/fd/*; do n=\${f##*/}; echo "$n|$(readlink $f)|$(awk '/^pos:/{print $2}' /proc/${pid}/fdinfo/$n)|$(awk '/^flags:/{print $2}' /proc/${pid}/fdinfo/$n)"; done`);
      const expected = truth.trim().split('\n').map((l) => { const [fd, p, pos, flags] = l.split('|'); return { fd: Number(fd), path: p, pos: Number(pos), flags: parseInt(flags, 8) }; })
        .sort((a, b) => a.fd - b.fd);
      assert.deepEqual(report.files.map(({ fd, path: p, pos, flags }) => ({ fd, path: p, pos, flags })), expected);
      const kinds = Object.fromEntries(report.files.map((f) => [f.fd, f.kind]));
      assert.deepEqual([kinds[3], kinds[4], kinds[5], kinds[6], kinds[7], kinds[8]], ['regular', 'pipe', 'pipe', 'unix-socket', 'unix-socket', 'regular']);
      assert.equal(report.files.find((f) => f.fd === 3)!.pos, 4);
    });

    it('tells every kind of open file, with the paths /proc/PID/fd shows', async () => {
      const script = `
import ctypes, os, select, signal, socket, time
libc = ctypes.CDLL(None, use_errno=True)
kinds = {}
kinds[os.eventfd(0)] = 'eventfd'
ep = select.epoll(); kinds[ep.fileno()] = 'epoll'
mask = (ctypes.c_ulong * 16)(1 << (signal.SIGUSR2 - 1))
kinds[libc.signalfd(-1, mask, 0)] = 'signalfd'
kinds[libc.timerfd_create(1, 0)] = 'timerfd'
kinds[os.memfd_create('ovm')] = 'memfd'
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(); kinds[srv.fileno()] = 'inet-socket'
m, s = os.openpty(); kinds[s] = 'tty'
kinds[os.open('/tmp', os.O_RDONLY | os.O_DIRECTORY)] = 'directory'
os.mkfifo('/tmp/ovm-fifo'); kinds[os.open('/tmp/ovm-fifo', os.O_RDWR)] = 'fifo'
print(os.getpid(), ' '.join(f'{fd}={k}' for fd, k in kinds.items()), flush=True)
time.sleep(1000)
`;
      fs.writeFileSync(path.join(share, 'kinds.py'), script);
      const [pidText, ...pairs] = (await guestSh(guest.name, `rm -f /tmp/ovm-fifo; setsid python3 ${share}/kinds.py > /tmp/kinds.out 2>&1 </dev/null & while [ ! -s /tmp/kinds.out ]; do sleep 0.3; done; cat /tmp/kinds.out`)).trim().split(/\s+/);
      const kpid = Number(pidText);
      assert.ok(kpid > 0, pidText);
      const expected = Object.fromEntries(pairs.map((p) => p.split('=')).map(([fd, k]) => [Number(fd), k]));
      const r = JSON.parse(await cliOk(['inspect', '--vm', guest.name, '--pid', String(kpid), '--json'])) as Inspect;
      for (const [fd, kind] of Object.entries(expected)) {
        const f = r.files.find((x) => x.fd === Number(fd));
        assert.equal(f?.kind, kind, `fd ${fd}`);
        assert.equal(f?.path, (await guestSh(guest.name, `readlink /proc/${kpid}/fd/${fd}`)).trim(), `path of fd ${fd}`);
      }
    });
  });
}

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { cli, cliOk, requirePrograms } from '../helpers/cli.js';
import { attachGuest } from '../helpers/guest-ram.js';
import { UpResult } from '../helpers/lab-guests.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { PoolSuite } from '../helpers/pool-suite.js';
import { findTask } from '../../introspect/linux/tasks.js';
import { readUserMemory } from '../../introspect/linux/user-memory.js';

/**
 * A process with a deleted file mapped, shared and PROT_NONE anonymous
 * mappings, a big heap and a file with a newline in its name. (Debian's 6.1
 * has no CONFIG_ANON_VMA_NAME, so [anon:name] cannot be shown here.)
 */
const WORKLOAD = `
import ctypes, mmap, os, time
f = open('/tmp/ovm-deleted', 'w+b'); f.write(b'd' * 8192); f.flush()
m = mmap.mmap(f.fileno(), 8192); os.unlink('/tmp/ovm-deleted')
g = open('/tmp/ovm\\nnewline', 'w+b'); g.write(b'n' * 4096); g.flush()
n = mmap.mmap(g.fileno(), 4096)
a = mmap.mmap(-1, 1 << 20); a[:5] = b'hello'
libc = ctypes.CDLL(None); libc.mmap.restype = ctypes.c_void_p
addr = libc.mmap(None, 1 << 16, 0, 0x22, -1, 0)  # PROT_NONE
big = bytearray(os.urandom(3 << 20))
print(os.getpid(), flush=True)
time.sleep(1000)
`;

/** sha256 of each readable mapping of a process, as the guest's /proc/PID/mem gives it ('EIO' where it cannot). */
const HASHER = `
import hashlib, sys
pid = sys.argv[1]
with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/mem', 'rb', buffering=0) as mem:
    for line in maps:
        r = line.split()[0]; s, e = (int(x, 16) for x in r.split('-'))
        try:
            mem.seek(s); data = mem.read(e - s); print(r, hashlib.sha256(data).hexdigest() if len(data) == e - s else 'EIO')
        except OSError:
            print(r, 'EIO')
`;

// On each kernel of the run; the 6.12 guest is the one the other suites' 6.12 cases share.
for (const kernel of POOL_KERNELS) {
  describe(`maps and read from guest RAM match /proc/PID/maps and /proc/PID/mem${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`mem${kernelTag(kernel)}`, [{ kernel }]);
    const guestSh = suite.sh;
    let guest: UpResult;
    let workload: number;

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'python3']);
      [guest] = await suite.guests();
      await guestSh(guest.name, `cat > /run/workload.py <<'EOF'\n${WORKLOAD}\nEOF\ncat > /run/hasher.py <<'EOF'\n${HASHER}\nEOF`);
      workload = Number((await guestSh(guest.name, 'setsid python3 /run/workload.py > /run/workload.pid 2>/run/workload.err & sleep 3; cat /run/workload.pid; cat /run/workload.err')).trim());
      assert.ok(workload > 0);
    });
    after(() => suite.leave());

    it('maps is identical, line for line, for init, a shell, node and a process with unusual mappings', async () => {
      const shell = Number((await guestSh(guest.name, 'setsid sh -c "sleep 1000" >/dev/null 2>&1 & echo $!')).trim());
      // An idle node, frozen so that V8 cannot move its heap between the two reads (the lab agent's would).
      const node = Number((await guestSh(guest.name, `
        mkdir -p /sys/fs/cgroup${suite.cgroup}/node
        setsid sh -c 'echo $$ > /sys/fs/cgroup${suite.cgroup}/node/cgroup.procs; exec node -e "setTimeout(() => {}, 1e9)"' >/dev/null 2>&1 </dev/null &
        sleep 3; echo 1 > /sys/fs/cgroup${suite.cgroup}/node/cgroup.freeze
        while ! grep -q 'frozen 1' /sys/fs/cgroup${suite.cgroup}/node/cgroup.events; do sleep 0.2; done
        cat /sys/fs/cgroup${suite.cgroup}/node/cgroup.procs`)).trim());
      for (const pid of [1, shell, node, workload]) {
        const ours = await cliOk(['maps', '--vm', guest.name, '--pid', String(pid)]);
        const theirs = await guestSh(guest.name, `cat /proc/${pid}/maps`);
        assert.equal(ours, theirs, `maps of pid ${pid}`);
      }
      const maps = await guestSh(guest.name, `cat /proc/${workload}/maps`);
      for (const marker of ['[heap]', '[stack]', '[vvar]', '[vdso]', '/tmp/ovm-deleted (deleted)', '/tmp/ovm\\012newline']) {
        assert.ok(maps.includes(marker), `the workload's maps show ${marker}`);
      }
    });

    it('every mapping reads the same bytes as /proc/PID/mem, or fails where it fails', async () => {
      const expected = (await guestSh(guest.name, `python3 /run/hasher.py ${workload}`)).trim().split('\n');
      const { prog, close } = attachGuest(guest);
      try {
        const task = findTask(prog, workload);
        for (const line of expected) {
          const [range, hash] = line.split(' ');
          const [s, e] = range.split('-').map((x) => BigInt('0x' + x));
          let ours: string;
          try {
            ours = crypto.createHash('sha256').update(readUserMemory(task, s, Number(e - s))).digest('hex');
          } catch {
            ours = 'EIO';
          }
          assert.equal(ours, hash, `mapping ${range}`);
        }
      } finally {
        close();
      }
    });

    it('read streams a range on stdout and names the address it cannot read', async () => {
      const heap = (await guestSh(guest.name, `grep '\\[heap\\]' /proc/${workload}/maps`)).split('-')[0];
      const r = await cli(['read', '--vm', guest.name, '--pid', String(workload), '--addr', heap, '--len', '65536'], { binary: true });
      assert.equal(r.code, 0, r.stderr);
      const truth = await guestSh(guest.name, `python3 -c "import sys; f=open('/proc/${workload}/mem','rb'); f.seek(0x${heap}); sys.stdout.write(f.read(65536).hex())"`);
      assert.equal(Buffer.from(r.stdout, 'latin1').toString('hex'), truth);
      const bad = await cli(['read', '--vm', guest.name, '--pid', String(workload), '--addr', '0x1000', '--len', '16']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, new RegExp(`pid ${workload}: cannot read 0x1000: not mapped`));
      const unknown = await cli(['read', '--vm', guest.name, '--pid', '999999', '--addr', '0x1000', '--len', '16']);
      assert.match(unknown.stderr, /no task with pid 999999/);
    });
  });
}

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, encodeImage, entryObject, makeEntry } from '../../introspect/criu/index.js';
import { criuThreadInfo } from '../../introspect/dump/thread-info.js';
import { findTask } from '../../introspect/linux/tasks.js';
import { requirePrograms } from '../helpers/cli.js';
import { attachGuest } from '../helpers/guest-ram.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const SOURCE = path.resolve(__dirname, '..', '..', '..', 'test', 'programs', 'regs.c');

/**
 * The registers of a frozen task, read from guest RAM and put in CRIU's
 * form, against CRIU's own dump of the same frozen task in the guest.
 */
describe('thread_info from guest RAM equals CRIU\'s own dump', function () {
  const suite = new PoolSuite('ti', [{}]);
  const guestSh = suite.sh;
  const cg = `/sys/fs/cgroup${suite.cgroup}/regs`;
  let ours: Record<string, Record<string, unknown>>;
  let theirs: Record<string, Record<string, unknown>>;

  before(async function () {
    requirePrograms(this, ['qemu-system-x86_64', 'gcc', 'criu']);
    const share = suite.dir;
    execFileSync('gcc', ['-O0', '-static', '-o', path.join(share, 'regs'), SOURCE]);
    const [guest] = await suite.guests();
    const pid = Number((await guestSh(guest.name, `
      mkdir -p ${cg}; cd /tmp; rm -f /tmp/regs.out
      setsid sh -c 'echo $$ > ${cg}/cgroup.procs; exec ${share}/regs' > /tmp/regs.out 2>&1 </dev/null &
      while [ ! -s /tmp/regs.out ]; do sleep 0.2; done
      echo 1 > ${cg}/cgroup.freeze
      while ! grep -q 'frozen 1' ${cg}/cgroup.events; do sleep 0.2; done
      cut -d' ' -f1 /tmp/regs.out`)).trim());
    const { prog, close } = attachGuest(guest);
    try {
      const image = encodeImage('CORE', [makeEntry('core_entry', { mtype: 'X86_64', thread_info: criuThreadInfo(findTask(prog, pid)) })]);
      ours = entryObject(decodeImage(image), 0).thread_info as Record<string, Record<string, unknown>>;
    } finally {
      close();
    }
    await guestSh(guest.name, `mkdir -p ${share}/img && criu dump -t ${pid} -D ${share}/img --leave-running --shell-job --freeze-cgroup ${cg} -o dump.log || { tail -20 ${share}/img/dump.log; exit 1; }`, 120);
    theirs = entryObject(decodeImage(fs.readFileSync(path.join(share, 'img', `core-${pid}.img`))), 0).thread_info as Record<string, Record<string, unknown>>;
  });
  after(() => suite.leave());

  it('general registers, with the interrupted pause() set up to restart as CRIU does', () => {
    assert.deepEqual(ours.gpregs, theirs.gpregs);
    assert.equal(BigInt(ours.gpregs.r12 as string), 0x1111222233334444n);
  });

  it('the FXSAVE area and the XSAVE components CRIU keeps', () => {
    const { xsave: ox, ...olegacy } = ours.fpregs as Record<string, unknown> & { xsave: Record<string, unknown> };
    const { xsave: tx, ...tlegacy } = theirs.fpregs as Record<string, unknown> & { xsave: Record<string, unknown> };
    assert.deepEqual(olegacy, tlegacy);
    // Differs legitimately: CRIU takes the CPU's XSAVE features from CPUID in the guest, which under QEMU TCG leaves out
    // BNDREGS although the guest kernel supports it (fpu_user_cfg); ours is all zeros there, which restores the same.
    const { bndreg_state: bnd, ...orest } = ox;
    const { bndreg_state: _none, ...trest } = tx;
    void _none;
    assert.ok(!bnd || (bnd as string[]).every((v) => BigInt(v) === 0n));
    assert.deepEqual(orest, trest);
    assert.ok((trest.ymmh_space as number[]).some((v) => v !== 0), 'the program left AVX state');
  });

  it('TLS descriptors and the clear_tid address', () => {
    assert.deepEqual(ours.tls, theirs.tls);
    assert.equal(ours.clear_tid_addr, theirs.clear_tid_addr);
  });
});

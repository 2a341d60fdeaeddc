import { ExternalError, FailedPreconditionError, InvalidArgumentError } from '../../common/errors.js';
import { GuestControl } from '../../introspect/vm/index.js';
import { execCapture } from './exec-client.js';

/** Only paths of this shape are put into a guest shell command. */
const CGROUP_PATH = /^(\/[A-Za-z0-9._:@+-]+)+$/;

/**
 * The in-guest side of a checkpoint in the lab, over the lab's control
 * channel: what the shim does in a production guest (freeze the
 * container's cgroup, thaw it, kill what was dumped).
 */
export class LabGuestControl implements GuestControl {
  constructor(readonly guest: string) {}

  private async sh(script: string, what: string): Promise<string> {
    const r = await execCapture(this.guest, ['sh', '-c', script], { timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new ExternalError(`lab ${this.guest}: ${what} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
    return r.stdout;
  }

  private dir(cgroup: string): string {
    if (cgroup === '/') throw new FailedPreconditionError('the tree is in the root cgroup, which cannot be frozen: run it in a cgroup of its own');
    if (!CGROUP_PATH.test(cgroup)) throw new InvalidArgumentError(`cgroup path ${cgroup}: unusual characters`);
    return `/sys/fs/cgroup${cgroup}`;
  }

  /** Whether the cgroup v2 freezer holds the cgroup (cgroup.events "frozen 1"). */
  async frozen(cgroup: string): Promise<boolean> {
    return /^frozen 1$/m.test(await this.sh(`cat ${this.dir(cgroup)}/cgroup.events`, `reading ${cgroup}/cgroup.events`));
  }

  /** Freezes a cgroup and waits until all its tasks are frozen. */
  async freeze(cgroup: string): Promise<void> {
    const d = this.dir(cgroup);
    await this.sh(`echo 1 > ${d}/cgroup.freeze; for i in $(seq 300); do grep -q '^frozen 1' ${d}/cgroup.events && exit 0; sleep 0.1; done; echo 'not frozen after 30 s' >&2; exit 1`,
      `freezing ${cgroup}`);
  }

  async thaw(cgroup: string): Promise<void> {
    await this.sh(`echo 0 > ${this.dir(cgroup)}/cgroup.freeze`, `thawing ${cgroup}`);
  }

  /** SIGKILL to the dumped processes (pids of the guest's initial namespace), then thaw so they die. */
  async kill(pids: number[], cgroup: string): Promise<void> {
    if (!pids.every((p) => Number.isInteger(p) && p > 1)) throw new InvalidArgumentError(`pids ${pids.join(' ')}`);
    await this.sh(`kill -9 ${pids.join(' ')} 2>/dev/null; echo 0 > ${this.dir(cgroup)}/cgroup.freeze`, `killing ${pids.join(' ')}`);
  }
}

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { guestSh } from './cli.js';
import { PoolKey, guestPool } from './guest-pool.js';
import { UpResult } from './lab-guests.js';

/** Where a new suite's pids start in a pooled guest, as after a fresh boot (the boot's own pids stay below). */
const FIRST_PID = 1000;

/**
 * One integration suite's part of the pooled guests. The suite's processes
 * run in its cgroup (`cgroup`: the shell of every `sh` in its leaf `sh`,
 * what the suite moves elsewhere in sub-cgroups of its own), its containers
 * in its containerd namespace (whose runc cgroups are `/<namespace>/<id>`,
 * under the same cgroup), its files in `dir` on the pool's share. `leave()`
 * kills and removes all of that, so the next suite finds the guest clean.
 */
export class PoolSuite {
  /** The suite's cgroup v2 path in each of its guests. */
  readonly cgroup: string;
  /** The suite's containerd namespace (the same name as its cgroup). */
  readonly namespace: string;
  private readonly used = new Map<string, UpResult>();
  private dirPath?: string;
  private virtiofsPath?: string;

  /** `keys`: the pooled guests the suite uses, declared when mocha loads it so that they can boot ahead. */
  constructor(readonly id: string, private readonly keys: PoolKey[], opts: { namespace?: string } = {}) {
    if (!/^[a-z0-9]+$/.test(id)) throw new Error(`suite id ${id}: lower-case letters and digits only`);
    this.cgroup = `/ovm-${id}`;
    this.namespace = opts.namespace ?? `ovm-${id}`;
    guestPool.declare(keys);
  }

  /** The suite's directory on the pool's share (the guests see it at the same path), created empty. */
  get dir(): string {
    if (!this.dirPath) {
      this.dirPath = path.join(guestPool.paths().share, this.id);
      fs.rmSync(this.dirPath, { recursive: true, force: true });
      fs.mkdirSync(this.dirPath);
    }
    return this.dirPath;
  }

  /** The suite's directory on the pool's virtiofs share (guests of the virtiofs key), created empty. */
  get virtiofsDir(): string {
    if (!this.virtiofsPath) {
      this.virtiofsPath = path.join(guestPool.paths().virtiofs, this.id);
      fs.rmSync(this.virtiofsPath, { recursive: true, force: true });
      fs.mkdirSync(this.virtiofsPath);
    }
    return this.virtiofsPath;
  }

  /** A directory beside the share, on its file system, that no guest sees (a backend's staging). */
  hostDir(name: string): string {
    const dir = path.join(guestPool.paths().root, `${this.id}-${name}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * The suite's pooled guests, in the order of its keys, made ready for it
   * (if the root hook has not started the pool's boots, this does).
   */
  async guests(): Promise<UpResult[]> {
    guestPool.prepare();
    const ups = await Promise.all(this.keys.map((k) => guestPool.guest(k)));
    for (const up of ups) {
      if (this.used.has(up.name)) continue;
      await guestSh(up.name, `
        mkdir -p /sys/fs/cgroup${this.cgroup}/sh
        echo ${FIRST_PID} > /proc/sys/kernel/ns_last_pid
        if command -v ctr >/dev/null && ctr version >/dev/null 2>&1; then ctr namespaces create ${this.namespace} 2>/dev/null || true; fi`);
      this.used.set(up.name, up);
    }
    return ups;
  }

  /** Like guestSh, with the script's shell (and so what it starts) in the suite's cgroup. */
  sh = (guest: string, script: string, timeoutS?: number): Promise<string> =>
    guestSh(guest, `echo $$ > /sys/fs/cgroup${this.cgroup}/sh/cgroup.procs\n${script}`, timeoutS);

  /**
   * Starts `command` in `guest` in a cgroup of its own under the suite's (NAME), its cwd `dir`/cwd-NAME, its output
   * appended to `dir`/NAME.log; its pid once it has printed a line and had a second more.
   */
  async startProgram(guest: string, name: string, command: string): Promise<number> {
    const [cg, share] = [`/sys/fs/cgroup${this.cgroup}/${name}`, this.dir];
    const pid = Number((await this.sh(guest, `
      mkdir -p ${cg} ${share}/cwd-${name}; cd ${share}/cwd-${name}
      setsid sh -c 'echo $$ > ${cg}/cgroup.procs; exec ${command}' >> ${share}/${name}.log 2>&1 </dev/null &
      for i in $(seq 100); do [ -s ${share}/${name}.log ] && break; sleep 0.1; done
      sleep 1; head -1 ${cg}/cgroup.procs`)).trim());
    assert.ok(pid > 1, `${name} started`);
    return pid;
  }

  /** Freezes (1) or thaws (0) a program's cgroup (startProgram's NAME) and waits until the kernel says so. */
  freeze = (guest: string, name: string, on: 0 | 1): Promise<string> => this.sh(guest,
    `echo ${on} > /sys/fs/cgroup${this.cgroup}/${name}/cgroup.freeze; while ! grep -q 'frozen ${on}' /sys/fs/cgroup${this.cgroup}/${name}/cgroup.events; do sleep 0.1; done`);

  /**
   * Removes what the suite started in each of its guests: its containerd
   * namespace's tasks, containers and images, runc containers restored
   * outside containerd, every process of its cgroup and the cgroup itself;
   * and its directory on the share.
   */
  async leave(): Promise<void> {
    const ns = this.namespace;
    const cg = `/sys/fs/cgroup${this.cgroup}`;
    const errors: unknown[] = [];
    await Promise.all([...this.used.values()].map((up) => guestSh(up.name, `
      if command -v ctr >/dev/null && ctr version >/dev/null 2>&1; then
        for t in $(ctr -n ${ns} task ls -q); do ctr -n ${ns} task delete -f $t >/dev/null 2>&1; done
        for c in $(ctr -n ${ns} containers ls -q); do ctr -n ${ns} containers delete $c >/dev/null 2>&1; done
        images=$(ctr -n ${ns} images ls -q); [ -z "$images" ] || ctr -n ${ns} images rm $images >/dev/null 2>&1
        [ ${ns} = default ] || ctr namespaces remove ${ns} >/dev/null 2>&1
      fi
      if [ -d ${cg} ]; then
        echo 1 > ${cg}/cgroup.kill
        for i in $(seq 100); do grep -q 'populated 0' ${cg}/cgroup.events && break; sleep 0.1; done
      fi
      if command -v runc >/dev/null; then for c in $(runc list -q); do runc delete -f $c >/dev/null 2>&1; done; fi
      [ ! -d ${cg} ] || find ${cg} -depth -type d -exec rmdir {} +
      true`).catch((e: unknown) => errors.push(e))));
    this.used.clear();
    guestPool.release(this.keys);
    for (const dir of [this.dirPath, this.virtiofsPath]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (errors.length) throw errors[0];
  }
}

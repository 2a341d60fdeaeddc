import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InstalledComponent, PinSelection, componentsRoot, installed, readPins, selectPins } from '../lab/components/index.js';
import { CLI } from './cli.js';

/** Longer than the builder's own limit (a hung go is killed there), so the builder's error is what a suite sees. */
const READY_TIMEOUT_MS = 100 * 60_000;
/** Lines of the build's output a failing suite quotes. */
const TAIL_LINES = 30;

interface Build {
  id: string;
  /** The programs this build makes sure of (a later ask for more builds again, after it). */
  programs: string[];
  label: string;
  /** Settles when the child that ensures the component exits. */
  done: Promise<InstalledComponent>;
  child?: ChildProcess;
  log: string;
}

/**
 * The pinned Go components a test run needs, built in the background from
 * the start of the run: suites declare theirs when mocha loads them, the
 * root hook starts one `lab components ID` child per component (at nice 19,
 * as its go commands are, so guests and tests keep the CPU), and a suite
 * awaits `ready(id)` where it needs the programs. A component is asked for
 * by id (its programs but its test binaries: cri-tools is crictl) or by
 * `ID:PROGRAM` (cri-tools:critest), and only what is asked is built. A cached component costs
 * that child's start (well under a second, beside the unit tests). The
 * builds' progress goes to a log file of the run, never to mocha's output;
 * the run prints one line as each component it had to build is ready.
 */
export class RunComponents {
  /** Programs wanted, by component id, in the order the suites declared them. */
  private readonly declared = new Map<string, Set<string>>();
  /** The latest build of each component; `started` has every one, for stop(). */
  private readonly builds = new Map<string, Build>();
  private readonly started: Build[] = [];
  private runLogDir?: string;
  /**
   * Children at once (OVMIGRATE_COMPONENT_JOBS, default 2), started in the order the suites declared them: each go
   * build already uses every core, so more at once only delays the early suites' components behind the kubelet's.
   */
  private readonly jobs = Number(process.env.OVMIGRATE_COMPONENT_JOBS) || 2;
  private running = 0;
  private stopped = false;
  private readonly queue: (() => void)[] = [];

  /** A suite of this run needs these components (keys of test/lab/components.json, or ID:PROGRAM,...). */
  declare(ids: string[]): void {
    for (const id of ids) this.want(id);
  }

  /** One selector's component and programs, added to the declared ones. */
  private want(selector: string): PinSelection {
    const [sel] = selectPins(readPins(), [selector]);
    const set = this.declared.get(sel.pin.id) ?? new Set<string>();
    for (const n of sel.programs) set.add(n);
    this.declared.set(sel.pin.id, set);
    return sel;
  }

  /** Starts every declared build (the root hook, at the start of the run); a later ready() of an undeclared one starts it then. */
  start(): void {
    const pins = readPins();
    const wanted = [...this.declared].map(([id, programs]) => ({ pin: pins.find((p) => p.id === id)!, programs: [...programs] }));
    const cold = wanted.filter((w) => !installed(w.pin, undefined, w.programs)).map((w) => w.pin.id);
    for (const w of wanted) this.build(w);
    if (cold.length) {
      console.log(`  components: building ${cold.map((id) => this.builds.get(id)!.label).join(', ')} in the background at nice 19` +
        ` (progress: tail -f ${this.logDir()}/*.log)`);
    }
  }

  /**
   * The component, once built (at once when cached). A build failure throws
   * with the end of its output, under CI and elsewhere alike: a suite that
   * needs the program cannot run without it, and a failed build is a fault.
   * With `ctx`, the waiting hook or test gets the build's time on top of
   * its own timeout (mocha fails a runnable that ends after its timeout,
   * so the wait is added to it, not given back).
   */
  async ready(id: string, ctx?: Mocha.Context): Promise<InstalledComponent> {
    const b = this.build(this.want(id));
    const own = ctx?.timeout() ?? 0;
    const waitStart = Date.now();
    if (ctx && own > 0) ctx.timeout(own + READY_TIMEOUT_MS);
    try {
      return await b.done;
    } finally {
      if (ctx && own > 0) ctx.timeout(own + (Date.now() - waitStart));
    }
  }

  /** The path of one program of a component, once built. */
  async program(id: string, name: string, ctx?: Mocha.Context): Promise<string> {
    const c = await this.ready(`${id}:${name}`, ctx);
    const file = c.binaries[name];
    if (!file) throw new Error(`component ${id} has no program ${name} (it has ${Object.keys(c.binaries).join(', ')})`);
    return file;
  }

  /**
   * End of the run: builds still going are stopped (`lab components` ends its go and removes its unfinished
   * stage on SIGTERM); the logs of a run whose builds all succeeded go.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = this.started.filter((b) => b.child && b.child.exitCode === null && b.child.signalCode === null);
    for (const b of running) b.child!.kill('SIGTERM');
    const settled = await Promise.allSettled(this.started.map((b) => b.done));
    if (this.runLogDir && running.length === 0 && settled.every((s) => s.status === 'fulfilled')) {
      fs.rmSync(this.runLogDir, { recursive: true, force: true });
    }
    this.builds.clear();
    this.started.length = 0;
    this.runLogDir = undefined;
    this.stopped = false;
  }

  private async slot(): Promise<void> {
    if (this.running >= this.jobs) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.running++;
    if (this.stopped) {
      this.running--;
      this.queue.shift()?.();
      throw new Error('the test run ended before this component was built');
    }
  }

  /** The run's directory of build outputs (one log per component), beside the builds' own go logs. */
  private logDir(): string {
    if (!this.runLogDir) {
      this.runLogDir = path.join(componentsRoot(), 'logs', `run-${process.pid}`);
      fs.mkdirSync(this.runLogDir, { recursive: true });
    }
    return this.runLogDir;
  }

  /**
   * The build that makes sure of `sel`'s programs: the one started for them,
   * or a new one for them and what was asked before, after that one (one
   * `lab components` at a time per component: they would build the same).
   */
  private build(sel: PinSelection): Build {
    const { pin } = sel;
    const have = this.builds.get(pin.id);
    if (have && sel.programs.every((n) => have.programs.includes(n))) return have;
    const programs = pin.binaries.map((b) => b.name).filter((n) => have?.programs.includes(n) || sel.programs.includes(n));
    const all = programs.length === pin.binaries.length;
    const log = path.join(this.logDir(), `${pin.id}.log`);
    const b: Build = {
      id: pin.id, programs, label: `${pin.id} ${pin.version}${all ? '' : ` (${programs.join(', ')})`}`, log,
      done: Promise.resolve(undefined as unknown as InstalledComponent),
    };
    const started = Date.now();
    const wasCached = installed(pin, undefined, programs) !== undefined;
    const after = have ? have.done.then(() => undefined, () => undefined) : Promise.resolve();
    b.done = after.then(() => this.slot()).then(() => new Promise<InstalledComponent>((resolve, reject) => {
      const out = fs.openSync(log, 'a');
      // In the run's process group, so a ^C on the terminal ends the builds too.
      const child = spawn('nice', ['-n', '19', process.execPath, CLI, 'lab', 'components', `${pin.id}:${programs.join(',')}`], { stdio: ['ignore', 'ignore', out] });
      fs.closeSync(out);
      b.child = child;
      child.on('error', (err) => reject(new Error(`${b.label}: could not start its build: ${err.message}`)));
      child.on('close', (code, signal) => {
        const built = code === 0 ? installed(pin, undefined, programs) : undefined;
        if (built) {
          if (!wasCached) console.log(`  components: ${b.label} ready (${Math.round((Date.now() - started) / 1000)} s)`);
          resolve(built);
          return;
        }
        const tail = fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-TAIL_LINES).join('\n');
        const how = code === 0 ? 'ended but left no complete build' : `failed (${signal ?? `exit ${code}`})`;
        reject(new Error(`building ${b.label} ${how}; ${log}:\n${tail}`));
      });
    }).finally(() => {
      this.running--;
      this.queue.shift()?.();
    }));
    // Only ready() reports the failure, to the suites that need the component.
    b.done.catch(() => undefined);
    this.builds.set(pin.id, b);
    this.started.push(b);
    return b;
  }
}

export const components = new RunComponents();

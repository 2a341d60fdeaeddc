import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InstalledComponent, componentsRoot, installed, readPins } from '../lab/components/index.js';
import { CLI } from './cli.js';

/** Longer than the builder's own limit (a hung go is killed there), so the builder's error is what a suite sees. */
const READY_TIMEOUT_MS = 100 * 60_000;
/** Lines of the build's output a failing suite quotes. */
const TAIL_LINES = 30;

interface Build {
  id: string;
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
 * awaits `ready(id)` where it needs the programs. A cached component costs
 * that child's start (well under a second, beside the unit tests). The
 * builds' progress goes to a log file of the run, never to mocha's output;
 * the run prints one line as each component it had to build is ready.
 */
export class RunComponents {
  private readonly declared: string[] = [];
  private readonly builds = new Map<string, Build>();
  private runLogDir?: string;
  /** Children at once (OVMIGRATE_COMPONENT_JOBS, default all), started in the order the suites declared them. */
  private readonly jobs = Number(process.env.OVMIGRATE_COMPONENT_JOBS) || Infinity;
  private running = 0;
  private stopped = false;
  private readonly queue: (() => void)[] = [];

  /** A suite of this run needs these components (keys of test/lab/components.json). */
  declare(ids: string[]): void {
    const known = new Set(readPins().map((p) => p.id));
    for (const id of ids) {
      if (!known.has(id)) throw new Error(`no pinned component ${id} (test/lab/components.json has ${[...known].join(', ')})`);
      if (!this.declared.includes(id)) this.declared.push(id);
    }
  }

  /** Starts every declared build (the root hook, at the start of the run); a later ready() of an undeclared one starts it then. */
  start(): void {
    const pins = readPins();
    const cold = this.declared.filter((id) => !installed(pins.find((p) => p.id === id)!));
    for (const id of this.declared) this.build(id);
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
    this.declare([id]);
    const b = this.build(id);
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
    const c = await this.ready(id, ctx);
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
    const running = [...this.builds.values()].filter((b) => b.child && b.child.exitCode === null && b.child.signalCode === null);
    for (const b of running) b.child!.kill('SIGTERM');
    const settled = await Promise.allSettled([...this.builds.values()].map((b) => b.done));
    if (this.runLogDir && running.length === 0 && settled.every((s) => s.status === 'fulfilled')) {
      fs.rmSync(this.runLogDir, { recursive: true, force: true });
    }
    this.builds.clear();
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

  private build(id: string): Build {
    const have = this.builds.get(id);
    if (have) return have;
    const pin = readPins().find((p) => p.id === id)!;
    const log = path.join(this.logDir(), `${id}.log`);
    const b: Build = { id, label: `${id} ${pin.version}`, log, done: Promise.resolve(undefined as unknown as InstalledComponent) };
    const started = Date.now();
    const wasCached = installed(pin) !== undefined;
    b.done = this.slot().then(() => new Promise<InstalledComponent>((resolve, reject) => {
      const out = fs.openSync(log, 'w');
      // In the run's process group, so a ^C on the terminal ends the builds too.
      const child = spawn('nice', ['-n', '19', process.execPath, CLI, 'lab', 'components', id], { stdio: ['ignore', 'ignore', out] });
      fs.closeSync(out);
      b.child = child;
      child.on('error', (err) => reject(new Error(`${b.label}: could not start its build: ${err.message}`)));
      child.on('close', (code, signal) => {
        const built = code === 0 ? installed(pin) : undefined;
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
    this.builds.set(id, b);
    return b;
  }
}

export const components = new RunComponents();

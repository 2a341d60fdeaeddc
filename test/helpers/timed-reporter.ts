import Mocha from 'mocha';

interface SuiteTime {
  title: string;
  start: number;
  tests: number;
  total?: number;
}

/**
 * mocha's spec reporter, plus where the run's time went: for each top-level
 * suite its wall time and the part of it spent outside test bodies (hooks:
 * boots, set-up, clean-up), so a slow `make test` shows its cause; then the
 * failures once more, by name. Each top-level suite says how far into the run
 * it starts, and a run stopped by SIGTERM or SIGINT (a CI time limit) prints
 * the same account, with what was running, before it exits: a CI log keeps
 * only its tail.
 */
class TimedReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const times: SuiteTime[] = [];
    const open = new Map<Mocha.Suite, SuiteTime>();
    const runStart = Date.now();
    const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;
    const { EVENT_SUITE_BEGIN, EVENT_SUITE_END, EVENT_TEST_BEGIN, EVENT_HOOK_BEGIN, EVENT_TEST_END, EVENT_RUN_END } = Mocha.Runner.constants;
    /** What runs now (a test or a hook), and since when: what a stopped run names. */
    let running: { title: string; start: number } | undefined;
    runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => {
      if (!suite.parent?.root) return;
      open.set(suite, { title: suite.title, start: Date.now(), tests: 0 });
      console.log(`    (${minutes(Date.now() - runStart)} into the run)`);
    });
    runner.on(EVENT_TEST_BEGIN, (test: Mocha.Test) => { running = { title: test.fullTitle(), start: Date.now() }; });
    runner.on(EVENT_HOOK_BEGIN, (hook: Mocha.Hook) => { running = { title: hook.fullTitle(), start: Date.now() }; });
    runner.on(EVENT_TEST_END, (test: Mocha.Test) => {
      let top: Mocha.Suite | undefined = test.parent;
      while (top?.parent && !top.parent.root) top = top.parent;
      const t = top && open.get(top);
      if (t) t.tests += test.duration ?? 0;
    });
    runner.on(EVENT_SUITE_END, (suite: Mocha.Suite) => {
      const t = open.get(suite);
      if (!t) return;
      t.total = Date.now() - t.start;
      times.push(t);
      open.delete(suite);
    });
    /** Every top-level suite so far, one still running with its time until `now`. */
    const suitesAt = (now: number): SuiteTime[] =>
      [...times, ...[...open.values()].map((t) => ({ ...t, title: `${t.title} (unfinished)`, total: now - t.start }))];
    const account = (): void => {
      const s = (ms: number) => (ms / 1000).toFixed(1).padStart(7);
      const ended = suitesAt(Date.now());
      const slow = ended.filter((t) => (t.total ?? 0) >= 5000).sort((x, y) => (y.total ?? 0) - (x.total ?? 0));
      const all = ended.reduce((n, t) => n + (t.total ?? 0), 0);
      const inTests = ended.reduce((n, t) => n + t.tests, 0);
      console.log('\n  where the time went (seconds: suite, of it outside tests)');
      for (const t of slow) console.log(`  ${s(t.total ?? 0)} ${s((t.total ?? 0) - t.tests)}  ${t.title}`);
      console.log(`  ${s(Date.now() - runStart)} ${s(all - inTests)}  the whole run (root hooks: ${s(Date.now() - runStart - all).trim()})`);
      // The failures again, last, so the tail of a long CI log names them.
      const failed = (this as unknown as { failures: Mocha.Test[] }).failures;
      if (failed.length === 0) return;
      console.log(`\n  ${failed.length} failing (details above):`);
      // CI keeps only a log's tail: the message with its diff (bounded), and where in a test it was thrown.
      for (const t of failed) {
        const err = (t as Mocha.Test & { err?: Error }).err;
        const lines = String(err?.message ?? '').split('\n');
        const shown = lines.slice(0, 40).map((l) => l.slice(0, 300));
        if (lines.length > shown.length) shown.push(`... (${lines.length - shown.length} more lines)`);
        const at = String(err?.stack ?? '').split('\n').find((l) => /dist\/test\/(integration|unit|components|helpers)\//.test(l));
        console.log(`  - ${t.fullTitle()}\n${shown.map((l) => `      ${l}`).join('\n')}${at ? `\n      ${at.trim()}` : ''}`);
      }
    };
    runner.once(EVENT_RUN_END, account);
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        account();
        // Last, as a CI log's tail may hold a few lines only: the longest suites, and where the run was.
        const now = Date.now();
        const longest = suitesAt(now).sort((x, y) => (y.total ?? 0) - (x.total ?? 0)).slice(0, 3);
        console.log(`\n  longest suites: ${longest.map((t) => `${t.title} (${minutes(t.total ?? 0)})`).join('; ')}`);
        console.log(`  stopped by ${signal} ${minutes(now - runStart)} into the run` +
          (running ? `, in: ${running.title} (for ${minutes(now - running.start)})` : ''));
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    }
  }
}

export = TimedReporter;

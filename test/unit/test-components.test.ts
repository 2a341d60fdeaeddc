import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const HELPER = path.resolve(__dirname, '..', 'helpers', 'components.js');

/** In a process of its own (its cache and PATH must not leak into this run's own builds): ready()'s error, or 'built'. */
function readyIn(env: NodeJS.ProcessEnv, id: string): Promise<string> {
  const script = `
    const { RunComponents } = require(${JSON.stringify(HELPER)});
    const run = new RunComponents();
    run.ready(${JSON.stringify(id)}).then(() => 'built', (err) => err.message)
      .then(async (out) => { await run.stop(); process.stdout.write(out); });`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { env, timeout: 50_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

/**
 * The test run's component builds (test/helpers/components.ts) without Go:
 * a build that cannot run fails the suites that await it, quoting its
 * output, whether CI=true or not (a needed program is never skipped over).
 */
describe('test run components: a failed background build fails ready()', function () {
  this.timeout(60_000);
  let cache: string;
  let bin: string;
  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-run-components-'));
    // A PATH with nice and no go, wherever go is installed.
    bin = path.join(cache, 'bin');
    fs.mkdirSync(bin);
    const nice = ['/usr/bin/nice', '/bin/nice'].find((f) => fs.existsSync(f))!;
    fs.symlinkSync(nice, path.join(bin, 'nice'));
  });
  after(() => fs.rmSync(cache, { recursive: true, force: true }));

  for (const ci of [undefined, 'true']) {
    it(`rejects with the build's output${ci ? ' (CI=true)' : ''}, and keeps that output`, async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, OVMIGRATE_CACHE: cache, PATH: bin };
      if (ci) env.CI = ci;
      else delete env.CI;
      const message = await readyIn(env, 'checkpointctl');
      assert.match(message, /^building checkpointctl v\d+\.\d+\.\d+ failed \(exit \d+\); /);
      assert.match(message, /go env GOVERSION/);
      // A failed run's logs stay for a reader.
      assert.ok(fs.readdirSync(path.join(cache, 'components', 'logs')).some((f) => f.startsWith('run-')));
    });
  }

  it('refuses a component that is not pinned', async () => {
    const { RunComponents } = await import('../helpers/components.js');
    assert.throws(() => new RunComponents().declare(['no-such-component']), /no pinned component no-such-component/);
  });
});

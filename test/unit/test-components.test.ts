import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunComponents } from '../helpers/components.js';

/**
 * The test run's component builds (test/helpers/components.ts) without Go:
 * a build that cannot run fails the suites that await it, quoting its
 * output, whether CI=true or not (a needed program is never skipped over).
 */
describe("test run components: a failed background build fails ready()", function () {
  this.timeout(60_000);
  const saved = { cache: process.env.OVMIGRATE_CACHE, path: process.env.PATH, ci: process.env.CI };
  let cache: string;
  before(() => {
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-run-components-'));
    process.env.OVMIGRATE_CACHE = cache;
    // nice is there, go is not (it lives in /usr/local/go/bin or a toolchain directory).
    process.env.PATH = '/usr/bin:/bin';
  });
  after(() => {
    for (const [k, v] of [['OVMIGRATE_CACHE', saved.cache], ['PATH', saved.path], ['CI', saved.ci]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(cache, { recursive: true, force: true });
  });

  for (const ci of [undefined, 'true']) {
    it(`rejects with the build's output${ci ? ' (CI=true)' : ''}, and keeps that output`, async function () {
      if (ci) process.env.CI = ci;
      else delete process.env.CI;
      const run = new RunComponents();
      // ready() starts an undeclared build itself (start() would also announce it on mocha's output).
      await assert.rejects(run.ready('checkpointctl', this), (err: Error) => {
        assert.match(err.message, /^building checkpointctl v\d+\.\d+\.\d+ failed \(exit \d+\); /);
        assert.match(err.message, /go env GOVERSION/);
        return true;
      });
      await run.stop();
      // A failed run's logs stay for a reader.
      assert.ok(fs.readdirSync(path.join(cache, 'components', 'logs')).some((f) => f.startsWith('run-')));
    });
  }

  it('refuses a component that is not pinned', () => {
    assert.throws(() => new RunComponents().declare(['no-such-component']), /no pinned component no-such-component/);
  });
});

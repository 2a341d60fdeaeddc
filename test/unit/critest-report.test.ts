import assert from 'node:assert/strict';
import { CritestResult, SKIP_REGEX, differences, parseJunit } from '../conformance/critest-run.js';

/** ginkgo v2's JUnit report as critest v1.37.0 writes it (shortened). */
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="2" errors="0" failures="1" time="3.1">
  <testsuite name="CRI validation" package="/" tests="4" disabled="2" skipped="0" errors="0" failures="1" time="3.1">
    <testcase name="[BeforeSuite]" classname="CRI validation" status="passed" time="0.0002"></testcase>
    <testcase name="[It] [k8s.io] Streaming runtime should support exec with tty=false and stdin=false [Conformance]" classname="CRI validation" status="passed" time="1.35"></testcase>
    <testcase name="[It] [k8s.io] Idempotence StopContainer should not return an error if not found" classname="CRI validation" status="failed" time="0.2">
      <failure message="Expected &lt;*status.Error&gt;" type="failed">...</failure>
    </testcase>
    <testcase name="[It] [k8s.io] Image Manager public image with tag should be pulled and removed [Serial]" classname="CRI validation" status="skipped" time="0"></testcase>
    <testcase name="[It] [k8s.io] Security Context &quot;quoted&quot; spec &amp; more" classname="CRI validation" status="pending" time="0"></testcase>
  </testsuite>
</testsuites>`;

const result = (specs: Map<string, 'passed' | 'failed' | 'skipped'>): CritestResult =>
  ({ specs, counts: { passed: 0, failed: 0, skipped: 0 }, exitCode: 0, seconds: 0, output: '' });

describe('critest report: specs and outcomes from its JUnit file', () => {
  it('reads each [It] spec with its outcome, entities decoded, suite nodes left out', () => {
    const specs = parseJunit(REPORT);
    assert.deepEqual([...specs], [
      ['[k8s.io] Streaming runtime should support exec with tty=false and stdin=false [Conformance]', 'passed'],
      ['[k8s.io] Idempotence StopContainer should not return an error if not found', 'failed'],
      ['[k8s.io] Image Manager public image with tag should be pulled and removed [Serial]', 'skipped'],
      ['[k8s.io] Security Context "quoted" spec & more', 'skipped'],
    ]);
  });

  it('lists every spec whose outcome differs, and one missing on a side', () => {
    const a = result(new Map([['x', 'passed'], ['y', 'failed'], ['z', 'skipped']]));
    const b = result(new Map([['x', 'failed'], ['y', 'failed']]));
    assert.deepEqual(differences(a, b), ['x: passed -> failed', 'z: skipped -> absent']);
    assert.deepEqual(differences(a, a), []);
  });

  it('skips the registry-pulling specs by name, as a valid regex', () => {
    const re = new RegExp(SKIP_REGEX);
    assert.ok(re.test('[k8s.io] Image Manager public image with tag should be pulled and removed [Serial]'));
    assert.ok(!re.test('[k8s.io] Container runtime should support basic operations on container runtime should support execSync [Conformance]'));
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { missingComponent } from '../helpers/cli.js';
import { componentsRoot, installed, readPins } from '../lab/components/index.js';

/**
 * The Go-built components (test/lab/components.json), run from the cache
 * `lab components` fills (`make components` builds it, then runs this). No guest: this proves
 * each program starts, is the pinned release and needs no dynamic loader, so
 * a guest can run it from the host root share.
 */
describe('lab components built from their Go modules', function () {
  this.timeout(60_000);
  const pins = readPins();
  const version = (id: string) => pins.find((p) => p.id === id)!.version;
  const bins: Record<string, string> = {};

  /** The built programs of component `id`; a missing build fails under CI and skips elsewhere. */
  function need(ctx: Mocha.Context, id: string): void {
    const pin = pins.find((p) => p.id === id)!;
    const have = installed(pin);
    if (have) {
      Object.assign(bins, have.binaries);
      return;
    }
    missingComponent(ctx, `${id} ${pin.version} is not built in ${componentsRoot()} (run \`lab components\`)`);
  }

  /** Runs a built program (in a scratch directory: crictl looks for a crictl.yaml in its cwd); exit code, stdout, both. */
  const run = (name: string, args: string[]) => {
    const r = spawnSync(bins[name], args, { encoding: 'utf8', timeout: 30_000, cwd: '/' });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };

  it('containerd, ctr and the runc shim name the pinned containerd release', function () {
    need(this, 'containerd');
    const v = version('containerd');
    const containerd = run('containerd', ['--version']);
    assert.equal(containerd.code, 0, containerd.out);
    assert.match(containerd.out, new RegExp(`^containerd github\\.com/containerd/containerd/v2 ${v.replace(/\./g, '\\.')}\\b`));
    const ctr = run('ctr', ['--version']);
    assert.equal(ctr.code, 0, ctr.out);
    assert.match(ctr.out, new RegExp(`ctr github\\.com/containerd/containerd/v2 ${v.replace(/\./g, '\\.')}\\b`));
    const shim = run('containerd-shim-runc-v2', ['-v']);
    assert.equal(shim.code, 0, shim.out);
    assert.ok(shim.out.includes(v), shim.out);
  });

  it('crictl is the pinned cri-tools release', function () {
    need(this, 'cri-tools');
    const r = run('crictl', ['--version']);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.stdout.trim(), `crictl version ${version('cri-tools')}`);
  });

  it('critest (a compiled Go test) takes a runtime endpoint and walks its conformance specs in a dry run', function () {
    need(this, 'cri-tools');
    const help = run('critest', ['--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /-runtime-endpoint/);
    assert.match(help.out, /-ginkgo\.focus/);
    // A dry run reaches no runtime: it only proves the suite is linked in and runs.
    const dry = run('critest', ['-ginkgo.dry-run', '-ginkgo.no-color']);
    assert.equal(dry.code, 0, dry.out);
    const [, willRun, total] = /Will run (\d+) of (\d+) specs/.exec(dry.out) ?? [];
    assert.ok(Number(total) >= 100 && Number(willRun) > 0, dry.out.slice(-2000));
  });

  it('checkpointctl is the pinned release and knows inspect and show', function () {
    need(this, 'checkpointctl');
    const v = run('checkpointctl', ['--version']);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, new RegExp(`checkpointctl version ${version('checkpointctl').replace(/\./g, '\\.')}`));
    const help = run('checkpointctl', ['--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /\binspect\b/);
    assert.match(help.out, /\bshow\b/);
  });

  it('the kubelet is the pinned Kubernetes release', function () {
    need(this, 'kubernetes');
    const r = run('kubelet', ['--version']);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.stdout.trim(), `Kubernetes ${version('kubernetes')}`);
  });

  it('every program is a static ELF (no PT_INTERP): Debian guests run it as it is', function () {
    for (const pin of pins) need(this, pin.id);
    for (const [name, file] of Object.entries(bins)) {
      const b = fs.readFileSync(file);
      assert.equal(b.readUInt32BE(0), 0x7f454c46, `${name} is ELF`);
      const phoff = Number(b.readBigUInt64LE(0x20));
      const types = Array.from({ length: b.readUInt16LE(0x38) }, (_, i) => b.readUInt32LE(phoff + i * b.readUInt16LE(0x36)));
      assert.ok(!types.includes(3), `${name} has a PT_INTERP header`);
    }
  });
});

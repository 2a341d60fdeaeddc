import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { components } from '../helpers/components.js';
import { readPins } from '../lab/components/index.js';

/** Every pinned component, as `make test` builds them: each id's programs but its test binaries (critest: `make conformance` builds and checks it). */
const IN_RUN = ['containerd', 'containerd-2.4', 'cri-tools', 'checkpointctl', 'kubernetes'];

/**
 * The Go-built components (test/lab/components.json) the run builds in the
 * background from its start (test/helpers/components.ts); this suite runs
 * last in `make test`, so a cold build has the whole run to finish. No
 * guest: this proves each program starts, is the pinned release and needs
 * no dynamic loader, so a guest can run it from the host root share. A
 * failed build fails the test that needs it, with the build's output.
 */
describe('lab components built from their Go modules', function () {
  this.timeout(60_000);
  components.declare(IN_RUN);
  const pins = readPins();
  const version = (id: string) => pins.find((p) => p.id === id)!.version;
  const bins: Record<string, string> = {};

  /** The built programs of component `id`, awaiting its build. */
  async function need(ctx: Mocha.Context, id: string): Promise<void> {
    Object.assign(bins, (await components.ready(id, ctx)).binaries);
  }

  /** Runs a built program (in a scratch directory: crictl looks for a crictl.yaml in its cwd); exit code, stdout, both. */
  const run = (name: string, args: string[]) => {
    const r = spawnSync(bins[name], args, { encoding: 'utf8', timeout: 30_000, cwd: '/' });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
  };

  it('containerd, ctr and the runc shim name the pinned containerd release', async function () {
    await need(this, 'containerd');
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

  it('the 2.4 daemon of a lab node names its pinned containerd release', async function () {
    await need(this, 'containerd-2.4');
    const r = run('containerd-2.4', ['--version']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`^containerd github\\.com/containerd/containerd/v2 ${version('containerd-2.4').replace(/\./g, '\\.')}\\b`));
  });

  it('crictl is the pinned cri-tools release', async function () {
    await need(this, 'cri-tools');
    const r = run('crictl', ['--version']);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.stdout.trim(), `crictl version ${version('cri-tools')}`);
  });

  it('checkpointctl is the pinned release and knows inspect and show', async function () {
    await need(this, 'checkpointctl');
    const v = run('checkpointctl', ['--version']);
    assert.equal(v.code, 0, v.out);
    assert.match(v.out, new RegExp(`checkpointctl version ${version('checkpointctl').replace(/\./g, '\\.')}`));
    const help = run('checkpointctl', ['--help']);
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /\binspect\b/);
    assert.match(help.out, /\bshow\b/);
  });

  it('the kubelet is the pinned Kubernetes release', async function () {
    await need(this, 'kubernetes');
    const r = run('kubelet', ['--version']);
    assert.equal(r.code, 0, r.out);
    assert.equal(r.stdout.trim(), `Kubernetes ${version('kubernetes')}`);
  });

  it('every program is a static ELF (no PT_INTERP): Debian guests run it as it is', async function () {
    for (const id of IN_RUN) await need(this, id);
    for (const [name, file] of Object.entries(bins)) {
      const b = fs.readFileSync(file);
      assert.equal(b.readUInt32BE(0), 0x7f454c46, `${name} is ELF`);
      const phoff = Number(b.readBigUInt64LE(0x20));
      const types = Array.from({ length: b.readUInt16LE(0x38) }, (_, i) => b.readUInt32LE(phoff + i * b.readUInt16LE(0x36)));
      assert.ok(!types.includes(3), `${name} has a PT_INTERP header`);
    }
  });
});

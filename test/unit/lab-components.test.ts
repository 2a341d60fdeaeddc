import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BadDataError } from '../../common/errors.js';
import { buildFlags, componentBinaries, componentBinary, componentDir, installed, kubernetesWrapperGoMod, readPins, selectPins } from '../lab/components/index.js';
import { stampOf } from '../lab/components/installed.js';

/** The head of k8s.io/kubernetes' go.mod as a release ships it (shortened). */
const KUBERNETES_GO_MOD = `// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	github.com/blang/semver/v4 v4.0.0
	k8s.io/api v0.0.0
	k8s.io/kubelet v0.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/cri-streaming => ./staging/src/k8s.io/cri-streaming
	k8s.io/kubelet => ./staging/src/k8s.io/kubelet
)
`;

describe('lab components: pins and build recipe', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-pins-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pinsFile = (value: unknown) => {
    const file = path.join(dir, `${Math.random().toString(16).slice(2)}.json`);
    fs.writeFileSync(file, JSON.stringify(value));
    return file;
  };

  it('reads the committed pins: every program once, released versions, kubelet and cri-tools of one minor', () => {
    const pins = readPins();
    const ids = pins.map((p) => p.id);
    for (const id of ['containerd', 'cri-tools', 'checkpointctl', 'kubernetes']) assert.ok(ids.includes(id), id);
    const programs = pins.flatMap((p) => p.binaries.map((b) => b.name));
    for (const name of ['containerd', 'crictl', 'critest', 'checkpointctl', 'kubelet']) assert.ok(programs.includes(name), name);
    const minor = (v: string) => v.split('.')[1];
    const kubernetes = pins.find((p) => p.id === 'kubernetes')!;
    assert.equal(minor(kubernetes.version), minor(pins.find((p) => p.id === 'cri-tools')!.version));
    assert.equal(minor(kubernetes.staging!), minor(kubernetes.version));
    assert.match(pins.find((p) => p.id === 'containerd')!.version, /^v2\.[23]\./);
    assert.equal(pins.find((p) => p.id === 'cri-tools')!.binaries.find((b) => b.name === 'critest')!.test, true);
  });

  it('selects programs: an id alone without its test binaries, ID:PROGRAM by name, nothing selected is everything', () => {
    const pins = readPins(pinsFile({
      t: { module: 'example.com/t', version: 'v1.0.0', binaries: [{ name: 'tctl', package: './cmd/tctl' }, { name: 'ttest', package: './cmd/ttest', test: true }] },
      u: { module: 'example.com/u', version: 'v1.0.0', binaries: [{ name: 'u', package: '.' }] },
    }));
    const names = (selectors?: string[]) => selectPins(pins, selectors).map((s) => `${s.pin.id}:${s.programs.join(',')}`);
    assert.deepEqual(names(['t']), ['t:tctl']);
    assert.deepEqual(names(['t:ttest']), ['t:ttest']);
    assert.deepEqual(names(['u', 't:ttest', 't']), ['t:tctl,ttest', 'u:u'], 'one selection per component, in the pins\' order');
    assert.deepEqual(names(), ['t:tctl,ttest', 'u:u']);
    assert.throws(() => selectPins(pins, ['v']), /no pinned component v/);
    assert.throws(() => selectPins(pins, ['t:u']), /component t has no program u/);
    // The committed pins: a test run's cri-tools is crictl; critest only by name.
    assert.deepEqual(selectPins(readPins(), ['cri-tools'])[0].programs, ['crictl']);
  });

  it('refuses a pin that is not a release, a program named twice, and flags with spaces', () => {
    const base = { module: 'example.com/a', version: 'v1.2.3', binaries: [{ name: 'a', package: './cmd/a' }] };
    assert.throws(() => readPins(pinsFile({ a: { ...base, version: 'main' } })), BadDataError);
    assert.throws(() => readPins(pinsFile({ a: base, b: { ...base, module: 'example.com/b' } })), /named twice/);
    assert.throws(() => readPins(pinsFile({ a: { ...base, set: { 'main.v': 'x -X main.w=y' } } })), BadDataError);
    assert.throws(() => readPins(pinsFile({ a: { ...base, binaries: [{ name: 'a', package: '../escape' }] } })), BadDataError);
    assert.equal(readPins(pinsFile({ '//': 'a comment', a: base })).length, 1);
  });

  it('stamps the release into the binary and keeps builds path-free and stripped', () => {
    const [pin] = readPins(pinsFile({
      kubernetes: {
        module: 'k8s.io/kubernetes', version: 'v1.37.2', staging: 'v0.37.2', tags: ['no_btrfs'],
        set: { 'k8s.io/component-base/version.gitVersion': '{version}', 'k8s.io/component-base/version.gitMinor': '{minor}' },
        binaries: [{ name: 'kubelet', package: 'k8s.io/kubernetes/cmd/kubelet' }],
      },
    }));
    assert.deepEqual(buildFlags(pin), [
      '-trimpath', '-tags', 'no_btrfs', '-ldflags',
      '-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 -X k8s.io/component-base/version.gitMinor=37',
    ]);
  });

  it('wraps k8s.io/kubernetes: requires it, replaces each of its staging modules with the v0 release, keeps go and godebug', () => {
    const [pin] = readPins(pinsFile({
      kubernetes: { module: 'k8s.io/kubernetes', version: 'v1.37.2', staging: 'v0.37.2', binaries: [{ name: 'kubelet', package: 'k8s.io/kubernetes/cmd/kubelet' }] },
    }));
    const mod = kubernetesWrapperGoMod(pin, KUBERNETES_GO_MOD);
    assert.match(mod, /^go 1\.26\.0$/m);
    assert.match(mod, /^godebug default=go1\.26$/m);
    assert.match(mod, /^require k8s\.io\/kubernetes v1\.37\.2$/m);
    const replaced = [...mod.matchAll(/^\t(\S+) => (\S+) (\S+)$/gm)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(replaced, [
      ['k8s.io/api', 'k8s.io/api', 'v0.37.2'],
      ['k8s.io/cri-streaming', 'k8s.io/cri-streaming', 'v0.37.2'],
      ['k8s.io/kubelet', 'k8s.io/kubelet', 'v0.37.2'],
    ]);
    assert.throws(() => kubernetesWrapperGoMod(pin, 'module k8s.io/kubernetes\n\ngo 1.26.0\n'), /replaces no staging module/);
  });

  it('takes a cached build only when its stamp matches the pin and every program is there', () => {
    const saved = process.env.OVMIGRATE_CACHE;
    process.env.OVMIGRATE_CACHE = path.join(dir, 'cache');
    try {
      const pins = readPins(pinsFile({ a: { module: 'example.com/a', version: 'v1.2.3', binaries: [{ name: 'a1', package: './cmd/a1' }, { name: 'a2', package: './cmd/a2' }] } }));
      const [pin] = pins;
      const bin = path.join(componentDir(pin), 'bin');
      fs.mkdirSync(bin, { recursive: true });
      const record = { id: 'a', module: pin.module, version: pin.version, stamp: stampOf(pin), goVersion: 'go1.26.8', seconds: 1, builtAt: '' };
      fs.writeFileSync(path.join(componentDir(pin), 'build.json'), JSON.stringify(record));
      fs.writeFileSync(path.join(bin, 'a1'), '', { mode: 0o755 });
      assert.equal(installed(pin), undefined, 'a2 is missing');
      assert.deepEqual(installed(pin, undefined, ['a1'])?.binaries, { a1: path.join(bin, 'a1') }, 'a build of a1 alone serves who wants a1');
      assert.equal(componentBinary('a1', pins), path.join(bin, 'a1'));
      assert.throws(() => componentBinary('a2', pins), /lab components a:a2/);
      assert.throws(() => componentBinaries(pins), /a v1\.2\.3.*lab components/);
      fs.writeFileSync(path.join(bin, 'a2'), '', { mode: 0o755 });
      assert.deepEqual(Object.keys(installed(pin)!.binaries), ['a1', 'a2']);
      assert.equal(installed(pin, 'go1.27.0'), undefined, 'another Go rebuilds');
      const [changed] = readPins(pinsFile({ a: { module: 'example.com/a', version: 'v1.2.3', tags: ['x'], binaries: [{ name: 'a1', package: './cmd/a1' }, { name: 'a2', package: './cmd/a2' }] } }));
      assert.equal(installed(changed), undefined, 'another pin (here a tag) rebuilds');
      assert.deepEqual(componentBinaries(pins), { a1: path.join(bin, 'a1'), a2: path.join(bin, 'a2') });
    } finally {
      if (saved === undefined) delete process.env.OVMIGRATE_CACHE;
      else process.env.OVMIGRATE_CACHE = saved;
    }
  });
});

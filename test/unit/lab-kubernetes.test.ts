import assert from 'node:assert/strict';
import { containerdV2Config } from '../lab/containerd-v2.js';
import { criConfigLines } from '../lab/cri-config.js';
import {
  CNI_BIN_DIR, POD_SUBNET, checkpointUrl, cniConflist, inPodSubnet, kubeletConfig, staticPodFile, staticPodManifest, staticPodName,
} from '../lab/kubernetes/index.js';

describe('lab Kubernetes node: its configs', () => {
  it('the kubelet: standalone on the given CRI socket, static pods, anonymous and AlwaysAllow, cgroupfs, no swap or cgroup v1 refusal', () => {
    const c = JSON.parse(kubeletConfig({ runtimeSocket: '/run/ovmigrate/cri.sock' })) as Record<string, any>;
    assert.equal(c.apiVersion, 'kubelet.config.k8s.io/v1beta1');
    assert.equal(c.kind, 'KubeletConfiguration');
    assert.equal(c.containerRuntimeEndpoint, 'unix:///run/ovmigrate/cri.sock');
    assert.equal(c.staticPodPath, '/etc/kubernetes/manifests');
    assert.deepEqual(c.authentication, { anonymous: { enabled: true }, webhook: { enabled: false } });
    assert.deepEqual(c.authorization, { mode: 'AlwaysAllow' });
    assert.equal(c.port, 10250);
    assert.equal(c.cgroupDriver, 'cgroupfs');
    assert.equal(c.failSwapOn, false);
    assert.equal(c.failCgroupV1, false);
    // Longer than the 2 min default: the kubelet's deadline for a CheckpointContainer under TCG.
    assert.ok(Number.parseInt(c.runtimeRequestTimeout, 10) >= 5);
  });

  it('CNI: one bridge with host-local addresses in the pod subnet, and loopback', () => {
    const c = JSON.parse(cniConflist()) as { cniVersion: string; plugins: Record<string, any>[] };
    assert.equal(c.cniVersion, '1.0.0');
    assert.deepEqual(c.plugins.map((p) => p.type), ['bridge', 'loopback']);
    assert.equal(c.plugins[0].ipam.type, 'host-local');
    assert.equal(c.plugins[0].isGateway, true);
    assert.equal(c.plugins[0].ipMasq, false);
    assert.deepEqual(c.plugins[0].ipam.ranges, [[{ subnet: POD_SUBNET }]]);
    assert.equal(inPodSubnet('10.88.0.5'), true);
    assert.equal(inPodSubnet('10.89.0.5'), false);
    assert.equal(inPodSubnet('10.88.0'), false);
    assert.equal(CNI_BIN_DIR, '/usr/lib/cni');
  });

  it("containerd's CRI config: the CNI dirs when given, none otherwise", () => {
    const base = { sandboxImage: 'p', runtimes: [{ name: 'ovmigrate', type: 'io.containerd.ovmigrate.v1' }] };
    const withCni = criConfigLines({ ...base, cni: { binDir: '/usr/lib/cni', confDir: '/etc/cni/net.d' } }).join('\n');
    assert.match(withCni, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.cni\]\n {2}bin_dir = "\/usr\/lib\/cni"\n {2}conf_dir = "\/etc\/cni\/net\.d"/);
    assert.doesNotMatch(criConfigLines(base).join('\n'), /\.cni\]/);
  });

  it('containerd 2.x: v2.3 reads config version 3 with restore through CreateContainer; v2.4 its version 4 without the removed key', () => {
    const v23 = containerdV2Config();
    assert.match(v23, /^version = 3\n/);
    assert.match(v23, /enable_criu = true\n {2}enable_experimental_restore_via_create = true/);
    const v24 = containerdV2Config({ program: 'containerd-2.4' });
    assert.match(v24, /^version = 4\n/);
    assert.match(v24, /enable_criu = true/);
    assert.doesNotMatch(v24, /restore_via_create/);
    assert.equal(v24.replace(/^version = 4\n/, ''), v23.replace(/^version = 3\n/, '').replace('  enable_experimental_restore_via_create = true\n', ''), 'the rest is the same');
  });

  it('static pods: the manifest, the name the kubelet gives them and the checkpoint URL', () => {
    const pod = { name: 'counter', containers: [{ name: 'c', image: 'localhost/x:latest', command: ['sh', '-c', 'sleep 1'] }] };
    const m = JSON.parse(staticPodManifest(pod)) as Record<string, any>;
    assert.equal(m.kind, 'Pod');
    assert.deepEqual(m.metadata, { name: 'counter' });
    assert.equal(m.spec.containers[0].imagePullPolicy, 'Never');
    assert.deepEqual(m.spec.containers[0].command, ['sh', '-c', 'sleep 1']);
    assert.equal(staticPodFile('counter'), '/etc/kubernetes/manifests/counter.json');
    assert.equal(staticPodName('counter', 'Node-A'), 'counter-node-a');
    assert.equal(checkpointUrl(pod, 'node-a', 'c'), 'https://127.0.0.1:10250/checkpoint/default/counter-node-a/c');
    assert.equal(checkpointUrl({ ...pod, namespace: 'ns' }, 'node-a', 'c'), 'https://127.0.0.1:10250/checkpoint/ns/counter-node-a/c');
  });
});

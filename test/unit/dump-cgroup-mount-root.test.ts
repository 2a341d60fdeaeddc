import assert from 'node:assert/strict';
import { cgroupRootInNs } from '../../introspect/dump/mountpoints.js';

describe('dump: a cgroup mount\'s root is the one its container sees (relative to its cgroup namespace)', () => {
  it('strips the namespace root, as the kernel shows the mount inside the namespace', () => {
    assert.equal(cgroupRootInNs('/ovm-cdtwo/abc', '/ovm-cdtwo/abc'), '/');
    assert.equal(cgroupRootInNs('/ovm-cdtwo/abc/sub', '/ovm-cdtwo/abc'), '/sub');
  });

  it('leaves it alone without a namespace, or when the mount is outside the namespace\'s subtree', () => {
    assert.equal(cgroupRootInNs('/ovm-cdtwo/abc', '/'), '/ovm-cdtwo/abc');
    assert.equal(cgroupRootInNs('/', '/'), '/');
    assert.equal(cgroupRootInNs('/ovm-cdtwo/abcdef', '/ovm-cdtwo/abc'), '/ovm-cdtwo/abcdef');
    assert.equal(cgroupRootInNs('/other', '/ovm-cdtwo/abc'), '/other');
  });
});

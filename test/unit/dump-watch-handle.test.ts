import assert from 'node:assert/strict';
import { FileTable } from '../../introspect/dump/files.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { fakeProcess } from '../fuzz/fake-process.js';

describe('inotify watches and fanotify inode marks on overlayfs', () => {
  it('are refused, naming the fd, the watch and why, as criu dump 3.17 refuses them', () => {
    const p = fakeProcess();
    // The tmpfs the inotify watch and the fanotify inode mark are on, turned into an overlay.
    p.k.write(p.tmpSb, 'super_block', { s_type: p.k.new('file_system_type', { name: p.k.cstr('overlay') }) });
    const prog = p.k.program();
    const files = new FileTable({ prog, ids: new IdAllocator(), pages: new PageInfo(prog), root: p.vfs.root, mntIds: false, netNsId: () => 1, vpid: () => 0 });
    files.fdinfo(KObject.struct(prog, 'task_struct', p.task), 'pid 50 (t)');
    const overlay = files.problems.map((x) => x.text).filter((t) => t.includes('overlayfs'));
    assert.equal(overlay.length, 2, files.problems.join('\n'));
    assert.match(overlay[0], /^pid 50 \(t\) fd 7: inotify watch 1 on inode \d+ \(device 0:42\) is on overlayfs, whose file handles do not open \(criu dump 3\.17 refuses it too/);
    assert.match(overlay[1], /^pid 50 \(t\) fd 9: fanotify .* is on overlayfs/);
  });
});

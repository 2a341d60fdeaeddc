import assert from 'node:assert/strict';
import { FileTable } from '../../introspect/dump/files.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { fakeProcess } from '../fuzz/fake-process.js';

describe('files.img: a fanotify group (fd dumper, fake kernel)', () => {
  const table = (p: ReturnType<typeof fakeProcess>, mntIds: boolean) =>
    new FileTable({ prog: p.prog, ids: new IdAllocator(), pages: new PageInfo(p.prog), root: p.vfs.root, mntIds, netNsId: () => 1, vpid: () => 0 });

  it('an inode mark with its path and file handle, a mount mark with its mnt_id, s_dev and mount point, as criu writes them', () => {
    const p = fakeProcess();
    const files = table(p, false);
    const fds = files.fdinfo(KObject.struct(p.prog, 'task_struct', p.task), 'pid 50');
    assert.deepEqual(files.problems.map((x) => x.text), []);
    assert.equal(fds.find((f) => f.fd === 9)?.type, 'FANOTIFY');
    const ffy = files.entries.find((e) => e.type === 'FANOTIFY')!.ffy as { faflags: number; evflags: number; mark: Record<string, unknown>[] };
    assert.deepEqual([ffy.faflags, ffy.evflags], [3, 0x8000]);
    assert.deepEqual(ffy.mark.map((m) => [m.type, m.mask, m.s_dev]), [['INODE', 2, 0x2a], ['MOUNT', 8, 0x2a]]);
    assert.equal((ffy.mark[0].ie as { f_handle: { path: string } }).f_handle.path, '/run/data/note');
    assert.deepEqual(ffy.mark[1].me, { mnt_id: 30, path: '/run/data' });
  });

  it('with the mount namespace dumped, mount marks carry no path and inode marks their mount (criu: only then)', () => {
    const p = fakeProcess();
    const files = table(p, true);
    files.fdinfo(KObject.struct(p.prog, 'task_struct', p.task), 'pid 50');
    const ffy = files.entries.find((e) => e.type === 'FANOTIFY')!.ffy as { mark: Record<string, { mnt_id?: number; f_handle?: { mnt_id?: number } }>[] };
    assert.deepEqual(ffy.mark[1].me, { mnt_id: 30 });
    assert.equal(ffy.mark[0].ie.f_handle!.mnt_id, 30);
  });
});

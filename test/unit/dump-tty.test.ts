import assert from 'node:assert/strict';
import { decodeImage, encodeImage, entryObject, makeEntry } from '../../introspect/criu/image-codec.js';
import { FileTable } from '../../introspect/dump/files.js';
import { IdAllocator } from '../../introspect/dump/ids.js';
import { TtyTable, statDev, termiosEntry } from '../../introspect/dump/ttys.js';
import { KObject } from '../../introspect/kernel/object.js';
import { PageInfo } from '../../introspect/linux/pages.js';
import { ttyState } from '../../introspect/linux/tty.js';
import { fakeProcess } from '../fuzz/fake-process.js';

describe('ttys: a pty slave dumped as criu/tty.c dumps it (fake kernel)', () => {
  const p = fakeProcess();
  const table = (sessionLeaders?: Set<number>) => new FileTable({
    prog: p.prog, ids: new IdAllocator(), pages: new PageInfo(p.prog), root: p.vfs.root, mntIds: false, netNsId: () => 1, vpid: () => 1, sessionLeaders,
  });

  it('encodes devices as stat(2) does, and c_cc as CRIU copies glibc\'s 32 bytes over 19 u32s', () => {
    assert.equal(statDev(136 << 20), 0x8800);
    assert.equal(statDev(0x28), 0x28);
    assert.equal(statDev((8 << 20) | 0x123), 0x23 | (8 << 8) | (0x100 << 12), "minor bits past 8 go above the major");
    const cc = Buffer.from([3, 0x1c, 0x7f, 0x15, 4, 0, 1, 0, 0x11, 0x13, 0x1a, 0, 0x12, 0x0f, 0x17, 0x16, 0, 0, 0]);
    const e = termiosEntry({ iflag: 1, oflag: 2, cflag: 3, lflag: 4, line: 0, cc }) as { c_cc: number[]; c_ispeed: number };
    assert.deepEqual(e.c_cc.slice(0, 5), [0x157f1c03, 0x00010004, 0x001a1311, 0x16170f12, 0]);
    assert.equal(e.c_cc.length, 19);
    assert.equal(e.c_ispeed, 0);
  });

  it('reads the tty_struct behind the file', () => {
    const s = ttyState(KObject.struct(p.prog, 'file', p.tty), false);
    assert.deepEqual([s.index, s.driverType, s.driverSubtype, s.winsize.row, s.winsize.col, s.session, s.exclusive, s.packet, s.locked],
      [0, 4, 2, 33, 77, 0x1234n, false, false, false]);
  });

  it('writes the device\'s reg entry, the tty entry and one tty-info entry, which round-trip through the codec', () => {
    const files = table(new Set([1]));
    const task = KObject.struct(p.prog, 'task_struct', p.task);
    const fds = files.fdinfo(task, 'pid 50');
    const fd8 = fds.find((f) => f.fd === 8)!;
    assert.equal(fd8.type, 'TTY');
    const tty = files.entries.find((e) => e.type === 'TTY') as { id: number; tty: { regf_id: number; tty_info_id: number } };
    assert.equal(fd8.id, tty.id);
    assert.equal(tty.tty.tty_info_id, 0);
    const reg = files.entries.find((e) => e.id === tty.tty.regf_id) as { type: string; reg: { name: string } };
    assert.deepEqual([reg.type, reg.reg.name], ['REG', '/dev/pts/0']);
    files.finish();
    assert.deepEqual(files.problems.filter((x) => x.kind === 'tty'), []);
    const info = files.ttys.infos[0];
    // The task's controlling terminal: its session and group as TIOCGSID/TIOCGPGRP show them in the task.
    assert.deepEqual([info.type, info.sid, info.pgrp, info.rdev, info.pty], ['PTY', 1, 1, 0x8800, { index: 0 }]);
    const image = decodeImage(encodeImage('TTY_INFO', [makeEntry('tty_info_entry', info)]));
    assert.deepEqual(entryObject(image, 0).winsize, { ws_row: 33, ws_col: 77, ws_xpixel: 0, ws_ypixel: 0 });
    const filesImage = decodeImage(encodeImage('FILES', files.entries.map((e) => makeEntry('file_entry', e))));
    assert.ok(filesImage.entries.length >= 2);
  });

  it('refuses a session whose leader is outside the dump, and a second slave whose master is outside', () => {
    const files = table(new Set([7]));
    files.fdinfo(KObject.struct(p.prog, 'task_struct', p.task), 'pid 50');
    files.finish();
    assert.match(files.problems.find((x) => x.kind === 'tty')!.text, /session 1, whose leader is outside the dump/);
    const ttys = new TtyTable();
    const state = ttyState(KObject.struct(p.prog, 'file', p.tty), false);
    ttys.info(0, state, () => ({}), { task: 'pid 1 (sh)', fd: 'fd 0', sid: 0 });
    ttys.info(2, { ...state, tty: KObject.struct(p.prog, 'tty_struct', state.tty.address + 8n) }, () => ({}), { task: 'pid 2 (sh)', fd: 'fd 5', sid: 0 });
    assert.match(ttys.finish(undefined)[0].text, /a second pty slave \(index 1\)/);
  });
});

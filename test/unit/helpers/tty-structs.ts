import { FakeKernel } from './fake-program.js';
import { FakeVfs } from './fake-vfs.js';
import { Fields, StructDecls } from './kernel-types.js';

/** The 6.1/6.12 members the tty reader uses (introspect/linux/tty.ts): the session and group under tty_struct.ctrl. */
export function ttyStructs(base: StructDecls): StructDecls {
  return {
    signal_struct: [...(base.signal_struct as Fields), ['tty', '*tty_struct']],
    tty_file_private: [['tty', '*tty_struct'], ['file', '*file'], ['list', 'list_head']],
    tty_driver: [['major', 's32'], ['minor_start', 's32'], ['num', 'u32'], ['type', 's16'], ['subtype', 's16']],
    ktermios: [['c_iflag', 'u32'], ['c_oflag', 'u32'], ['c_cflag', 'u32'], ['c_lflag', 'u32'], ['c_line', 'u8'], ['c_cc', 'u8[19]'],
      ['c_ispeed', 'u32'], ['c_ospeed', 'u32']],
    winsize: [['ws_row', 'u16'], ['ws_col', 'u16'], ['ws_xpixel', 'u16'], ['ws_ypixel', 'u16']],
    tty_ctrl: [['pgrp', 'ptr'], ['session', 'ptr'], ['pktstatus', 'u8'], ['packet', 'bool']],
    tty_struct: [['driver', '*tty_driver'], ['index', 's32'], ['termios', 'ktermios'], ['termios_locked', 'ktermios'], ['winsize', 'winsize'],
      ['ctrl', 'tty_ctrl'], ['flags', 'u64'], ['link', '*tty_struct']],
  };
}

/** pts/0 of a devpts: a slave tty_struct (its master elsewhere), 33x77, and a file open on it; returns both. */
export function fakePtySlave(k: FakeKernel, vfs: FakeVfs, session: bigint): { file: bigint; tty: bigint } {
  const driver = k.new('tty_driver', { major: 136, type: 4, subtype: 2 });
  const tty = k.new('tty_struct', {
    driver, index: 0, 'termios.c_lflag': 0o105073, 'termios.c_cflag': 0o277, 'winsize.ws_row': 33, 'winsize.ws_col': 77,
    'ctrl.session': session, 'ctrl.pgrp': session,
  });
  const ttyFops = k.symbol('tty_fops');
  const devpts = vfs.superBlock('devpts', 0x28);
  const inode = k.new('inode', { i_mode: 0o20620, i_rdev: 136 << 20, i_sb: devpts, 'i_gid.val': 5 });
  const file = vfs.file(vfs.dentry('0', vfs.path('dev/pts'), { d_inode: inode }), vfs.rootMount, { f_op: ttyFops, f_flags: 0o100002 });
  k.write(file, 'file', { private_data: k.new('tty_file_private', { tty, file }) });
  return { file, tty };
}

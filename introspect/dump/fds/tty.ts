import { openFileState } from '../../linux/open-file.js';
import { PTY_TYPE_MASTER, PTY_TYPE_SLAVE, TTY_DRIVER_TYPE_PTY, isControllingTty, ttyState } from '../../linux/tty.js';
import { statDev, termiosEntry } from '../ttys.js';
import { FdDumper, fdProblem } from './fd-dumper.js';

/**
 * Ttys (criu/tty.c dump_one_tty): a regular-file entry under an id of its
 * own names the device (regf_id), the tty file entry points at a tty-info
 * entry holding the terminal's state once per tty, as CRIU's parasite reads
 * it with ioctls in the dumped task: TIOCGSID and TIOCGPGRP answer only in a
 * task the tty controls (0 elsewhere), a hung-up file answers nothing.
 * Only pty slaves: what `ctr run -t` gives a container, its master held by
 * the shim outside (runc dumps and restores it with orphan-pts-master).
 */
export const ttyFd: FdDumper = {
  kinds: ['tty'],
  dump(files, fd) {
    const hungUp = fd.file.member('f_op').value() === fd.file.prog.symbols.lookup('hung_up_tty_fops')?.address;
    const state = ttyState(fd.file, hungUp);
    if (state.driverType !== TTY_DRIVER_TYPE_PTY || state.driverSubtype !== PTY_TYPE_SLAVE) {
      const what = state.driverType === TTY_DRIVER_TYPE_PTY && state.driverSubtype === PTY_TYPE_MASTER
        ? 'a pty master (a pty pair inside the dump needs its queued data; not supported yet)' : 'a console, virtual or serial terminal (only pty slaves are supported)';
      return { problems: [fdProblem(fd, `tty ${fd.name} is ${what}`)] };
    }
    const st = openFileState(fd.file);
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'TTY' } };
    const fown = files.fown(fd.file);
    const regfId = files.ids.newFileId();
    files.regEntry(regfId, st.path, fd.identity, st.flags, st.pos, fown, fd.task, fd.fd, st.inode);
    const infoId = state.index << 1;
    const controls = !hungUp && isControllingTty(fd.owner, state.tty);
    const pidOf = (pid: bigint) => (controls && pid !== 0n ? files.vpid(pid) : 0);
    const sid = pidOf(state.session);
    const inode = fd.identity.inode;
    const base = {
      id: infoId, type: 'PTY', rdev: statDev(inode.member('i_rdev').num()), pty: { index: state.index }, dev: statDev(fd.identity.dev),
      uid: inode.member('i_uid.val').num(), gid: inode.member('i_gid.val').num(),
    };
    const problem = files.ttys.info(infoId, state, () => (hungUp
      ? { ...base, locked: false, exclusive: false, packet_mode: false, sid: 0, pgrp: 0 }
      : {
        ...base, locked: state.locked, exclusive: state.exclusive, packet_mode: state.packet, sid, pgrp: pidOf(state.pgrp),
        termios: termiosEntry(state.termios), termios_locked: termiosEntry(state.termiosLocked),
        winsize: { ws_row: state.winsize.row, ws_col: state.winsize.col, ws_xpixel: state.winsize.xpixel, ws_ypixel: state.winsize.ypixel },
      }), { task: fd.task, fd: fd.fd, sid });
    files.entries.push({ type: 'TTY', id, tty: { id, tty_info_id: infoId, flags: st.flags, fown, regf_id: regfId } });
    return { opened: { id, type: 'TTY' }, problems: problem ? [problem] : undefined };
  },
};

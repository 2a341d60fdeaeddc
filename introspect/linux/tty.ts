import { BadDataError } from '../../common/errors.js';
import { KObject } from '../kernel/object.js';

/** include/linux/tty_driver.h: driver types and the pty subtypes. */
export const TTY_DRIVER_TYPE_PTY = 0x0004;
export const PTY_TYPE_MASTER = 0x0001;
export const PTY_TYPE_SLAVE = 0x0002;

/** include/linux/tty.h: bits of tty_struct.flags. */
const TTY_EXCLUSIVE = 3;
const TTY_PTY_LOCK = 16;

/** include/uapi/asm-generic/termbits.h NCCS: control characters a struct ktermios holds. */
export const NCCS = 19;

/** Largest pty index followed: devpts hands out at most NR_UNIX98_PTY_MAX (1 << 20) indices. */
const MAX_INDEX = 1 << 20;

export interface Termios {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  /** c_cc, NCCS bytes. */
  cc: Buffer;
}

export interface Winsize {
  row: number;
  col: number;
  xpixel: number;
  ypixel: number;
}

/** A terminal as its struct tty_struct holds it, seen through one open file of it. */
export interface TtyState {
  tty: KObject;
  index: number;
  /** tty_driver.type and .subtype. */
  driverType: number;
  driverSubtype: number;
  /** The file was hung up (f_op = hung_up_tty_fops): its ioctls all fail with EIO. */
  hungUp: boolean;
  termios: Termios;
  termiosLocked: Termios;
  winsize: Winsize;
  /** struct pid pointers (0n when unset): the session the tty controls and its foreground group. */
  session: bigint;
  pgrp: bigint;
  exclusive: boolean;
  /** Unix98 pty master state (TIOCGPKT, TIOCGPTLCK): kept on the master's tty_struct. */
  packet: boolean;
  locked: boolean;
}

function termios(t: KObject): Termios {
  const cc = t.member('c_cc');
  return {
    iflag: t.member('c_iflag').num(), oflag: t.member('c_oflag').num(), cflag: t.member('c_cflag').num(), lflag: t.member('c_lflag').num(),
    line: t.member('c_line').num(), cc: t.prog.read(cc.address, Math.min(NCCS, cc.size), cc.path),
  };
}

/**
 * The tty behind an open tty file: file->private_data is a struct
 * tty_file_private whose tty is the tty_struct (drivers/tty/tty_io.c
 * tty_add_file). The session, foreground group and packet mode moved into
 * tty_struct.ctrl in 5.14 ("tty: move ctrl-related members of tty_struct
 * into ctrl"): older kernels keep them at the top level.
 */
export function ttyState(file: KObject, hungUp: boolean): TtyState {
  const priv = file.member('private_data').value();
  if (priv === 0n) throw new BadDataError(`${file.path}.private_data of a tty file is NULL`);
  const tty = KObject.struct(file.prog, 'tty_file_private', priv).member('tty').deref();
  const index = tty.member('index').num();
  if (index < 0 || index >= MAX_INDEX) throw new BadDataError(`${tty.path}.index is ${index}`);
  const driver = tty.member('driver').deref();
  const driverType = driver.member('type').num();
  const driverSubtype = driver.member('subtype').num();
  const master = driverType === TTY_DRIVER_TYPE_PTY && driverSubtype === PTY_TYPE_MASTER;
  const link = tty.member('link').value();
  // tty_pair_get_tty(): a pty master's termios, window size, session and group requests go to its slave (tty->link).
  const real = master && link !== 0n ? KObject.struct(file.prog, 'tty_struct', link) : tty;
  const ctrl = (t: KObject) => (t.has('ctrl') ? t.member('ctrl') : t);
  const flags = tty.member('flags').value();
  const w = real.member('winsize');
  return {
    tty, index, driverType, driverSubtype, hungUp,
    termios: termios(real.member('termios')),
    termiosLocked: termios(real.member('termios_locked')),
    winsize: { row: w.member('ws_row').num(), col: w.member('ws_col').num(), xpixel: w.member('ws_xpixel').num(), ypixel: w.member('ws_ypixel').num() },
    session: ctrl(real).member('session').value(), pgrp: ctrl(real).member('pgrp').value(),
    exclusive: (flags >> BigInt(TTY_EXCLUSIVE) & 1n) === 1n,
    // pty_unix98_ioctl answers TIOCGPKT and TIOCGPTLCK on the master only (ENOTTY elsewhere, which CRIU reads as 0).
    packet: master && ctrl(tty).member('packet').num() !== 0,
    locked: master && (flags >> BigInt(TTY_PTY_LOCK) & 1n) === 1n,
  };
}

/** Whether a task's controlling terminal is this tty (signal->tty): TIOCGSID and TIOCGPGRP answer only then. */
export function isControllingTty(task: KObject, tty: KObject): boolean {
  return task.member('signal').deref().member('tty').value() === tty.address;
}

import fs from 'node:fs';
import path from 'node:path';
import { NotFoundError } from '../../common/errors.js';

/**
 * virtio-serial ports by the name QEMU gives them (virtserialport name=...).
 * No logger here: the lab agent uses this too, and loading winston over the
 * lab guest's 9p root costs seconds of its boot.
 */
export function findVirtioPort(name: string): string {
  const dir = '/sys/class/virtio-ports';
  for (const entry of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    if (fs.readFileSync(path.join(dir, entry, 'name'), 'utf8').trim() === name) return `/dev/${entry}`;
  }
  throw new NotFoundError(`no virtio-serial port named ${name}`);
}

/**
 * Opens a port for reading and writing, non-blocking, or undefined when
 * another process has it: a port opens once (the driver answers EBUSY after
 * that), which makes the open a lock on the port.
 */
export function openVirtioPort(device: string): number | undefined {
  try {
    return fs.openSync(device, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') return undefined;
    throw err;
  }
}

/**
 * A port's non-blocking reads and writes, as drivers/char/virtio_console.c
 * answers them (port_fops_read, port_fops_write).
 */
export interface PortIO {
  /** Bytes read into buf; 0 while no host is connected; undefined while one is and has sent nothing (EAGAIN). */
  read(buf: Buffer): number | undefined;
  /** Bytes taken (at most 32 KiB a call); 0 while no host is connected or the queue is full (EAGAIN). */
  write(data: Buffer): number;
}

/** PortIO over a port opened with openVirtioPort. Errors other than EAGAIN are thrown as they are. */
export function fdPort(fd: number): PortIO {
  const again = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === 'EAGAIN';
  return {
    read(buf) {
      // Most polls end in EAGAIN, thrown as an Error: capturing its stack was about half of a poll's CPU, and no
      // caller reads it (an error other than EAGAIN is wrapped with what was being done).
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        return fs.readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        if (again(err)) return undefined;
        throw err;
      } finally {
        Error.stackTraceLimit = limit;
      }
    },
    write(data) {
      try {
        return fs.writeSync(fd, data);
      } catch (err) {
        if (again(err)) return 0;
        throw err;
      }
    },
  };
}

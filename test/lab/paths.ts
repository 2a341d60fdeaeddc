import path from 'node:path';
import { InvalidArgumentError } from '../../common/errors.js';

/** Where running guests keep their sockets, logs and state. */
export function labRoot(): string {
  return process.env.OVMIGRATE_LAB_DIR ?? '/run/ovmigrate/lab';
}

export { cacheRoot } from '../../introspect/cache.js';

/** The project checkout (the guest sees it at the same path through the host root share). */
export const projectRoot = path.resolve(__dirname, '..', '..', '..');

const NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(`lab guest name ${JSON.stringify(name)} must match ${NAME.source}`);
  }
  return name;
}

export interface GuestPaths {
  dir: string;
  state: string;
  qmp: string;
  channel: string;
  control: string;
  exec: string;
  console: string;
  keeperLog: string;
  memory: string;
  /** The vhost-user socket of the virtiofsd of share i (lab up --virtiofs). */
  virtiofs: (i: number) => string;
  /** The vhost-user socket of the host root's virtiofsd (kernels without 9p). */
  rootVirtiofs: string;
}

export function guestPaths(name: string): GuestPaths {
  const dir = path.join(labRoot(), checkName(name));
  return {
    dir,
    state: path.join(dir, 'state.json'),
    qmp: path.join(dir, 'qmp.sock'),
    channel: path.join(dir, 'channel.sock'),
    control: path.join(dir, 'control.sock'),
    exec: path.join(dir, 'exec.sock'),
    console: path.join(dir, 'console.log'),
    keeperLog: path.join(dir, 'keeper.log'),
    memory: `/dev/shm/ovmigrate-lab-${name}.mem`,
    virtiofs: (i) => path.join(dir, `virtiofs${i}.sock`),
    rootVirtiofs: path.join(dir, 'root-virtiofs.sock'),
  };
}

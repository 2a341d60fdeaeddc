/**
 * The guest's backend relay: owns the virtio-serial port to the host
 * backend and serves the shims on a unix socket (see relay.ts). Started on
 * demand by BackendClient.connect, detached, one per guest: the port opens
 * once, so a second relay finds it busy and exits quietly.
 *
 *   node relay-main.js [--socket PATH]
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BACKEND_PORT, MAX_CHANNEL_FRAME } from '../../common/backend-api.js';
import { errorMessage } from '../../common/errors.js';
import { profileOnSignal } from '../../common/cpu-profile.js';
import { log } from '../../common/log.js';
import { DEFAULT_SOCKET, relayStreamIds } from './paths.js';
import { PortLink } from './port-link.js';
import { PortWaiter } from './port-waiter.js';
import { Relay } from './relay.js';
import { fdPort, findVirtioPort, openVirtioPort } from './virtio-port.js';

async function main(argv: string[]): Promise<void> {
  const i = argv.indexOf('--socket');
  const socket = i >= 0 && argv[i + 1] ? path.resolve(argv[i + 1]) : DEFAULT_SOCKET;
  const fd = await openPort(findVirtioPort(BACKEND_PORT));
  if (fd === undefined) {
    log.info(`relay: ${BACKEND_PORT} is open in another process (a relay already runs); exiting`);
    return;
  }
  // Holding the port, this is the only relay: a socket file left there is a dead one's.
  fs.mkdirSync(path.dirname(socket), { recursive: true, mode: 0o700 });
  fs.rmSync(socket, { force: true });
  const idsFile = relayStreamIds(socket);
  const relay = new Relay({
    // The backend drops the shared channel on a larger frame: refuse it here, costing only its own client.
    maxMessageSize: MAX_CHANNEL_FRAME,
    firstStreamId: firstStreamId(idsFile),
    reserveStreamIds: (below) => fs.writeFileSync(idsFile, `${below}\n`, { mode: 0o600 }),
  });
  const server = net.createServer((conn) => relay.addClient(conn));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, resolve);
  });
  // Only root's shims may reach the host.
  fs.chmodSync(socket, 0o600);
  fs.writeFileSync(path.join(path.dirname(socket), 'relay.pid'), `${process.pid}\n`);
  const waiter = new PortWaiter(fd);
  const quit = (signal: string): void => {
    log.info(`relay: ${signal}: exiting`);
    server.close();
    waiter.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => quit('SIGTERM'));
  process.on('SIGINT', () => quit('SIGINT'));
  profileOnSignal('relay');
  log.info(`relay: forwarding ${socket} to ${BACKEND_PORT} (pid ${process.pid})`);
  await new PortLink(fdPort(fd), relay, { whenReadable: (wake) => waiter.whenReadable(wake) }).run();
}

/** How long a busy port is asked again: a relay that just ended holds it until its readiness helper has ended too. */
const BUSY_PORT_WAIT_MS = 2000;

async function openPort(device: string): Promise<number | undefined> {
  const until = Date.now() + BUSY_PORT_WAIT_MS;
  for (;;) {
    const fd = openVirtioPort(device);
    if (fd !== undefined || Date.now() >= until) return fd;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Where an earlier relay of this boot left off: the host may still hold the
 * connection it used, on which ids must grow. After a reboot (/run is new)
 * the probe finds out whether the host's connection is an old one.
 */
function firstStreamId(file: string): number {
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch {
    return 1;
  }
  const n = Number(text);
  return /^\d+$/.test(text) && n % 2 === 1 && n <= 0xffff_0000 ? n : 1;
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    log.error(`relay: ${errorMessage(err)}`);
    process.exit(1);
  },
);

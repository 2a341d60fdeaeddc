import type net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { connectUnix, type TtrpcServer } from '../../common/ttrpc/index.js';

export interface ChannelOptions {
  /** Called on each new connection, before anything is read from it. */
  onConnect?: () => void;
  /** Stops connecting and closes the connection. */
  signal?: AbortSignal;
  /** Wait before connecting again, doubled while connecting fails or connections drop soon (default 250 ms, at most maxDelayMs: 5 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
}

/** A connection that lasted this long was a working one: the next wait starts from the minimum again. */
const STABLE_MS = 10_000;

/**
 * Serves ttrpc on a VM's channel: QEMU's chardev socket for the
 * virtio-serial port, in server mode, one client at a time. Connects,
 * serves until the connection closes (QEMU went away, or the server
 * dropped a guest that sent what does not frame), and connects again.
 * Every drop is followed by a wait of at least minDelayMs: the guest's
 * relay learns the host went away only by reading, and must not miss it.
 * Resolves once the signal aborts.
 */
export async function serveChannel(socketPath: string, server: TtrpcServer, opts: ChannelOptions = {}): Promise<void> {
  const min = opts.minDelayMs ?? 250;
  const max = opts.maxDelayMs ?? 5000;
  const { signal } = opts;
  // Apart: a guest that resets the channel (a relay starting) must not inherit the wait for a QEMU that was not there.
  let connectDelay = min;
  let dropDelay = min;
  let lastError = '';
  while (!signal?.aborted) {
    let socket: net.Socket;
    try {
      socket = await connectUnix(socketPath);
    } catch (err) {
      // One line per kind of failure, not one per attempt.
      if (errorMessage(err) !== lastError) log.warn(`channel ${socketPath}: ${errorMessage(err)}; retrying`);
      lastError = errorMessage(err);
      await sleep(connectDelay, signal);
      connectDelay = Math.min(connectDelay * 2, max);
      continue;
    }
    lastError = '';
    connectDelay = min;
    log.info(`channel ${socketPath}: connected`);
    opts.onConnect?.();
    const started = Date.now();
    const onAbort = (): void => void socket.destroy();
    signal?.addEventListener('abort', onAbort, { once: true });
    const closed = new Promise((resolve) => socket.once('close', resolve));
    // The connection's 'close', not serve(): a dump still running must not delay the next connection.
    void server.serve(socket);
    await closed;
    signal?.removeEventListener('abort', onAbort);
    if (signal?.aborted) break;
    const lived = Date.now() - started;
    if (lived >= STABLE_MS) dropDelay = min;
    log.warn(`channel ${socketPath}: connection closed after ${lived} ms; connecting again in ${dropDelay} ms`);
    await sleep(dropDelay, signal);
    // A guest that keeps breaking the connection gets it back ever more slowly.
    dropDelay = Math.min(dropDelay * 2, max);
  }
}

/** Resolves after ms, or at once when the signal aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => undefined);
}

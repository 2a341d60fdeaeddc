import path from 'node:path';

/** Where the relay serves the shims; its log and pid file sit next to it. */
export const DEFAULT_SOCKET = '/run/ovmigrate/backend.sock';
/** The relay's entry point, compiled next to this file. */
export const RELAY_MAIN = path.join(__dirname, 'relay-main.js');

export function relayLog(socket: string): string {
  return path.join(path.dirname(socket), 'relay.log');
}

/** Where a relay notes the stream ids it has reserved (see RelayOptions.reserveStreamIds). */
export function relayStreamIds(socket: string): string {
  return path.join(path.dirname(socket), 'relay.stream-ids');
}

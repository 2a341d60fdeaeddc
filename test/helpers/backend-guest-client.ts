/**
 * Runs in a lab guest: calls of the host backend through BackendClient, on
 * one connection, as a shim makes them. Prints a JSON array with one
 * {ok, ms} or {error: {status, message}, ms} per call, and exits 0 either
 * way, so the test reads failures as data.
 *
 *   node backend-guest-client.js '[{"call": "hello"}, {"call": "release", "name": "x"}]' [MARK]
 *
 * Calls: hello; checkpoint with id, cgroup, and config (a string) or
 * configBytes (that many spaces); release with name. Each may give
 * timeoutMs (default 60000). MARK, a file, is created once connected,
 * just before the first call: a test waits for it to act mid-call.
 */
import fs from 'node:fs';
import { TtrpcError, statusName } from '../../common/ttrpc/index.js';
import { BackendClient } from '../../shim/channel/client.js';

export interface GuestCall {
  call: 'hello' | 'checkpoint' | 'release';
  id?: string;
  cgroup?: string;
  config?: string;
  configBytes?: number;
  name?: string;
  timeoutMs?: number;
}

/** A relay started cold in a TCG guest loads its modules for several seconds. */
const RELAY_START_MS = 30_000;

function run(client: BackendClient, c: GuestCall): Promise<unknown> {
  const timeoutMs = c.timeoutMs ?? 60_000;
  switch (c.call) {
    case 'hello':
      return client.hello({ timeoutMs });
    case 'checkpoint': {
      const config = c.configBytes !== undefined ? Buffer.alloc(c.configBytes, 0x20) : Buffer.from(c.config ?? '');
      return client.checkpoint({ id: c.id ?? '', cgroup: c.cgroup ?? '', config }, { timeoutMs });
    }
    case 'release':
      return client.release(c.name ?? '', { timeoutMs });
  }
}

/** What the script prints for each call. */
export interface GuestCallResult {
  ok?: Record<string, unknown>;
  error?: { status: string; message: string };
  ms: number;
}

function outcome(err: unknown): Pick<GuestCallResult, 'error'> {
  if (err instanceof TtrpcError) return { error: { status: statusName(err.status), message: err.detail } };
  return { error: { status: 'NOT_TTRPC', message: String(err) } };
}

async function main(): Promise<void> {
  const calls = JSON.parse(process.argv[2]) as GuestCall[];
  const mark = process.argv[3];
  const results: GuestCallResult[] = [];
  let client: BackendClient | undefined;
  try {
    client = await BackendClient.connect({ startTimeoutMs: RELAY_START_MS });
  } catch (err) {
    results.push({ ...outcome(err), ms: 0 });
  }
  if (client && mark) fs.writeFileSync(mark, '');
  for (const c of client ? calls : []) {
    const started = Date.now();
    try {
      results.push({ ok: ((await run(client!, c)) ?? {}) as Record<string, unknown>, ms: Date.now() - started });
    } catch (err) {
      results.push({ ...outcome(err), ms: Date.now() - started });
    }
  }
  client?.close();
  process.stdout.write(JSON.stringify(results, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)) + '\n');
}

void main();

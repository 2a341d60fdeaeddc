import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { StatusCode, TtrpcClient, TtrpcServer } from '../../common/ttrpc/index.js';
import { Relay } from '../../shim/channel/relay.js';
import { duplexPair } from './helpers/duplex-pair.js';
import { FakeClock, settle } from './helpers/fake-clock.js';
import { quietLogs } from './helpers/quiet-logs.js';
import { rejectsWithStatus } from './helpers/ttrpc-assert.js';

/** A host backend over an in-process pair: Echo answers its payload after the ms the payload names ("tag:ms"). */
function connectHost(relay: Relay): { streamIds: number[]; drop: () => void } {
  const [relayEnd, hostEnd] = duplexPair();
  const server = new TtrpcServer();
  server.register('test.Echo', {
    Echo: async (payload) => {
      await sleep(Number(payload.toString().split(':')[1] ?? 0));
      return payload;
    },
  });
  void server.serve(hostEnd);
  const streamIds: number[] = [];
  relayEnd.on('data', (chunk: Buffer) => relay.fromHost(chunk));
  relayEnd.on('close', () => relay.hostDown('test host closed'));
  relay.hostUp((frame) => {
    streamIds.push(frame.readUInt32BE(4));
    relayEnd.write(frame);
  });
  return { streamIds, drop: () => relayEnd.destroy() };
}

function connectClient(relay: Relay): TtrpcClient {
  const [clientEnd, relayEnd] = duplexPair();
  relay.addClient(relayEnd);
  return new TtrpcClient(clientEnd);
}

const echo = async (client: TtrpcClient, tag: string, ms = 0): Promise<string> =>
  (await client.call('test.Echo', 'Echo', Buffer.from(`${tag}:${ms}`))).toString();

describe('backend relay: many local clients over one host channel', () => {
  quietLogs();
  it('gives every request a stream id of its own on the host and answers each client under its own id', async () => {
    const relay = new Relay();
    const host = connectHost(relay);
    const a = connectClient(relay);
    const b = connectClient(relay);
    // Both clients number their streams 1, 3; answers come back in the opposite order of the requests.
    const calls = [echo(a, 'a1', 80), echo(b, 'b1', 60), echo(a, 'a3', 40), echo(b, 'b3', 0)];
    assert.deepEqual(await Promise.all(calls), ['a1:80', 'b1:60', 'a3:40', 'b3:0']);
    assert.deepEqual(host.streamIds, [1, 3, 5, 7]);
    assert.equal(await echo(b, 'b5'), 'b5:0');
    assert.deepEqual(host.streamIds, [1, 3, 5, 7, 9]);
    a.close();
    b.close();
  });

  it('fails forwarded calls UNAVAILABLE when the host goes, holds new ones until it is back', async () => {
    // The relay's timers run on a clock the test moves: the failure comes from the drop itself, no timer.
    const clock = new FakeClock().install();
    try {
      const relay = new Relay({ holdMs: 2000 });
      const host = connectHost(relay);
      const client = connectClient(relay);
      const pending = echo(client, 'slow', 10_000);
      let settled = false;
      void pending.catch(() => undefined).finally(() => (settled = true));
      await settle();
      assert.equal(settled, false);
      host.drop();
      const err = await rejectsWithStatus(pending, StatusCode.UNAVAILABLE);
      assert.match(err.message, /went away before answering/);
      assert.equal(relay.hostConnected, false);

      const held = echo(client, 'held');
      await clock.tick(1999);
      const again = connectHost(relay);
      assert.equal(await held, 'held:0');
      // Ids keep growing across host connections: a server refuses one it has seen.
      assert.deepEqual(again.streamIds, [3]);
    } finally {
      clock.uninstall();
    }
  });

  it('fails a held call UNAVAILABLE when no host comes within the hold time', async () => {
    const clock = new FakeClock().install();
    try {
      const relay = new Relay({ holdMs: 100 });
      const client = connectClient(relay);
      const call = echo(client, 'x');
      let settled = false;
      void call.catch(() => undefined).finally(() => (settled = true));
      await clock.tick(99);
      assert.equal(settled, false, 'held until the hold time');
      await clock.tick(1);
      const err = await rejectsWithStatus(call, StatusCode.UNAVAILABLE);
      assert.match(err.message, /no ovmigrate backend answers/);
    } finally {
      clock.uninstall();
    }
  });

  it('refuses calls beyond its in-flight limit with RESOURCE_EXHAUSTED', async () => {
    const relay = new Relay({ maxInFlight: 2 });
    connectHost(relay);
    const client = connectClient(relay);
    const slow = [echo(client, 's1', 100), echo(client, 's2', 100)];
    await rejectsWithStatus(echo(client, 's3'), StatusCode.RESOURCE_EXHAUSTED);
    assert.deepEqual(await Promise.all(slow), ['s1:100', 's2:100']);
    assert.equal(await echo(client, 's4'), 's4:0');
  });

  it('drops a client that sends garbage, and only that one', async () => {
    const relay = new Relay();
    connectHost(relay);
    const good = connectClient(relay);
    const [badEnd, relayEnd] = duplexPair();
    relay.addClient(relayEnd);
    const closed = new Promise((resolve) => badEnd.on('close', resolve));
    badEnd.write(Buffer.from('GARBAGE, not a ttrpc frame'));
    await closed;
    assert.equal(await echo(good, 'still'), 'still:0');
  });

  it('drops the answer to a client that left', async () => {
    const relay = new Relay();
    const host = connectHost(relay);
    const gone = connectClient(relay);
    const stays = connectClient(relay);
    const lost = echo(gone, 'lost', 50);
    gone.close();
    await rejectsWithStatus(lost, StatusCode.CANCELLED);
    assert.equal(await echo(stays, 'kept', 80), 'kept:80');
    assert.deepEqual(host.streamIds, [1, 3]);
  });
});

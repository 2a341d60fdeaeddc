import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnavailableError } from '../../common/errors.js';
import { statusOf, StatusCode } from '../../common/ttrpc/status.js';
import { GuestRam } from '../../introspect/backend/guest-ram.js';
import { FileMemory } from '../../introspect/memory/physical-memory.js';

describe('backend: a guest kernel that fails to attach is not read again on every request', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-attach-'));
    // RAM with no kernel in it: no vmcoreinfo, so every attach fails.
    fs.writeFileSync(path.join(dir, 'ram'), Buffer.alloc(2 << 20));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('backs off exponentially up to a cap, and tries at once after the channel reconnects', async () => {
    let clock = 1_000_000;
    let opens = 0;
    const ram = new GuestRam({
      open: async () => {
        opens++;
        return new FileMemory(path.join(dir, 'ram'), [{ gpa: 0n, size: 2n << 20n, fileOffset: 0n }]);
      },
      qmpSocket: path.join(dir, 'no-qmp.sock'),
    }, () => clock);
    const request = () => ram.dump('/app', path.join(dir, 'images'), undefined);
    const attachFailure = await request().then(() => assert.fail('attached to zeros'), (err: unknown) => err);
    assert.ok(!(attachFailure instanceof UnavailableError), 'the first failure is the attach\'s own');
    assert.equal(opens, 1);
    // Requests during the backoff fail at once, without reading the guest again.
    for (let i = 0; i < 5; i++) {
      await assert.rejects(request(), (err: unknown) => err instanceof UnavailableError && statusOf(err) === StatusCode.UNAVAILABLE);
    }
    assert.equal(opens, 1);
    const waits: number[] = [];
    for (let i = 0; i < 12; i++) {
      // Step the clock until the next attempt is let through: that step is the backoff.
      let waited = 0;
      while (opens === i + 1) {
        clock += 500;
        waited += 500;
        await request().catch(() => undefined);
      }
      waits.push(waited);
    }
    assert.deepEqual(waits.slice(0, 4), [1000, 2000, 4000, 8000]);
    assert.equal(Math.max(...waits), 5 * 60_000, 'capped at five minutes');
    // A new channel may be a new guest: tried again at once.
    const before = opens;
    ram.reset();
    await request().catch(() => undefined);
    assert.equal(opens, before + 1);
  });
});

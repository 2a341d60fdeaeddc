import { guestPool } from './guest-pool.js';
import { downTestGuests, leftovers } from './lab-guests.js';

/**
 * Whatever a suite left running, the run stops before mocha exits, also when
 * tests fail; the guest pool goes last. Then no QEMU process or memory file
 * of this run may be left.
 */
export const mochaHooks = {
  /** The pooled guests boot while the unit tests run (nothing boots in a run without integration suites). */
  beforeAll(): void {
    guestPool.prepare();
  },

  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await guestPool.stop();
    await downTestGuests();
    const left = leftovers();
    if (left.length) throw new Error(`the test run left guests behind:\n${left.join('\n')}`);
  },
};

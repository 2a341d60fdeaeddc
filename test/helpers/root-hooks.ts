import { components } from './components.js';
import { guestPool } from './guest-pool.js';
import { downTestGuests, leftovers } from './lab-guests.js';

/**
 * Whatever a suite left running, the run stops before mocha exits, also when
 * tests fail; the guest pool goes last. Then no QEMU process or memory file
 * of this run may be left.
 */
export const mochaHooks = {
  /**
   * The pooled guests boot while the unit tests run (nothing boots in a run without integration suites),
   * and the Go components the run's suites declared build beside them, niced.
   */
  beforeAll(): void {
    guestPool.prepare();
    components.start();
  },

  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await Promise.all([guestPool.stop(), components.stop()]);
    await downTestGuests();
    const left = leftovers();
    if (left.length) throw new Error(`the test run left guests behind:\n${left.join('\n')}`);
  },
};

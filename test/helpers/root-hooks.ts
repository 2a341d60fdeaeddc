import { downTestGuests } from './lab-guests.js';

/** Whatever a suite left running, the run stops before mocha exits, also when tests fail. */
export const mochaHooks = {
  async afterAll(this: Mocha.Context): Promise<void> {
    this.timeout(120_000);
    await downTestGuests();
  },
};

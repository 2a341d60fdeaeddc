import { log } from '../../../common/log.js';

/** Silences the process logger for a suite whose code logs every refusal it is made to make. */
export function quietLogs(): void {
  before(() => (log.silent = true));
  after(() => (log.silent = false));
}

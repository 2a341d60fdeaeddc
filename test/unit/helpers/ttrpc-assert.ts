import assert from 'node:assert/strict';
import { StatusCode, TtrpcError } from '../../../common/ttrpc/index.js';

/** Awaits a call that must fail with this status; a string message must equal its detail, a RegExp match it. */
export async function rejectsWithStatus(p: Promise<unknown>, status: StatusCode, message?: RegExp | string): Promise<TtrpcError> {
  const err = await p.then(() => assert.fail('expected the call to fail'), (e: unknown) => e);
  assert.ok(err instanceof TtrpcError, String(err));
  assert.equal(err.status, status, err.message);
  if (typeof message === 'string') assert.equal(err.detail, message);
  else if (message) assert.match(err.message, message);
  return err;
}

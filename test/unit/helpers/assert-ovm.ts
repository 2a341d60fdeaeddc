import assert from 'node:assert/strict';
import { OvmError } from '../../../common/errors.js';

type ErrorClass = abstract new (...args: never[]) => OvmError;

/**
 * Asserts that `fn` ends in a typed error: an instance of `cls` (default any
 * OvmError), never a TypeError, RangeError or plain Error. Generators are
 * drained, so a reader that fails only on a later element is caught too.
 */
export function assertOvmError(fn: () => unknown, cls: ErrorClass = OvmError): void {
  assert.throws(() => {
    const out = fn();
    if (out && typeof out === 'object' && Symbol.iterator in out) [...(out as Iterable<unknown>)];
  }, (err: unknown) => {
    if (!(err instanceof cls)) throw new assert.AssertionError({ message: `expected ${cls.name}, got ${String(err)}`, actual: err });
    return true;
  });
}

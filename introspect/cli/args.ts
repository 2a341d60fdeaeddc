import { InvalidArgumentError } from '../../common/errors.js';

/** A commander option parser for a whole number of at least `min`. */
export function int(name: string, min = Number.MIN_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} ${value}: not a whole number`);
    if (n < min) throw new InvalidArgumentError(`${name} ${value}: at least ${min}`);
    return n;
  };
}

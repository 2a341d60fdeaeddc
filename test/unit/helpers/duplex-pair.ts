import { Duplex } from 'node:stream';

/** Two connected in-process byte streams, as a socketpair gives: what one writes the other reads; destroying one ends the other. */
export function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (other: () => Duplex): Duplex => new Duplex({
    read() {},
    write(chunk: Buffer, _encoding, callback) {
      if (!other().destroyed) other().push(chunk);
      callback();
    },
    final(callback) {
      other().push(null);
      callback();
    },
    destroy(err, callback) {
      if (!other().destroyed) other().destroy();
      callback(err);
    },
  });
  ends.push(make(() => ends[1]), make(() => ends[0]));
  return [ends[0], ends[1]];
}

import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import {
  GrpcWireError, MessageReader, decodeStatusMessage, encodeStatusMessage, formatTimeout, frameMessage, parseTimeout, statusOfTrailers, trailersOf,
} from '../../shim/cri/index.js';

describe("CRI proxy's gRPC framing (grpc-wire.ts)", () => {
  it('frames and reads back messages split at every byte, empty ones included', () => {
    const messages = [Buffer.from('first'), Buffer.alloc(0), Buffer.from([0, 1, 2, 255]), Buffer.alloc(70_000, 7)];
    const wire = Buffer.concat(messages.map(frameMessage));
    assert.deepEqual(wire.subarray(0, 5), Buffer.from([0, 0, 0, 0, 5]));
    for (let cut = 0; cut <= wire.length; cut += cut < 40 ? 1 : 997) {
      const reader = new MessageReader();
      const got = [...reader.push(wire.subarray(0, cut)), ...reader.push(wire.subarray(cut))];
      assert.deepEqual(got, messages, `cut at ${cut}`);
      assert.ok(reader.idle);
    }
    const one = new MessageReader();
    const got: Buffer[] = [];
    for (const byte of frameMessage(Buffer.from('bytewise'))) got.push(...one.push(Buffer.from([byte])));
    assert.deepEqual(got, [Buffer.from('bytewise')]);
  });

  it('refuses a compressed message and one over the limit by its prefix, and tells a cut message', () => {
    const compressed = Buffer.from([1, 0, 0, 0, 1, 9]);
    assert.throws(() => new MessageReader().push(compressed), (e: unknown) => e instanceof GrpcWireError && e.status === grpc.status.UNIMPLEMENTED);
    const huge = Buffer.from([0, 0, 0, 0x10, 0x01]); // 4097 bytes announced
    assert.throws(() => new MessageReader(4096).push(huge), (e: unknown) => e instanceof GrpcWireError && e.status === grpc.status.RESOURCE_EXHAUSTED && /4097 bytes/.test(e.message));
    const reader = new MessageReader();
    assert.deepEqual(reader.push(frameMessage(Buffer.from('abc')).subarray(0, 6)), []);
    assert.equal(reader.idle, false);
  });

  it('reads and writes grpc-timeout in every unit', () => {
    assert.equal(parseTimeout('100m'), 100);
    assert.equal(parseTimeout('2S'), 2000);
    assert.equal(parseTimeout('1M'), 60_000);
    assert.equal(parseTimeout('1H'), 3_600_000);
    assert.equal(parseTimeout('5000u'), 5);
    assert.equal(parseTimeout('3000000n'), 3);
    for (const bad of [undefined, '', '10', '123456789m', '-1S', '1.5S', '10x']) assert.equal(parseTimeout(bad), undefined, String(bad));
    assert.equal(formatTimeout(0), '1m');
    assert.equal(formatTimeout(1234.2), '1235m');
    assert.equal(parseTimeout(formatTimeout(200_000_000)), 200_000_000);
    assert.match(formatTimeout(1e15), /^\d{1,8}H$/);
  });

  it('percent-encodes grpc-message as gRPC asks (UTF-8, % and controls) and decodes it back; a bad escape stays', () => {
    const text = 'container "x": 100% gone — ünïcode\nnext line';
    const encoded = encodeStatusMessage(text);
    assert.match(encoded, /^[\x20-\x7e]*$/);
    assert.ok(encoded.includes('100%25 gone'));
    assert.ok(encoded.includes('%0A'));
    assert.equal(decodeStatusMessage(encoded), text);
    assert.equal(decodeStatusMessage('50%zz done %'), '50%zz done %');
  });

  it('trailers carry status, message and metadata (binary keys base64) and read back', () => {
    const md = new grpc.Metadata();
    md.set('x-why', 'because');
    md.set('x-bin', Buffer.from([0, 255]));
    const t = trailersOf(grpc.status.NOT_FOUND, 'not "found"', md);
    assert.equal(t['grpc-status'], '5');
    const back = statusOfTrailers(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)])));
    assert.equal(back.code, grpc.status.NOT_FOUND);
    assert.equal(back.details, 'not "found"');
    assert.deepEqual(back.metadata.get('x-why'), ['because']);
    assert.deepEqual(back.metadata.get('x-bin'), [Buffer.from([0, 255])]);
    assert.deepEqual(back.metadata.get('grpc-status'), [], 'the status is not metadata');
    assert.equal(statusOfTrailers({}).code, grpc.status.UNKNOWN);
    assert.equal(trailersOf(grpc.status.OK, '')['grpc-message'], undefined);
  });
});

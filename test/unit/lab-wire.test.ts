import assert from 'node:assert/strict';
import { BadDataError } from '../../common/errors.js';
import { FrameDecoder, FrameType, MAX_PAYLOAD, encodeData, encodeFrame, encodeJson } from '../lab/wire.js';

describe('lab wire frames', () => {
  const stream = Buffer.concat([
    encodeJson(FrameType.Exec, 7, { argv: ['sh', '-c', 'true'] }),
    encodeFrame(FrameType.Stdout, 7, Buffer.from('hello\n')),
    encodeFrame(FrameType.Ping, 0),
    encodeJson(FrameType.Exit, 7, { code: 3, signal: null }),
  ]);

  it('decodes the same frames however the stream is split', () => {
    const whole = new FrameDecoder().push(stream);
    assert.equal(whole.length, 4);
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder();
      const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      assert.deepEqual(frames, whole, `split at ${cut}`);
    }
    const d = new FrameDecoder();
    const oneByOne = [...stream].flatMap((b) => d.push(Buffer.from([b])));
    assert.deepEqual(oneByOne, whole);
  });

  it('keeps type, session and payload', () => {
    const [exec, out, ping, exit] = new FrameDecoder().push(stream);
    assert.deepEqual([exec.type, exec.session], [FrameType.Exec, 7]);
    assert.equal(out.payload.toString(), 'hello\n');
    assert.deepEqual([ping.type, ping.payload.length], [FrameType.Ping, 0]);
    assert.deepEqual(JSON.parse(exit.payload.toString()), { code: 3, signal: null });
  });

  it('splits large data into frames no larger than the limit', () => {
    const data = Buffer.alloc(MAX_PAYLOAD * 2 + 5, 0xab);
    const frames = new FrameDecoder().push(Buffer.concat(encodeData(FrameType.Stdout, 1, data)));
    assert.deepEqual(frames.map((f) => f.payload.length), [MAX_PAYLOAD, MAX_PAYLOAD, 5]);
    assert.deepEqual(Buffer.concat(frames.map((f) => f.payload)), data);
  });

  it('rejects an oversized length before buffering it', () => {
    const header = Buffer.alloc(9);
    header.writeUInt32BE(MAX_PAYLOAD + 1, 0);
    header.writeUInt8(FrameType.Stdout, 4);
    assert.throws(() => new FrameDecoder().push(header), BadDataError);
  });

  it('rejects an unknown frame type', () => {
    const header = Buffer.alloc(9);
    header.writeUInt8(200, 4);
    assert.throws(() => new FrameDecoder().push(header), BadDataError);
  });

  it('refuses to encode a payload over the limit', () => {
    assert.throws(() => encodeFrame(FrameType.Stdout, 1, Buffer.alloc(MAX_PAYLOAD + 1)), BadDataError);
  });
});

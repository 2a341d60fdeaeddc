import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { BadDataError } from '../../common/errors.js';
import { loadProtos } from '../../common/proto.js';
import { editField, getField, getNestedString, getString, scanFields, setField, setString } from '../../shim/cri/index.js';

const CreateContainerRequest = () => loadProtos('cri').lookupType('runtime.v1.CreateContainerRequest');

/** A field our .proto does not know (number 99, a string), as a newer CRI would send it. */
function unknownField(field: number, text: string): Buffer {
  return Buffer.from(protobuf.Writer.create().uint32((field << 3) | 2).string(text).finish());
}

function createRequest(): Buffer {
  const t = CreateContainerRequest();
  const known = Buffer.from(t.encode(t.fromObject({
    pod_sandbox_id: 'pod1',
    config: { metadata: { name: 'c', attempt: 1 }, image: { image: 'busybox:latest', annotations: { a: 'b' } }, command: ['sh'] },
  })).finish());
  // Unknown fields at the top and inside config.image: a rewrite must keep them byte for byte.
  const config = getField(known, 2, 'message')!;
  const image = Buffer.concat([getField(config, 2, 'message')!, unknownField(77, 'future image field')]);
  return Buffer.concat([setField(known, 2, setField(config, 2, image)), unknownField(99, 'future top field')]);
}

describe('CRI wire fields: one field rewritten, every other byte kept', () => {
  it('scans the top-level fields in wire order with their ranges', () => {
    const msg = createRequest();
    const fields = scanFields(msg);
    assert.deepEqual(fields.map((f) => f.field), [1, 2, 99]);
    assert.equal(fields.at(-1)!.end, msg.length);
    assert.equal(getString(msg, 1), 'pod1');
    assert.equal(getString(msg, 99), 'future top field');
    assert.equal(getString(msg, 5), undefined);
  });

  it('rewrites a nested string (config.image.image) keeping known and unknown fields', () => {
    const msg = createRequest();
    const out = editField(msg, [2, 2, 1], () => Buffer.from('/var/lib/checkpoints/cp.tar'));
    assert.equal(getNestedString(out, [2, 2, 1]), '/var/lib/checkpoints/cp.tar');
    assert.equal(getNestedString(out, [2, 2, 77]), 'future image field');
    assert.equal(getString(out, 99), 'future top field');
    const t = CreateContainerRequest();
    const before = t.toObject(t.decode(msg));
    const after = t.toObject(t.decode(out));
    before.config.image.image = '/var/lib/checkpoints/cp.tar';
    assert.deepEqual(after, before);
    // Rewriting back gives the original bytes: nothing else moved.
    assert.deepEqual(editField(out, [2, 2, 1], () => Buffer.from('busybox:latest')), msg);
  });

  it('adds an absent field last, removes one, and treats repeated occurrences as protobuf does', () => {
    const base = Buffer.from([0x08, 0x01]); // field 1 varint 1
    const added = setString(base, 2, 'x');
    assert.deepEqual(added, Buffer.from([0x08, 0x01, 0x12, 0x01, 0x78]));
    assert.deepEqual(setString(added, 2, ''), base);
    // A string given twice: the last wins; set keeps one, at the first's place.
    const twice = Buffer.concat([Buffer.from([0x12, 0x01, 0x61]), base, Buffer.from([0x12, 0x01, 0x62])]);
    assert.equal(getString(twice, 2), 'b');
    assert.deepEqual(setString(twice, 2, 'c'), Buffer.from([0x12, 0x01, 0x63, 0x08, 0x01]));
    // A message given twice is merged: its payloads concatenated.
    const merged = Buffer.concat([Buffer.from([0x12, 0x02, 0x08, 0x05]), Buffer.from([0x12, 0x03, 0x1a, 0x01, 0x7a])]);
    assert.deepEqual(getField(merged, 2, 'message'), Buffer.from([0x08, 0x05, 0x1a, 0x01, 0x7a]));
    assert.deepEqual(editField(merged, [2, 4], () => Buffer.from('q')), Buffer.from([0x12, 0x08, 0x08, 0x05, 0x1a, 0x01, 0x7a, 0x22, 0x01, 0x71]));
  });

  it('creates missing sub-messages on the path', () => {
    assert.equal(getNestedString(editField(Buffer.alloc(0), [2, 2, 1], () => Buffer.from('img')), [2, 2, 1]), 'img');
  });

  it('refuses malformed messages and wire-type mismatches with BadDataError', () => {
    assert.throws(() => scanFields(Buffer.from([0x12, 0x05, 0x61])), BadDataError); // length past the end
    assert.throws(() => scanFields(Buffer.from([0x00, 0x01])), BadDataError); // field 0
    assert.throws(() => scanFields(Buffer.from([0x0f])), BadDataError); // wire type 7
    assert.throws(() => getString(Buffer.from([0x10, 0x01]), 2), BadDataError); // field 2 is a varint here
    const msg = createRequest();
    for (let cut = 1; cut < msg.length; cut++) {
      try {
        scanFields(msg.subarray(0, cut));
      } catch (err) {
        assert.ok(err instanceof BadDataError);
      }
    }
  });
});

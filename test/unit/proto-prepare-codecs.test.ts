import assert from 'node:assert/strict';
import { prepareCodecs } from '../../common/proto.js';
import { envelopeTypes } from '../../common/ttrpc/messages.js';
import { backendMethods } from '../../common/backend-api.js';
import { type as shimType } from '../../shim/containerd/api.js';
import { warmCheckpointCodecs } from '../../shim/containerd/service.js';
import { criType } from '../../shim/cri/cri-messages.js';
import { SHIM_TASK_TYPES } from '../../shim/cri/shim-task.js';

/** protobufjs' stand-ins until a type's first use, which generates its codecs then. */
const LAZY = new Set(['decode_setup', 'encode_setup']);

describe('protobuf codecs generated ahead of their first use', () => {
  it('a type and the message types nested in it, at any depth, have their generated codecs', () => {
    const top = criType('ContainerStatusResponse');
    const status = top.fields.status.resolvedType as typeof top;
    const metadata = status.fields.metadata.resolvedType as typeof top;
    prepareCodecs(top);
    for (const t of [top, status, metadata]) {
      assert.ok(!LAZY.has(t.decode.name) && !LAZY.has(t.encode.name), `${t.fullName}: ${t.decode.name}, ${t.encode.name}`);
    }
    // And still decodes and encodes as before.
    const bytes = top.encode(top.fromObject({ status: { id: 'c1', metadata: { name: 'n', attempt: 2 } } })).finish();
    assert.deepEqual(top.toObject(top.decode(bytes)), { status: { id: 'c1', metadata: { name: 'n', attempt: 2 } } });
  });

  it("the shim task calls' types of the checkpoint path and ttrpc's envelope", () => {
    const types = [...SHIM_TASK_TYPES, ...envelopeTypes()];
    for (const t of types) prepareCodecs(t);
    for (const t of types) assert.ok(!LAZY.has(t.decode.name), t.fullName);
  });

  it('a type already generated is left as it is (its codecs are not generated again)', () => {
    const t = criType('PodSandboxStatusResponse');
    prepareCodecs(t);
    const decode = t.decode;
    prepareCodecs(t);
    assert.equal(t.decode, decode);
  });

  it("the shim's checkpoint path: the task calls', the events' and the backend's types, nested ones included", () => {
    warmCheckpointCodecs();
    const names = ['containerd.task.v2.CheckpointTaskRequest', 'containerd.task.v2.StateResponse', 'containerd.runc.v1.CheckpointOptions',
      'containerd.events.TaskPaused', 'containerd.events.TaskCheckpointed', 'containerd.services.events.ttrpc.v1.ForwardRequest',
      'containerd.services.events.ttrpc.v1.Envelope'];
    const m = backendMethods().checkpoint;
    for (const t of [...names.map(shimType), m.requestType, m.responseType]) assert.ok(!LAZY.has(t.decode.name), t.fullName);
  });
});

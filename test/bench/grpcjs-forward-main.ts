/**
 * The baseline of cri-forward.bench.ts: ovmigrate-cri's forwarding as it was
 * before grpc-wire.ts (up to commit 3ca05ee): a grpc-js Server with raw
 * (undecoded) handlers for every CRI method, each call re-made on one grpc-js
 * Client channel to containerd, metadata, deadline and cancellation carried.
 *   node grpcjs-forward-main.js LISTEN CONTAINERD
 */
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { CRI_METHODS, MAX_CRI_MESSAGE, methodPath } from '../../shim/cri/index.js';

const raw = (b: Buffer): Buffer => b;
const HOP_KEYS = new Set(['user-agent', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type']);
const SIZES = { 'grpc.max_receive_message_length': MAX_CRI_MESSAGE, 'grpc.max_send_message_length': MAX_CRI_MESSAGE, 'grpc.enable_channelz': 0 };

function forwardable(metadata: grpc.Metadata): grpc.Metadata {
  const out = metadata.clone();
  for (const key of Object.keys(out.getMap())) if (HOP_KEYS.has(key) || key.startsWith(':')) out.remove(key);
  return out;
}

async function main(): Promise<void> {
  const [listen, containerd] = process.argv.slice(2);
  const client = new grpc.Client(`unix://${containerd}`, grpc.credentials.createInsecure(), {
    'grpc.initial_reconnect_backoff_ms': 100, 'grpc.min_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000, ...SIZES,
  });
  const ready = (deadline: grpc.Deadline) => new Promise<void>((resolve) => {
    if (client.getChannel().getConnectivityState(true) === grpc.connectivityState.READY) resolve();
    else client.waitForReady(Math.min(deadline instanceof Date ? deadline.getTime() : deadline, Date.now() + 10_000), () => resolve());
  });
  const server = new grpc.Server(SIZES);
  for (const method of CRI_METHODS) {
    const path = methodPath(method);
    if (method.streaming === 'unary') {
      server.register(path, (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        let answered = false;
        let upstream: grpc.ClientUnaryCall | undefined;
        call.on('cancelled', () => {
          if (!answered) upstream?.cancel();
        });
        void ready(call.getDeadline()).then(() => {
          let headers: grpc.Metadata | undefined;
          let response: Buffer | undefined;
          upstream = client.makeUnaryRequest(path, raw, raw, call.request, forwardable(call.metadata), { deadline: call.getDeadline() }, (_e, v) => (response = v));
          upstream.on('metadata', (md) => (headers = md));
          upstream.on('status', (status) => {
            answered = true;
            if (headers) call.sendMetadata(headers);
            if (status.code === grpc.status.OK && response) callback(null, response, status.metadata);
            else callback(status);
          });
        });
      }, raw, raw, 'unary');
    } else {
      server.register(path, (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        void ready(call.getDeadline()).then(() => {
          const upstream = client.makeServerStreamRequest(path, raw, raw, call.request, forwardable(call.metadata), { deadline: call.getDeadline() });
          call.on('cancelled', () => upstream.cancel());
          upstream.on('metadata', (md) => call.sendMetadata(md));
          upstream.on('data', (m: Buffer) => {
            if (!call.write(m)) {
              upstream.pause();
              call.once('drain', () => upstream.resume());
            }
          });
          upstream.on('error', () => undefined);
          upstream.on('status', (s) => (s.code === grpc.status.OK ? call.end(s.metadata) : call.emit('error', s)));
        });
      }, raw, raw, 'serverStream');
    }
  }
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${listen}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
  process.once('SIGTERM', () => {
    server.forceShutdown();
    client.close();
    fs.rmSync(listen, { force: true });
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`grpcjs-forward: ${String(err)}\n`);
  process.exitCode = 1;
});

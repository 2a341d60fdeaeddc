import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { CriProxy, type Intercepts } from '../../../shim/cri/proxy.js';
import { Upstream } from '../../../shim/cri/upstream.js';

/** An ovmigrate-cri proxy over a fake containerd, and a raw client of it, all in one temporary directory. */
export interface CriProxyRig {
  client: grpc.Client;
  /** Closes the client, the proxy, its upstream and the fake containerd, and removes the directory. */
  close(): Promise<void>;
}

/**
 * `startFake` serves the fake containerd on the socket it is given; the proxy
 * forwards to it with the intercepts made for its upstream.
 */
export async function criProxyRig(
  dir: string,
  startFake: (socket: string) => Promise<grpc.Server>,
  intercepts: (upstream: Upstream) => Intercepts = () => new Map(),
): Promise<CriProxyRig> {
  const containerd = path.join(dir, 'containerd.sock');
  const server = await startFake(containerd);
  const upstream = new Upstream(containerd);
  const proxy = new CriProxy(upstream, intercepts(upstream));
  await proxy.listen(path.join(dir, 'cri.sock'));
  const client = new grpc.Client(`unix://${path.join(dir, 'cri.sock')}`, grpc.credentials.createInsecure());
  return {
    client,
    async close() {
      client.close();
      await proxy.close(100);
      upstream.close();
      server.forceShutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Kubelet-style polling of a CRI endpoint from inside a lab guest, with the
 * CPU processes (the endpoint's server, containerd) spent meanwhile:
 *   node cri-poll-main.js SOCKET PID[,PID...] ROUNDS
 * prints {"calls": N, "cpuS": [S...], "wallS": W} for the running containers it lists.
 */
import { CriClient } from '../helpers/cri-client.js';
import { cpuSeconds, kubeletRound } from '../helpers/cri-poll.js';

async function main(): Promise<void> {
  const [socket, pidText, roundsText] = process.argv.slice(2);
  const pids = pidText.split(',').map(Number);
  const rounds = Number(roundsText);
  const client = new CriClient(socket);
  try {
    const listed = (await client.call('ListContainers', { filter: { state: { state: 1 } } })).containers as { id: string }[];
    const ids = listed.map((c) => c.id);
    await kubeletRound(client, ids);
    const [cpu0, t0] = [pids.map(cpuSeconds), Date.now()];
    let calls = 0;
    for (let i = 0; i < rounds; i++) calls += await kubeletRound(client, ids);
    process.stdout.write(`${JSON.stringify({ calls, cpuS: pids.map((p, i) => cpuSeconds(p) - cpu0[i]), wallS: (Date.now() - t0) / 1000 })}\n`);
  } finally {
    client.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`cri-poll: ${String(err)}\n`);
  process.exitCode = 1;
});

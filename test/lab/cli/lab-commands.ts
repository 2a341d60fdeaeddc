import { Command, Option } from 'commander';
import { InvalidArgumentError } from '../../../common/errors.js';
import { demo, down, ensureInitramfs, ensureKernel, exec, list, up } from '../index.js';
import { ensureComponents } from '../components/index.js';
import { NODE_CONTAINERDS, NodeContainerd } from '../kubernetes/index.js';
import { kubernetesDemo } from '../demo-kubernetes.js';
import { int } from '../../../introspect/cli/args.js';
import { toJson } from '../../../introspect/cli/json.js';
import { parseKernelChoice } from '../kernel-packages.js';

const KERNEL_HELP = 'Debian guest kernel: 6.1 (bookworm) or 6.12 (bookworm-backports), optionally -cloud or -rt (6.12-rt)';

export function labCommand(): Command {
  const lab = new Command('lab').description('local QEMU guests (Debian 6.1 or 6.12 under TCG) whose RAM the host reads')
    .enablePositionalOptions();

  lab.command('up')
    .description('boot a lab guest; prints its sockets and memory file as JSON once a command can run in it')
    .argument('<name>')
    .option('--memory <MiB>', 'guest RAM in MiB (default 1024; 1536 with --kubernetes)', int('--memory'))
    .option('--cpus <n>', 'vCPUs', int('--cpus'), 2)
    .addOption(new Option('--paging <levels>', 'page-table levels (4 turns LA57 off)').choices(['4', '5']).default('5'))
    .option('--share <hostdir>', 'read-write share mounted at the same path in the guest (repeatable)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--virtiofs <hostdir>', 'read-write share over virtiofs (a virtiofsd of its own), mounted at the same path in the guest (repeatable)',
      (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--boot-timeout <s>', 'seconds to wait for the guest', int('--boot-timeout'), 120)
    .option('--kernel <series>', KERNEL_HELP, '6.1')
    .option('--kubernetes', 'a Kubernetes node: containerd with our shim as default runtime, ovmigrate-cri, a standalone kubelet (static pods), CNI bridge; `ovmigrate serve` for it on the host')
    .addOption(new Option('--containerd <version>', "the node's containerd (with --kubernetes)").choices([...NODE_CONTAINERDS]))
    .action(async (name: string, o: {
      memory?: number; cpus: number; paging: string; share: string[]; virtiofs: string[]; bootTimeout: number; kernel: string; kubernetes?: boolean; containerd?: NodeContainerd;
    }) => {
      if (o.containerd && !o.kubernetes) throw new InvalidArgumentError('--containerd goes with --kubernetes');
      const state = await up(name, {
        memoryMiB: o.memory, cpus: o.cpus, paging: Number(o.paging) as 4 | 5, shares: o.share, virtiofs: o.virtiofs, bootTimeoutMs: o.bootTimeout * 1000,
        kernel: o.kernel, ...(o.kubernetes ? { kubernetes: o.containerd ?? '1.6' } : {}),
      });
      process.stdout.write(toJson(state) + '\n');
    });

  lab.command('exec')
    .description('run a command in a lab guest, stream its output, exit with its exit code')
    .argument('<name>')
    .argument('<command...>')
    .option('--timeout <s>', 'kill the command after this many seconds (exit code 124)', int('--timeout'))
    .option('-i, --stdin', 'forward standard input')
    .action(async (name: string, argv: string[], o: { timeout?: number; stdin?: boolean }) => {
      const result = await exec(name, argv, {
        timeoutMs: o.timeout !== undefined ? o.timeout * 1000 : undefined,
        stdin: o.stdin ? process.stdin : undefined,
        stdout: process.stdout,
        stderr: process.stderr,
      });
      if (result.error) process.stderr.write(`ovmigrate lab exec: ${argv[0]}: ${result.error}\n`);
      if (result.timedOut) process.stderr.write(`ovmigrate lab exec: ${argv[0]}: killed after ${o.timeout} s\n`);
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
      process.exitCode = result.exitCode;
    });

  lab.command('ls')
    .description('list lab guests')
    .option('--json', 'print JSON')
    .action((o: { json?: boolean }) => {
      const guests = list();
      if (o.json) {
        process.stdout.write(toJson(guests.map((g) => ({ ...g.state, name: g.name, running: g.running }))) + '\n');
        return;
      }
      for (const g of guests) {
        const s = g.state;
        process.stdout.write(`${g.name}\t${g.running ? 'running' : 'stopped'}` +
          (s ? `\tpid ${s.qemuPid}\t${s.memoryMiB} MiB\t${s.cpus} cpus\t${s.paging}-level\t${s.kernel}\t${s.memoryFile}` : '') + '\n');
      }
    });

  lab.command('down')
    .description('stop a lab guest and remove its memory file and sockets')
    .argument('[name]')
    .option('--all', 'every lab guest')
    .action(async (name: string | undefined, o: { all?: boolean }) => {
      if (!!name === !!o.all) throw new InvalidArgumentError('give a guest name or --all');
      const names = o.all ? list().map((g) => g.name) : [name!];
      await Promise.all(names.map((n) => down(n)));
    });

  lab.command('prepare')
    .description('fetch the guest kernel and build the initramfs (done by `lab up` when needed)')
    .option('--kernel <series>', KERNEL_HELP, '6.1')
    .action(async (o: { kernel: string }) => {
      const kernel = await ensureKernel(parseKernelChoice(o.kernel));
      process.stdout.write(toJson({ kernel: kernel.version, vmlinuz: kernel.vmlinuz, initramfs: await ensureInitramfs(kernel) }) + '\n');
    });

  lab.command('components')
    .description('build the pinned Go components (test/lab/components.json: containerd 2.x, crictl, critest, checkpointctl, kubelet) into the cache, once; prints their paths as JSON')
    .argument('[ids...]', 'only these components (keys of components.json; ID:PROGRAM,... for some of its programs); an ID alone builds no test binary (critest: name it, cri-tools:critest)')
    .option('--jobs <n>', 'builds at once (default: all)', int('--jobs'))
    .action(async (ids: string[], o: { jobs?: number }) => {
      // A stopped build (a test run that ends first) ends its go and removes its unfinished stage.
      const abort = new AbortController();
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => abort.abort());
      const built = await ensureComponents({ only: ids, jobs: o.jobs, signal: abort.signal });
      process.stdout.write(toJson(Object.fromEntries(built.map((c) => [c.pin.id, {
        module: c.pin.module, version: c.pin.version, goVersion: c.record.goVersion, buildSeconds: c.record.seconds, binaries: c.binaries,
      }]))) + '\n');
    });

  lab.command('demo')
    .description('two guests: a process checkpointed from outside the first (from its RAM), restored by CRIU in the second')
    .option('--kubernetes', "the Kubernetes path instead: a static pod's container checkpointed through the kubelet API in node A, restored with crictl in node B")
    .addOption(new Option('--containerd <version>', "the nodes' containerd (with --kubernetes; 2 is v2.4)").choices([...NODE_CONTAINERDS]))
    .action((o: { kubernetes?: boolean; containerd?: NodeContainerd }) => {
      if (o.containerd && !o.kubernetes) throw new InvalidArgumentError('--containerd goes with --kubernetes');
      return o.kubernetes ? kubernetesDemo(o.containerd) : demo();
    });

  return lab;
}

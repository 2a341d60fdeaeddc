import { Command } from 'commander';
import { InvalidArgumentError } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { readContainerSpec } from '../dump/container.js';
import { DumpReport, VmPause, dumpTree } from '../dump/dump.js';
import { live, settle } from '../dump/select.js';
import { cgroupArg, treeOfCgroup, treeOfPid } from '../dump/tree.js';
import { Program } from '../kernel/program.js';
import { cgroupPath, findTask } from '../linux/tasks.js';
import { QmpPause } from '../qemu/vm-pause.js';
import { toJson } from './json.js';
import { MemorySourceOptions, openMemory } from './memory-source.js';
import { CliPlugs } from './plugs.js';
import { QuotaOptions, addQuotaOptions, quotaOf } from './quota-options.js';

interface DumpCommandOptions extends MemorySourceOptions, QuotaOptions {
  container?: boolean;
  bundle?: string;
  pid?: number;
  cgroup?: string;
  imagesDir: string;
  leaveRunning?: boolean;
  tcpClose?: boolean;
  tcpEstablished?: boolean;
  netNs?: boolean;
  json?: boolean;
}

function printReport(r: DumpReport): void {
  const mib = (n: number) => (n / 2 ** 20).toFixed(1);
  process.stdout.write(`dumped ${r.processes.length} process(es) of tree ${r.root} into ${r.dir}\n`);
  for (const p of r.processes) process.stdout.write(`  pid ${p.pid} (${p.comm}) -> ${p.vpid}, threads ${p.threads.join(' ')}\n`);
  process.stdout.write(`pages: ${r.pagesWritten} written of ${r.pagesScanned} scanned, ${mib(r.bytesWritten)} MiB of images in ${r.ms.total.toFixed(0)} ms\n`);
  process.stdout.write(r.consistency === 'vm-paused'
    ? `consistency: VM paused ${r.pauseMs?.toFixed(1)} ms to verify pages, ${r.pagesReread} read again\n`
    : `consistency: page tables walked again (no QMP), ${r.pagesReread} pages read again\n`);
}

export function dumpCommand(plugs: CliPlugs): Command {
  return addQuotaOptions(new Command('dump'))
    .description('write CRIU images of a frozen process tree from guest RAM (restore with stock criu restore)')
    .option('--vm <name>', plugs.guestControl
      ? 'a VM by its description, whose guest the dump can freeze, thaw and kill'
      : 'a VM by its description ($OVMIGRATE_VM_DIR/NAME.json; the tree must be frozen already)')
    .option('--mem <file>', 'a QEMU memory-backend file (the tree must be frozen already)')
    .option('--qmp <socket>', 'with --mem: QMP socket, for the RAM layout and to pause the VM for the final check')
    .option('--pid <n>', 'root of the tree, pid in the initial pid namespace', (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`--pid ${v}: not a process id`);
      return n;
    })
    .option('--cgroup <path>', 'every process of this cgroup v2 path (one tree)')
    .option('--container', 'a runc container (its init is the root): dump its namespaces and mounts too; needs --bundle')
    .option('--bundle <dir>', "with --container: the container's OCI bundle (its config.json tells external mounts and namespaces)")
    .requiredOption('-D, --images-dir <dir>', 'directory for the images (absent or empty)')
    .option('--leave-running', 'leave the tree running after the dump (default: kill it, as criu dump does)')
    .option('--tcp-close', 'dump connected TCP sockets for restore to close them (restore with criu restore --tcp-close)')
    .option('--tcp-established', 'dump established TCP connections for repair (restore with criu restore --tcp-established); the tree is killed')
    .option('--net-ns', "dump the tree's own network namespace (loopback and veth links, addresses, routes), as criu dump does without --empty-ns network (runc always restores an empty one: restore with criu restore --veth-pair)")
    .option('--json', 'print the report as JSON')
    .action(async (o: DumpCommandOptions) => {
      if ((o.pid === undefined) === (o.cgroup === undefined)) throw new InvalidArgumentError('give exactly one of --pid N or --cgroup PATH');
      if (!!o.container !== !!o.bundle) throw new InvalidArgumentError('--container and --bundle DIR go together');
      // CRIU keeps repaired connections silent (TCP_REPAIR) until it kills the tree; from outside the guest they stay
      // live, so the tree must never run on with them: killed right after the dump, still frozen.
      if (o.tcpEstablished && o.leaveRunning) {
        throw new InvalidArgumentError('--tcp-established with --leave-running: the dumped connections would go on talking in this guest while a restore repairs them elsewhere; the tree must be killed (drop --leave-running) or dumped with --tcp-close');
      }
      if (o.tcpEstablished && o.tcpClose) throw new InvalidArgumentError('give one of --tcp-close and --tcp-established');
      const container = o.bundle ? readContainerSpec(o.bundle) : undefined;
      const control = o.vm ? plugs.guestControl?.(o.vm) : undefined;
      if (!control && !o.leaveRunning) {
        throw new InvalidArgumentError(`with ${o.vm ? '--vm and no guest control' : '--mem'} the dump cannot reach into the guest to kill the tree afterwards: add --leave-running`);
      }
      const qmpSocket = o.vm ? plugs.resolveVm(o.vm).qmpSocket : o.qmp;
      const mem = await openMemory(o, plugs.resolveVm);
      const pause: (VmPause & { close(): void }) | undefined = qmpSocket ? await QmpPause.connect(qmpSocket) : undefined;
      try {
        const prog = Program.attach(mem);
        const select = () => live(prog, () => (o.pid !== undefined ? treeOfPid(prog, o.pid) : treeOfCgroup(prog, o.cgroup!)));
        // The cgroup to freeze, found without walking a tree that may still be changing.
        const cgroup = o.cgroup !== undefined ? cgroupArg(o.cgroup) : live(prog, () => cgroupPath(findTask(prog, o.pid!)));
        let froze = false;
        let freezingMs = 0;
        if (control && !(await control.frozen(cgroup))) {
          const t = Date.now();
          log.info(`freezing cgroup ${cgroup}`);
          await control.freeze(cgroup);
          froze = true;
          freezingMs = Date.now() - t;
        }
        let report: DumpReport;
        try {
          report = await dumpTree(prog, await settle(select), o.imagesDir, { pause, freezingMs, container, tcpClose: o.tcpClose, tcpEstablished: o.tcpEstablished, netNs: o.netNs, quota: quotaOf(o), progress: (line) => log.info(line) });
        } catch (err) {
          if (froze) await control!.thaw(cgroup);
          throw err;
        }
        if (!o.leaveRunning) {
          log.info(`killing the dumped tree (${report.processes.map((p) => p.pid).join(' ')})`);
          await control!.kill(report.processes.map((p) => p.pid), cgroup);
        } else if (froze) {
          await control!.thaw(cgroup);
        }
        if (o.json) process.stdout.write(toJson(report) + '\n');
        else printReport(report);
      } finally {
        pause?.close();
        mem.close();
      }
    });
}

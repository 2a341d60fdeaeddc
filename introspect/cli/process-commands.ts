import { Command } from 'commander';
import { InvalidArgumentError } from '../../common/errors.js';
import { Program } from '../kernel/program.js';
import { taskRoot } from '../linux/d-path.js';
import { mapsText } from '../linux/mm.js';
import { readUserMemoryInto } from '../linux/user-memory.js';
import { openFiles } from '../linux/files.js';
import { mounts } from '../linux/mounts.js';
import { fpuState, ymmRegisters } from '../arch/x86-fpu.js';
import { tlsDescriptors } from '../arch/x86-tls.js';
import { userRegisters } from '../arch/x86-user-regs.js';
import { credentials } from '../linux/credentials.js';
import { fsPaths } from '../linux/fs-paths.js';
import { mmFields } from '../linux/mm-fields.js';
import { namespaces } from '../linux/namespaces.js';
import { processGroup } from '../linux/process-group.js';
import { rlimits } from '../linux/rlimits.js';
import { signalState } from '../linux/signals.js';
import { findTask, forEachProcess, processInfo, procComm, stateLetter, cgroupPath } from '../linux/tasks.js';
import { toJson } from './json.js';
import { MemorySourceOptions, openMemory } from './memory-source.js';
import { CliPlugs } from './plugs.js';

function source(cmd: Command): Command {
  return cmd
    .option('--vm <name>', 'a VM by its description ($OVMIGRATE_VM_DIR/NAME.json)')
    .option('--mem <file>', 'a QEMU memory-backend file')
    .option('--qmp <socket>', 'with --mem: QMP socket to take the RAM layout from');
}

function pidArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`--pid ${value}: not a process id`);
  return n;
}

/** Opens the guest, attaches to its kernel, runs `fn`, closes. */
async function withProgram<T>(plugs: CliPlugs, o: MemorySourceOptions, fn: (prog: Program) => T): Promise<T> {
  const mem = await openMemory(o, plugs.resolveVm);
  try {
    return await fn(Program.attach(mem));
  } finally {
    mem.close();
  }
}

export function psCommand(plugs: CliPlugs): Command {
  return source(new Command('ps').description("list the guest's processes, read from its RAM"))
    .option('--json', 'print JSON')
    .action(async (o: MemorySourceOptions & { json?: boolean }) => {
      const procs = await withProgram(plugs, o, (prog) => [...forEachProcess(prog)].map(processInfo));
      if (o.json) {
        process.stdout.write(toJson(procs) + '\n');
        return;
      }
      process.stdout.write('PID\tPPID\tS\tUID\tTHR\tCOMM\tCGROUP\n');
      for (const p of procs) process.stdout.write(`${p.pid}\t${p.ppid}\t${p.state}\t${p.uid}\t${p.threads.length}\t${p.comm}\t${p.cgroup}\n`);
    });
}

export function mapsCommand(plugs: CliPlugs): Command {
  return source(new Command('maps').description("a process's memory map, as the guest's /proc/PID/maps shows it"))
    .requiredOption('--pid <n>', 'pid in the initial pid namespace', pidArg)
    .action(async (o: MemorySourceOptions & { pid: number }) => {
      const text = await withProgram(plugs, o, (prog) => {
        const init = findTask(prog, 1);
        return mapsText(findTask(prog, o.pid), taskRoot(init));
      });
      process.stdout.write(text);
    });
}

function hexArg(value: string): bigint {
  if (!/^(0x)?[0-9a-fA-F]{1,16}$/.test(value)) throw new InvalidArgumentError(`--addr ${value}: not a hex address`);
  return BigInt(value.startsWith('0x') ? value : '0x' + value);
}

function lengthArg(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`--len ${value}: not a byte count`);
  return n;
}

/** Bytes read and written at a time, so any length streams in bounded memory (4 MiB measured fastest). */
const READ_CHUNK = 4 << 20;

export function readCommand(plugs: CliPlugs): Command {
  return source(new Command('read').description("bytes of a process's memory on stdout, as the guest's /proc/PID/mem gives them"))
    .requiredOption('--pid <n>', 'pid in the initial pid namespace', pidArg)
    .requiredOption('--addr <hex>', 'start address', hexArg)
    .requiredOption('--len <n>', 'number of bytes', lengthArg)
    .action(async (o: MemorySourceOptions & { pid: number; addr: bigint; len: number }) => {
      await withProgram(plugs, o, async (prog) => {
        const task = findTask(prog, o.pid);
        for (let off = 0; off < o.len; off += READ_CHUNK) {
          // A fresh buffer each time: stdout may still hold the previous one.
          const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, o.len - off));
          readUserMemoryInto(task, o.addr + BigInt(off), chunk);
          if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
        }
      });
    });
}

export function inspectCommand(plugs: CliPlugs): Command {
  return source(new Command('inspect').description('registers, FPU, signals, limits, credentials, namespaces, files and mm of a task'))
    .requiredOption('--pid <n>', 'pid in the initial pid namespace', pidArg)
    .option('--json', 'print JSON (the only format)')
    .action(async (o: MemorySourceOptions & { pid: number }) => {
      const report = await withProgram(plugs, o, (prog) => {
        const root = taskRoot(findTask(prog, 1));
        const task = findTask(prog, o.pid);
        const fpu = fpuState(task);
        return {
          pid: task.member('pid').num(),
          tgid: task.member('tgid').num(),
          comm: procComm(task),
          state: stateLetter(task),
          ...processGroup(task),
          registers: userRegisters(task),
          tls: tlsDescriptors(task),
          fpu: { size: fpu.size, xfeatures: fpu.xfeatures, xcompBv: fpu.xcompBv, compacted: fpu.compacted, mxcsr: fpu.mxcsr, ymm: ymmRegisters(fpu) },
          signals: signalState(task),
          rlimits: rlimits(task),
          creds: credentials(task),
          namespaces: namespaces(task),
          cgroup: cgroupPath(task),
          ...fsPaths(task, root),
          files: openFiles(task, root).map((f) => ({ fd: f.fd, path: f.path, flags: f.flags, pos: Number(f.pos), mode: f.mode, kind: f.kind })),
          mm: mmFields(task, root),
          // /proc/PID/mountinfo shows mount points from the task's own root (proc_mnt_open).
          mounts: task.member('nsproxy').value() === 0n ? [] : mounts(task, taskRoot(task)).map(({ mount: _m, sb: _s, sDev: _d, ...info }) => info),
        };
      });
      process.stdout.write(toJson(report) + '\n');
    });
}

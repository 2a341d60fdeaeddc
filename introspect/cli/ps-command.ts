import { Command } from 'commander';
import { Program } from '../kernel/program.js';
import { forEachProcess, processInfo } from '../linux/tasks.js';
import { toJson } from './json.js';
import { openMemory } from './memory-source.js';

export function psCommand(): Command {
  return new Command('ps')
    .description("list the guest's processes, read from its RAM")
    .option('--vm <name>', 'a lab guest')
    .option('--mem <file>', 'a QEMU memory-backend file')
    .option('--qmp <socket>', 'with --mem: QMP socket to take the RAM layout from')
    .option('--json', 'print JSON')
    .action(async (o: { vm?: string; mem?: string; qmp?: string; json?: boolean }) => {
      const mem = await openMemory(o);
      try {
        const prog = Program.attach(mem);
        const procs = [...forEachProcess(prog)].map(processInfo);
        if (o.json) {
          process.stdout.write(toJson(procs) + '\n');
          return;
        }
        process.stdout.write('PID\tPPID\tS\tUID\tTHR\tCOMM\tCGROUP\n');
        for (const p of procs) process.stdout.write(`${p.pid}\t${p.ppid}\t${p.state}\t${p.uid}\t${p.threads.length}\t${p.comm}\t${p.cgroup}\n`);
      } finally {
        mem.close();
      }
    });
}

import { Command } from 'commander';
import { readKernelIdentity } from '../kernel/identity.js';
import { hex, toJson } from './json.js';
import { openMemory } from './memory-source.js';
import { CliPlugs } from './plugs.js';

export function infoCommand(plugs: CliPlugs): Command {
  return new Command('info')
    .description("identify the guest kernel from its RAM alone (vmcoreinfo): release, KASLR offset, phys_base, paging, kallsyms tables")
    .option('--vm <name>', 'a VM by its description ($OVMIGRATE_VM_DIR/NAME.json)')
    .option('--mem <file>', 'a QEMU memory-backend file')
    .option('--qmp <socket>', 'with --mem: QMP socket to take the RAM layout from')
    .option('--json', 'print JSON')
    .action(async (o: { vm?: string; mem?: string; qmp?: string; json?: boolean }) => {
      const mem = await openMemory(o, plugs.resolveVm);
      try {
        const id = readKernelIdentity(mem);
        if (o.json) {
          process.stdout.write(toJson({ ...id, layout: mem.segments }) + '\n');
          return;
        }
        const rows: [string, string][] = [
          ['OSRELEASE', id.osRelease],
          ['KERNELOFFSET', hex(id.kernelOffset)],
          ['phys_base', hex(id.physBase)],
          ['paging levels', String(id.pagingLevels)],
          ['vmcoreinfo note', `guest-physical ${hex(id.vmcoreinfoAddress)}`],
          ...Object.entries(id.kallsyms).map(([k, v]): [string, string] => [k, hex(v)]),
          ['utsname', `${id.utsname.sysname} ${id.utsname.release} (read through phys_base: layout verified)`],
        ];
        for (const [k, v] of rows) process.stdout.write(`${k.padEnd(24)} ${v}\n`);
      } finally {
        mem.close();
      }
    });
}

import { Command, Option } from 'commander';
import { OvmError, errorMessage } from '../../common/errors.js';
import { log, setLogLevel } from '../../common/log.js';
import { dumpCommand } from './dump-command.js';
import { infoCommand } from './info-command.js';
import { CliPlugs } from './plugs.js';
import { inspectCommand, mapsCommand, psCommand, readCommand } from './process-commands.js';
import { serveCommand } from './serve-command.js';

/** The ovmigrate command line with what the environment plugs in (see CliPlugs). */
export function ovmigrateProgram(plugs: CliPlugs): Command {
  const program = new Command('ovmigrate')
    .description('out-of-band container checkpoint and migration from the hypervisor host')
    .addOption(new Option('--log-level <level>', 'winston log level').choices(['error', 'warn', 'info', 'debug']).default('info'))
    .enablePositionalOptions()
    .hook('preAction', (cmd) => setLogLevel(cmd.opts().logLevel as string));
  for (const command of plugs.commands ?? []) program.addCommand(command);
  return program
    .addCommand(infoCommand(plugs))
    .addCommand(psCommand(plugs))
    .addCommand(mapsCommand(plugs))
    .addCommand(readCommand(plugs))
    .addCommand(inspectCommand(plugs))
    .addCommand(dumpCommand(plugs))
    .addCommand(serveCommand(plugs));
}

/** Runs a program on this process's arguments: errors to stderr, exit 2 for a usage error, 1 otherwise. */
export function runProgram(program: Command): void {
  program.parseAsync(process.argv).catch((err: unknown) => {
    log.debug('command failed', { stack: err instanceof Error ? err.stack : undefined });
    process.stderr.write(`ovmigrate: ${errorMessage(err)}\n`);
    process.exitCode = err instanceof OvmError && err.code === 'INVALID_ARGUMENT' ? 2 : 1;
  });
}

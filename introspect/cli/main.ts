#!/usr/bin/env node
import { Command, Option } from 'commander';
import { OvmError, errorMessage } from '../../common/errors.js';
import { log, setLogLevel } from '../../common/log.js';
import { dumpCommand } from './dump-command.js';
import { infoCommand } from './info-command.js';
import { labCommand } from './lab-commands.js';
import { inspectCommand, mapsCommand, psCommand, readCommand } from './process-commands.js';
import { serveCommand } from './serve-command.js';

const program = new Command('ovmigrate')
  .description('out-of-band container checkpoint and migration from the hypervisor host')
  .addOption(new Option('--log-level <level>', 'winston log level').choices(['error', 'warn', 'info', 'debug']).default('info'))
  .enablePositionalOptions()
  .hook('preAction', (cmd) => setLogLevel(cmd.opts().logLevel as string))
  .addCommand(labCommand())
  .addCommand(infoCommand())
  .addCommand(psCommand())
  .addCommand(mapsCommand())
  .addCommand(readCommand())
  .addCommand(inspectCommand())
  .addCommand(dumpCommand())
  .addCommand(serveCommand());

program.parseAsync(process.argv).catch((err: unknown) => {
  log.debug('command failed', { stack: err instanceof Error ? err.stack : undefined });
  process.stderr.write(`ovmigrate: ${errorMessage(err)}\n`);
  process.exitCode = err instanceof OvmError && err.code === 'INVALID_ARGUMENT' ? 2 : 1;
});

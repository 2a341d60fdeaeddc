import { errorMessage } from '../../common/errors.js';
import { FdRecords, serve } from './records.js';
import { ReqType, VERSION_TEXT } from './rpc.js';

/**
 * `criu` for guests without CRIU, where containerd 2.x's CRI still asks it
 * for its version before a checkpoint or a restore (go-criu over
 * `criu swrk <fd>`): the version of the images the host writes, and a
 * refusal for anything else. Only containerd's lookup may find it (its
 * directory holds nothing else; the shim drops it from runc's PATH).
 */
function main(argv: string[]): number {
  const [command, arg] = argv;
  if (command === '--version' || command === '-V') {
    process.stdout.write(VERSION_TEXT);
    return 0;
  }
  if (command === 'check') {
    // Only `criu check` itself: its feature checks (--feature, --all, --extra) are CRIU's to answer.
    if (argv.length > 1) return refuse(`check ${argv.slice(1).join(' ')}`);
    process.stdout.write('Looks good.\n');
    process.stderr.write('ovmigrate: no CRIU in this guest; checkpoints are dumped from the host\n');
    return 0;
  }
  if (command === 'swrk' && arg !== undefined && /^\d+$/.test(arg) && argv.length === 2) {
    const result = serve(new FdRecords(Number(arg)), (r) => {
      if (r.type !== ReqType.VERSION) process.stderr.write(`ovmigrate criu stand-in: refusing request type ${r.type}\n`);
    });
    return result.refused ? 1 : 0;
  }
  return refuse(argv.join(' '));
}

function refuse(what: string): number {
  process.stderr.write(`criu ${what}: refused: this is ovmigrate's version-only criu; checkpoints are dumped from the host, and restores need the real CRIU\n`);
  return 1;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`ovmigrate criu stand-in: ${errorMessage(err)}\n`);
  process.exitCode = 1;
}

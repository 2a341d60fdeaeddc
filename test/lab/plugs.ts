import { CliPlugs } from '../../introspect/cli/plugs.js';
import { readVmDescription } from '../../introspect/vm/index.js';
import { labCommand } from './cli/lab-commands.js';
import { LabGuestControl } from './guest-control.js';
import { requireGuest } from './lab.js';

/**
 * The lab's CLI is the product's with the lab plugged in: the `lab`
 * commands, `--vm NAME` only for a running lab guest (then through the VM
 * description its keeper wrote, as the product reads it), and a guest
 * control over `lab exec`, so that `dump --vm` freezes, thaws and kills as
 * the shim and `criu dump` would.
 */
export function labPlugs(): CliPlugs {
  return {
    resolveVm: (name) => {
      requireGuest(name);
      return readVmDescription(name);
    },
    guestControl: (name) => new LabGuestControl(name),
    commands: [labCommand()],
  };
}

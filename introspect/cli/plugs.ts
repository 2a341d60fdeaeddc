import { Command } from 'commander';
import { GuestControlFactory, VmResolver, readVmDescription } from '../vm/index.js';

/**
 * What a host environment plugs into the CLI. The product alone resolves
 * `--vm NAME` from VM description files and has no way into the guest (the
 * shim freezes there); a test bench adds its own commands, checks of its
 * own on `--vm`, and a guest control so that `dump --vm` can freeze, thaw
 * and kill as `criu dump` does.
 */
export interface CliPlugs {
  resolveVm: VmResolver;
  guestControl?: GuestControlFactory;
  commands?: Command[];
}

export const PRODUCT_PLUGS: CliPlugs = { resolveVm: readVmDescription };

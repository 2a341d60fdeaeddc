/**
 * What `ovmigrate dump --vm` may ask of the guest around a dump: in a
 * production guest the shim does this (it freezes before asking the host),
 * so the product has no implementation of its own; a test bench that can
 * run commands in its guests plugs one in. Cgroup paths are cgroup v2 paths
 * in the guest; pids are of the guest's initial pid namespace.
 */
export interface GuestControl {
  /** Whether the cgroup v2 freezer holds the cgroup. */
  frozen(cgroup: string): Promise<boolean>;
  /** Freezes the cgroup and resolves once every task in it is frozen. */
  freeze(cgroup: string): Promise<void>;
  thaw(cgroup: string): Promise<void>;
  /** Kills the dumped processes and thaws the cgroup so that they die, as `criu dump` does after a dump. */
  kill(pids: number[], cgroup: string): Promise<void>;
}

/** Finds the guest control of a VM named by `--vm`. */
export type GuestControlFactory = (vm: string) => GuestControl;

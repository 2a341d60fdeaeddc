import { Command } from 'commander';
import { MAX_CHANNEL_FRAME } from '../../common/backend-api.js';
import { InvalidArgumentError, errorMessage } from '../../common/errors.js';
import { log } from '../../common/log.js';
import { TtrpcServer } from '../../common/ttrpc/index.js';
import { BackendService, DEFAULT_LIMITS, GuestRam, ImageStore, MAX_CONCURRENT_REQUESTS, serveChannel } from '../backend/index.js';
import { int } from './args.js';
import { MemorySourceOptions, openMemory } from './memory-source.js';
import { CliPlugs } from './plugs.js';
import { QuotaOptions, addQuotaOptions, quotaOf } from './quota-options.js';

interface ServeCommandOptions extends MemorySourceOptions, QuotaOptions {
  channel?: string;
  images: string;
  staging?: string;
  maxCheckpoints: number;
  maxImages: number;
  imageTtl: number;
}

/** How often unreleased image directories are looked at between requests. */
const RECLAIM_EVERY_MS = 60_000;

export function serveCommand(plugs: CliPlugs): Command {
  return addQuotaOptions(new Command('serve'))
    .description("serve a VM's shims on its channel: checkpoints of frozen containers from guest RAM into image directories on a share")
    .option('--vm <name>', 'a VM by its description ($OVMIGRATE_VM_DIR/NAME.json: RAM, QMP socket, channel socket, shares)')
    .option('--mem <file>', 'the VM\'s QEMU memory-backend file (with --qmp and --channel)')
    .option('--qmp <socket>', 'with --mem: QMP socket, for the RAM layout and to pause the VM for the final check of a dump')
    .option('--channel <socket>', 'with --mem: the unix socket of the chardev (server mode) behind the VM\'s ovmigrate.0 virtio-serial port')
    .requiredOption('--images <dir>', 'where image directories appear: a directory the guest mounts at the same path')
    .option('--staging <dir>', 'a directory the guest cannot see, on the file system of --images, only its owner writes (default with --vm: .NAME.ovmigrate-staging beside it; required with --mem)')
    .option('--max-checkpoints <n>', 'checkpoints running at once', int('--max-checkpoints', 1), DEFAULT_LIMITS.maxConcurrentCheckpoints)
    .option('--max-images <n>', 'image directories not yet released by the guest', int('--max-images', 1), DEFAULT_LIMITS.maxUnreleased)
    .option('--image-ttl <seconds>', 'an image directory not released after this long is removed', int('--image-ttl', 1), DEFAULT_LIMITS.unreleasedTtlMs / 1000)
    .action(async (o: ServeCommandOptions) => {
      if (!!o.vm === !!o.mem) throw new InvalidArgumentError('give exactly one of --vm NAME or --mem FILE --qmp SOCK --channel SOCK');
      const vm = o.vm ? plugs.resolveVm(o.vm) : undefined;
      if (!vm && (!o.qmp || !o.channel)) throw new InvalidArgumentError('--mem needs --qmp SOCK and --channel SOCK');
      if (vm && (!vm.qmpSocket || !vm.channelSocket)) throw new InvalidArgumentError(`VM ${vm.name}: its description needs qmpSocket and channelSocket for serve`);
      // The VM's shares are unknown: a default beside --images may be on one, in sight of the guest.
      if (!vm && !o.staging) throw new InvalidArgumentError('--mem needs --staging DIR: a directory outside every share of the VM, on the file system of --images');
      const channel = vm ? vm.channelSocket! : o.channel!;
      // With a described VM its shares are known: DIR must be on one, staging on none.
      const store = ImageStore.open(o.images, { staging: o.staging, shares: vm?.shares });
      const ram = new GuestRam({
        open: () => openMemory(o.vm ? { vm: o.vm } : { mem: o.mem, qmp: o.qmp }, plugs.resolveVm),
        qmpSocket: vm ? vm.qmpSocket! : o.qmp!,
        quota: quotaOf(o),
      });
      const left = store.removeLeftovers();
      if (left) log.info(`removed ${left} image directories an earlier backend left`);
      const service = new BackendService(store, ram.dump, { maxConcurrentCheckpoints: o.maxCheckpoints, maxUnreleased: o.maxImages, unreleasedTtlMs: o.imageTtl * 1000 });
      const server = new TtrpcServer({ maxConcurrentRequests: MAX_CONCURRENT_REQUESTS, maxMessageSize: MAX_CHANNEL_FRAME });
      service.register(server);
      const stop = new AbortController();
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          log.info(`${signal}: stopping`);
          stop.abort();
        });
      }
      log.info(`serving ${channel}: images in ${store.dir}, staged in ${store.staging}`);
      const reclaiming = setInterval(() => {
        try {
          service.reclaim();
        } catch (err) {
          log.error(`reclaiming image directories: ${errorMessage(err)}`);
        }
      }, RECLAIM_EVERY_MS);
      try {
        await serveChannel(channel, server, { signal: stop.signal, onConnect: () => ram.reset() });
      } finally {
        clearInterval(reclaiming);
        await server.close();
        store.close();
      }
    });
}

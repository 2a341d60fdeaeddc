/** `ovmigrate serve`: the Backend service of one VM on its channel (proto/ovmigrate/backend.proto). */
export { serveChannel, type ChannelOptions } from './channel.js';
export { GuestRam, type DumpFn, type BackendDumpOptions, type GuestRamSource } from './guest-ram.js';
export { ImageStore } from './image-store.js';
export { MAX_REQUEST_BYTES } from '../../common/backend-api.js';
export { BackendService, DEFAULT_LIMITS, MAX_CONCURRENT_REQUESTS, type BackendLimits } from './service.js';

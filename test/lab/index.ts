export { down, list, requireGuest, up, UpOptions } from './lab.js';
export { exec, execCapture, ExecOptions, ExecResult } from './exec-client.js';
export { GuestState } from './guest.js';
export { LabGuestControl } from './guest-control.js';
export { ensureKernel } from './kernel.js';
export { ensureInitramfs } from './initramfs.js';
export { demo } from './demo.js';

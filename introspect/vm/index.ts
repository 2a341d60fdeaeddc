export {
  RAM_BLOCK, VmDescription, VmResolver, checkVmName, formatVmDescription, parseVmDescription, readVmDescription,
  removeVmDescription, vmDescriptionPath, vmDir, writeVmDescription,
} from './description.js';
export { GuestControl, GuestControlFactory } from './guest-control.js';

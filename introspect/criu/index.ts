export { TASK_ALIVE, TASK_DEAD, TASK_STOPPED } from './task-state.js';
export { IMAGE_KINDS, ImageKind, kindByMagic, kindByName } from './image-kinds.js';
export { Image, ImageEntry, decodeImage, encodeImage, entryObject, makeEntry } from './image-codec.js';

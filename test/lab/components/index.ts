export { ensureComponents, EnsureOptions, buildFlags } from './builder.js';
export { componentBinaries, componentBinary, componentDir, componentsPath, componentsRoot, installed, InstalledComponent } from './installed.js';
export { goCacheDirs } from './go.js';
export { ComponentPin, PINS_FILE, PinSelection, defaultPrograms, readPins, selectPins } from './pins.js';
export { kubernetesWrapperGoMod } from './kubernetes-wrapper.js';

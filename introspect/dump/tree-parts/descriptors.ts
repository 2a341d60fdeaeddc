import { descriptorsJson, stdioTargets } from '../container.js';
import { TreePart } from './tree-part.js';

/** descriptors.json of a runc container: where its init's stdio go, so runc restore reconnects them. */
export const descriptorsFile: TreePart = {
  name: 'descriptors',
  dump(ctx) {
    return ctx.spec ? { images: [{ file: 'descriptors.json', data: descriptorsJson(stdioTargets(ctx.tree.root.leader, ctx.files.root)) }] } : {};
  },
};

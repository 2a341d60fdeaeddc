import { descriptorsJson, stdioTargets } from '../container.js';
import { TreePart } from './tree-part.js';

/** descriptors.json of a runc container: where its init's stdio go, so runc restore reconnects them. */
export const descriptorsFile: TreePart = {
  name: 'descriptors',
  dump(ctx) {
    if (!ctx.spec) return {};
    const targets = ctx.spec.terminal ? ['/dev/null', '/dev/null', '/dev/null'] : stdioTargets(ctx.tree.root.leader, ctx.files.root);
    return { images: [{ file: 'descriptors.json', data: descriptorsJson(targets) }] };
  },
};

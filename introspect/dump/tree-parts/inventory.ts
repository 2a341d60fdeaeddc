import { TreePart } from './tree-part.js';

/**
 * inventory.img (criu/image.c prepare_inventory): image version, the dumper's own ids, per-id fdinfo and namespace images;
 * tcp_close when connected TCP sockets were dumped for restore to close (restore then insists on --tcp-close).
 */
export const inventoryImage: TreePart = {
  name: 'inventory',
  dump(ctx) {
    return {
      images: [{
        kind: 'INVENTORY',
        entries: [{ img_version: 2, fdinfo_per_id: true, root_ids: ctx.rootIds, ns_per_id: true, root_cg_set: 1, lsmtype: 'NO_LSM',
          ...(ctx.files.tcpClose ? { tcp_close: true } : {}), network_lock_method: 0 }],
      }],
    };
  },
};

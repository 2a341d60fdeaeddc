import assert from 'node:assert/strict';
import { KObject } from '../../introspect/kernel/object.js';
import { FdToDump } from '../../introspect/dump/fds/index.js';
import { socketNsId } from '../../introspect/dump/fds/socket-netns.js';
import { FileTable } from '../../introspect/dump/files.js';

const NET_A = 0xffff888000100000n;
const NET_B = 0xffff888000200000n;

/** The two things socketNsId asks of the file table: the tree's namespaces, and an id per namespace. */
function table(nets?: { tree: Set<bigint>; own: boolean }): FileTable {
  return { netNamespaces: nets, netNsId: (net: bigint) => (net === NET_A ? 11 : 12) } as unknown as FileTable;
}

const fd = { task: 'pid 7 (srv)', kind: 'inet-socket', fd: 'fd 4', file: {} as KObject } as FdToDump;

describe("sockets' network namespace ids, as CRIU 3.17 sets them", () => {
  it('a socket sock_diag lists gets its namespace id; an unlisted one only when the tree has a namespace of its own', () => {
    assert.deepEqual(socketNsId(table({ tree: new Set([NET_A]), own: false }), fd, NET_A, true), { ns_id: 11 });
    assert.deepEqual(socketNsId(table({ tree: new Set([NET_A]), own: false }), fd, NET_A, false), {});
    assert.deepEqual(socketNsId(table({ tree: new Set([NET_A]), own: true }), fd, NET_A, false), { ns_id: 11 });
  });

  it('a socket of a namespace no dumped task is in is refused, naming the task and the fd', () => {
    const r = socketNsId(table({ tree: new Set([NET_A]), own: true }), fd, NET_B, true);
    assert.equal(r.ns_id, undefined);
    assert.match(String(r.problem), /^pid 7 \(srv\) fd 4: socket of a network namespace no dumped task is in \(struct net 0xffff888000200000\)$/);
  });
});

import { netlinkSocket } from '../../linux/netlink-sockets.js';
import { FdDumped, FdDumper, fdProblem } from './fd-dumper.js';
import { socketNsId } from './socket-netns.js';

/**
 * Netlink sockets (criu/sk-netlink.c dump_one_netlink_fd): what sock_diag
 * shows of a bound one, only the protocol of an unbound one. CRIU 3.17
 * never sets the entry's flags (0), and refuses unread messages, more than
 * 32 groups, and groups without a portid.
 */
export const netlinkSocketFd: FdDumper = {
  kinds: ['netlink-socket'],
  dump(files, fd): FdDumped {
    const { id, fresh } = files.ids.fileId(fd.file.address, fd.identity);
    if (!fresh) return { opened: { id, type: 'NETLINKSK' } };
    const sk = netlinkSocket(fd.file);
    const name = `netlink socket (protocol ${sk.protocol}, portid ${sk.portid})`;
    const problems = [];
    if (sk.queued) problems.push(fdProblem(fd, `${name} has ${sk.queued} messages not yet read`));
    if (sk.extras.filter) problems.push(fdProblem(fd, `${name} has a socket filter attached (not supported)`));
    if (sk.extras.boundDevIf) problems.push(fdProblem(fd, `${name} is bound to interface ${sk.extras.boundDevIf} (not supported)`));
    // sock_diag's group bitmap is whole longs: CRIU drops one empty trailing u32 and keeps at most one.
    const groups = sk.groups.length && sk.groups[sk.groups.length - 1] === 0 ? sk.groups.slice(0, -1) : sk.groups;
    if (sk.listed && groups.length > 1) problems.push(fdProblem(fd, `${name} is in groups above 32`));
    if (sk.listed && sk.groups.length && !sk.portid) problems.push(fdProblem(fd, `${name} is in groups but has no portid`));
    const ns = socketNsId(files, fd, sk.net, sk.listed);
    if (ns.problem) problems.push(ns.problem);
    if (problems.length) return { problems };
    const nlsk: Record<string, unknown> = {
      id,
      ino: sk.ino,
      protocol: sk.protocol,
      state: sk.listed ? sk.state : 0,
      flags: 0,
      portid: sk.listed ? sk.portid : 0,
      groups: sk.listed ? groups : [],
      dst_portid: sk.listed ? sk.dstPortid : 0,
      dst_group: sk.listed ? sk.dstGroup : 0,
      fown: files.fown(fd.file),
      opts: sk.opts,
      ...(ns.ns_id !== undefined ? { ns_id: ns.ns_id } : {}),
    };
    files.entries.push({ type: 'NETLINKSK', id, nlsk });
    return { opened: { id, type: 'NETLINKSK' } };
  },
};

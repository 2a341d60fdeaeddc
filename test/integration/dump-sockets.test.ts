import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { decodeImage, encodeImage } from '../../introspect/criu/index.js';
import { cli, cliOk, requirePrograms } from '../helpers/cli.js';
import { Json, assertSameDump, decodeDir } from '../helpers/criu-images.js';
import { POOL_KERNELS, kernelTag, kernelTitle } from '../helpers/guest-pool.js';
import { UpResult } from '../helpers/lab-guests.js';
import { PoolSuite } from '../helpers/pool-suite.js';

const PROGRAMS = path.resolve(__dirname, '..', '..', '..', 'test', 'programs');
const PORT = 7401;
const HTTP_PORT = 7480;

/** A client in a guest: a line to a TCP port (v4 or v6), the answer printed; or one datagram. */
const CLIENT = `
import socket, sys
kind, host, port, text = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ':' in host else socket.AF_INET
if kind == 'udp':
    socket.socket(family, socket.SOCK_DGRAM).sendto(text.encode(), (host, port))
else:
    c = socket.create_connection((host, port), timeout=10)
    c.sendall(text.encode() + b'\\n')
    print(c.recv(4096).decode().strip())
`;

interface InetEntry { id: number; family: number; type: number; proto: number; state: number; src_port: number; dst_port: number; backlog: number;
  v6only?: boolean; ns_id?: number; ip_opts?: { freebind?: boolean }; opts: Record<string, Json> }

// Guest A runs the program and both dumps (ours, then CRIU's), guest B restores with stock CRIU: the pool's dump pair.
for (const kernel of POOL_KERNELS) {
  describe(`ovmigrate dump: TCP, UDP and netlink sockets as CRIU writes them, restored by stock CRIU${kernelTitle(kernel)}`, function () {
    const suite = new PoolSuite(`dumpsk${kernelTag(kernel)}`, [{ slot: 'a', kernel }, { slot: 'b', kernel }]);
    const sh = suite.sh;
    const cg = suite.cgroup;
    let share: string;
    let a: UpResult;
    let b: UpResult;

    /** Programs run in guest A, each in a cgroup of its own, cwd and NAME.log in the share. */
    const start = (name: string, command: string) => suite.startProgram(a.name, name, command);
    const freeze = (name: string, on: 0 | 1) => suite.freeze(a.name, name, on);
    const log = (name: string) => fs.readFileSync(path.join(share, `${name}.log`), 'utf8');
    const client = (guest: string, ...args: (string | number)[]) => sh(guest, `python3 ${share}/client.py ${args.join(' ')}`, 60);
    const restore = (dir: string) => sh(b.name, `criu restore -D ${dir} -d --tcp-close -o restore.log || { tail -20 ${dir}/restore.log; exit 1; }; sleep 1`, 120);

    before(async function () {
      requirePrograms(this, ['qemu-system-x86_64', 'gcc', 'criu', 'crit']);
      share = suite.dir;
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'sockets'), path.join(PROGRAMS, 'sockets.c')]);
      fs.writeFileSync(path.join(share, 'client.py'), CLIENT);
      [a, b] = await suite.guests();
      // Pids far above guest B's own (and the dump suite's), so the restored tree finds its pids free there.
      await sh(a.name, 'echo 32000 > /proc/sys/kernel/ns_last_pid');
    });
    after(async () => {
      await suite.leave();
    });

    it('sockets: images equal `criu dump --tcp-close` of the same frozen tree, field by field; restored, clients get answers', async () => {
      const pid = await start('sockets', `${share}/sockets ${PORT}`);
      assert.match(await client(a.name, 'tcp', '127.0.0.1', PORT, 'ping'), /^pong 1$/m, 'the server answers before the dump');
      await freeze('sockets', 1);
      const ours = path.join(share, 'sockets-ours');
      const theirs = path.join(share, 'sockets-criu');
      // Without --tcp-close the connection to itself is refused, naming it and the task, and nothing is written.
      const refused = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running']);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, new RegExp(`pid ${pid} \\(sockets\\) fd \\d+: TCP socket in state ESTABLISHED 127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:${PORT}: .*--tcp-close`));
      assert.ok(!fs.existsSync(ours));
      await freeze('sockets', 1);
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--leave-running', '--tcp-close']);
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --tcp-close --freeze-cgroup /sys/fs/cgroup${cg}/sockets -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      assertSameDump(ours, theirs);
      for (const name of ['files.img', 'inventory.img']) {
        const raw = fs.readFileSync(path.join(ours, name));
        const image = decodeImage(raw, name);
        assert.ok(encodeImage(image.kind.name, image.entries).equals(raw), `${name} through our reader`);
        assert.ok(execFileSync('crit', ['encode'], { input: execFileSync('crit', ['decode', '-i', path.join(ours, name)]) }).equals(raw), `${name} through crit`);
      }

      // What the images hold, beyond agreeing with CRIU: each socket as the program set it up.
      const files = decodeDir(ours).get('files.img') as unknown as { type: string; isk?: InetEntry; nlsk?: Record<string, Json> }[];
      const inet = files.flatMap((f) => (f.isk ? [f.isk] : []));
      const one = (what: string, test: (e: InetEntry) => boolean) => {
        const found = inet.filter(test);
        assert.equal(found.length, 1, `${what}: ${JSON.stringify(inet)}`);
        return found[0];
      };
      const l4 = one('v4 listener', (e) => e.state === 10 && e.family === 2);
      assert.deepEqual([l4.src_port, l4.backlog, l4.ip_opts?.freebind], [PORT, 17, true]);
      assert.deepEqual([l4.opts.reuseaddr, l4.opts.so_reuseport, l4.opts.so_keepalive, l4.opts.tcp_keepidle, l4.opts.tcp_keepintvl, l4.opts.tcp_keepcnt],
        [true, true, true, 77, 11, 5]);
      assert.deepEqual([l4.opts.so_rcvbuf, l4.opts.so_sndbuf, l4.opts.so_priority, l4.opts.so_mark, l4.opts.so_linger, l4.opts.so_rcv_tmo_sec, l4.opts.so_rcv_tmo_usec],
        [131072, 65536, 3, 42, 7, 2, 500000]);
      const l6 = one('v6 listener', (e) => e.state === 10 && e.family === 10);
      assert.deepEqual([l6.src_port, l6.v6only, l6.backlog], [PORT + 1, true, 64]);
      one('bound UDP v4', (e) => e.proto === 17 && e.src_port === PORT + 2 && e.dst_port === 0);
      one('connected UDP v4', (e) => e.proto === 17 && e.dst_port === PORT + 2 && e.state === 1);
      one('bound UDP v6', (e) => e.proto === 17 && e.family === 10 && e.src_port === PORT + 3 && e.v6only === false);
      assert.equal(inet.filter((e) => e.proto === 6 && e.state === 1).length, 2, 'both ends of the connection, ESTABLISHED');
      const nl = files.flatMap((f) => (f.nlsk ? [f.nlsk] : []));
      assert.equal(nl.length, 1);
      assert.deepEqual([nl[0].protocol, nl[0].portid, nl[0].groups], [0, pid, [1]], 'NETLINK_ROUTE bound to RTMGRP_LINK');

      // The dump kills the tree; stock CRIU brings it back in guest B, where clients reach its listeners and datagrams arrive.
      const final = path.join(share, 'sockets-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', final, '--tcp-close']);
      const before = log('sockets').length;
      await restore(final);
      assert.match(await client(b.name, 'tcp', '127.0.0.1', PORT, 'ping'), /^pong 2$/m, 'the v4 listener answers, its count carried on');
      assert.match(await client(b.name, 'tcp', '::1', PORT + 1, 'ping'), /^pong 3$/m, 'the v6 listener answers');
      await client(b.name, 'udp', '127.0.0.1', PORT + 2, 'after-restore');
      await client(b.name, 'udp', '::1', PORT + 3, 'after-restore6');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const after = log('sockets').slice(before);
      assert.match(after, /^udp4 after-restore$/m, 'the bound UDP socket receives a datagram');
      assert.match(after, /^udp6 after-restore6$/m);
      assert.match(after, /^tick \d+$/m, 'it goes on ticking');
      await sh(b.name, `kill -9 ${pid}`);
    });

    it('python3 -m http.server: dumped with its listener, restored in guest B, answers a client', async () => {
      fs.writeFileSync(path.join(share, 'hello.txt'), 'hello from guest A\n');
      const pid = await start('http', `python3 -m http.server ${HTTP_PORT} --bind 127.0.0.1 --directory ${share}`);
      const get = (guest: string) => sh(guest, `python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:${HTTP_PORT}/hello.txt', timeout=10).read().decode())"`, 60);
      assert.match(await get(a.name), /hello from guest A/);
      const dir = path.join(share, 'http-final');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--tcp-close']);
      await restore(dir);
      assert.match(await get(b.name), /hello from guest A/, 'the restored server answers');
      await sh(b.name, `kill -9 ${pid}`);
    });

    it('refuses raw sockets and a listener with connections not yet accepted, before writing anything', async () => {
      fs.writeFileSync(path.join(share, 'refused.py'), [
        'import socket, time',
        'r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)',
        `l = socket.socket(); l.bind(('127.0.0.1', ${PORT + 10})); l.listen(8)`,
        'c = socket.create_connection(l.getsockname())',
        'while True: print("tick", flush=True); time.sleep(0.2)',
      ].join('\n') + '\n');
      const pid = await start('refused', `python3 ${share}/refused.py`);
      const dir = path.join(share, 'refused-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--tcp-close']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(python3\\) fd \\d+: .*only TCP and UDP sockets are supported`));
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(python3\\) fd \\d+: TCP socket in state LISTEN 127\\.0\\.0\\.1:${PORT + 10} has 1 connections not yet accepted`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/refused/cgroup.events`), /frozen 0/, 'thawed again');
    });
  });
}

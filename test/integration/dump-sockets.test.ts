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
/**
 * tcp-queues' connections: 127.0.0.1:TCPQ_PORT and [::1]:TCPQ_PORT+1; the half-closed h, k and l on 127.0.0.1:TCPQ_PORT+2..+4,
 * h6 and k6 (as h and k) on [::1]:TCPQ_PORT+5..+6; one in SYN_SENT to 127.0.0.1:TCPQ_PORT+7.
 */
const TCPQ_PORT = 7420;
const TCPQ_PORTS = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => TCPQ_PORT + i);
const SYN_PORT = TCPQ_PORT + 7;
/** include/net/tcp_states.h: each half-closed connection's client and server state (test/programs/tcp-queues.c). */
const HALF = { h: { port: TCPQ_PORT + 2, c: 5, s: 8 }, k: { port: TCPQ_PORT + 3, c: 11, s: 4 }, l: { port: TCPQ_PORT + 4, c: 5, s: 9 },
  h6: { port: TCPQ_PORT + 5, c: 5, s: 8 }, k6: { port: TCPQ_PORT + 6, c: 11, s: 4 } };
/** The DROP rules tcp-queues leaves in guest A to hold k, l, k6 and the SYN_SENT one where they are. */
const TCPQ_DROPS = `iptables -D INPUT -p tcp --dport ${HALF.k.port} -j DROP; iptables -D INPUT -p tcp --sport ${HALF.l.port} -j DROP` +
  `; ip6tables -D INPUT -p tcp --dport ${HALF.k6.port} -j DROP; iptables -D INPUT -p tcp --dport ${SYN_PORT} -j DROP`;

/** test/programs/tcp-queues.c: byte k of a direction's stream (0 client to server, 1 back). */
const pattern = (k: number, dir: number) => (k * 31 + (k >> 9) + dir * 101) & 0xff;
const isStream = (b: Buffer, from: number, dir: number) => b.every((v, i) => v === pattern(from + i, dir));

/**
 * CRIU's network lock, in guest B: a repaired socket restored before its peer answers nothing but a RST to
 * what reaches it; `criu dump --tcp-established` leaves such rules behind on the source for restore to find.
 * As CRIU's own (criu/netfilter.c), they let through what soccr marks SOCCR_MARK: the FIN and ACK it forges to
 * put a half-closed connection's FINs back (soccr/soccr.c send_fin).
 */
const lockTcpq = (op: '-I' | '-D') => TCPQ_PORTS.flatMap((p) => ['iptables', 'ip6tables']
  .flatMap((ipt) => ['dport', 'sport'].map((d) => `${ipt} ${op} INPUT -p tcp -m mark ! --mark 0xC114 --${d} ${p} -j DROP`))).join('; ');

interface TcpStream { inq_len: number; outq_len: number; unsq_len: number; inq_seq: number; outq_seq: number; opt_mask: number; nodelay?: boolean;
  timestamp?: number; snd_wnd: number; rcv_wnd: number }

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

interface InetEntry { id: number; ino: number; family: number; type: number; proto: number; state: number; src_port: number; dst_port: number; backlog: number;
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
      execFileSync('gcc', ['-O1', '-static', '-o', path.join(share, 'tcp-queues'), path.join(PROGRAMS, 'tcp-queues.c')]);
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

    it('tcp-queues: --tcp-close and --tcp-established equal criu\'s, ESTABLISHED, half-closed and SYN_SENT, field by field; restored in guest B, every queued byte arrives, new data flows, FINs arrive, the connect completes', async () => {
      const pid = await start('tcpq', `${share}/tcp-queues ${TCPQ_PORT}`);
      try {
        await tcpQueues(pid);
      } finally {
        await sh(a.name, `${TCPQ_DROPS}; true`);
      }
    });

    async function tcpQueues(pid: number) {
      // Setting up the half-closed connections waits for each to settle: the log is whole once the SYN_SENT line or a "bad" is there.
      for (let i = 0; i < 80 && !/^(syn|bad) /m.test(log('tcpq')); i++) await new Promise((resolve) => setTimeout(resolve, 500));
      assert.match(log('tcpq'), /^queued v4 c2s=14000 s2c=1000\nqueued v6 c2s=14000 s2c=1000\nhalf h c=5 s=8\nhalf k c=11 s=4\nhalf l c=5 s=9\nhalf h6 c=5 s=8\nhalf k6 c=11 s=4\nsyn c=2$/m);
      await freeze('tcpq', 1);
      const ours = path.join(share, 'tcpq-ours');
      const theirs = path.join(share, 'tcpq-criu');
      // --tcp-close: every connection written in its state (half-closed ones too), no stream image, as criu writes it.
      const closeOurs = path.join(share, 'tcpq-close-ours');
      const closeTheirs = path.join(share, 'tcpq-close-criu');
      await sh(a.name, `mkdir ${closeTheirs} && criu dump -t ${pid} -D ${closeTheirs} --leave-running --tcp-close --freeze-cgroup /sys/fs/cgroup${cg}/tcpq -o dump.log` +
        ` || { tail -20 ${closeTheirs}/dump.log; exit 1; }`, 120);
      await freeze('tcpq', 1);
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', closeOurs, '--leave-running', '--tcp-close']);
      await freeze('tcpq', 1);
      assertSameDump(closeOurs, closeTheirs);
      assert.deepEqual(fs.readdirSync(closeOurs).filter((f) => f.startsWith('tcp-stream-')), []);
      const halfEntries = (dir: string) => {
        const inet = (decodeDir(dir).get('files.img') as unknown as { isk?: InetEntry }[]).flatMap((f) => (f.isk ? [f.isk] : []));
        return Object.entries(HALF).map(([name, h]) => {
          const c = inet.find((e) => e.dst_port === h.port);
          const sv = inet.find((e) => e.src_port === h.port && e.dst_port !== 0);
          assert.ok(c && sv, `${name}: both ends in files.img`);
          assert.deepEqual([c!.state, sv!.state], [h.c, h.s], `${name}: client and server states`);
          return { name, c: c!, s: sv! };
        });
      };
      halfEntries(closeOurs);
      // Left running, the dumped connections would go on talking here while a restore repairs them elsewhere.
      const refused = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--tcp-established', '--leave-running']);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /--tcp-established with --leave-running/);
      assert.ok(!fs.existsSync(ours));
      // CRIU first (it leaves the tree frozen as it found it, its sockets out of repair mode), then ours, which kills the tree.
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --tcp-established --freeze-cgroup /sys/fs/cgroup${cg}/tcpq -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', ours, '--tcp-established']);
      const streams = fs.readdirSync(theirs).filter((f) => /^tcp-stream-[0-9a-f]+\.img$/.test(f)).sort();
      assert.equal(streams.length, 15, 'both ends of the seven connections, and the client still connecting (its listener has no stream)');
      // TCP_TIMESTAMP is a clock (ms since boot plus the socket's tsoffset), read by ours after CRIU. And CRIU, leaving repair
      // mode to let the tree run on, sends a window probe, which sets snd_wl1 to rcv_nxt - 1 (net/ipv4/tcp_output.c
      // tcp_send_window_probe); its network lock drops the ACK that would move it back: ours may read that.
      const known = Object.fromEntries(streams.map((f) => [f, (o: Json[], c: Json[]) => {
        const [mine, criu] = [o[0] as { timestamp?: number; snd_wl1: number; inq_seq: number }, c[0] as { timestamp?: number; snd_wl1: number }];
        if (mine.snd_wl1 !== criu.snd_wl1) {
          assert.equal(mine.snd_wl1, (mine.inq_seq - 1) >>> 0, `${f}: snd_wl1 is CRIU's or what its window probe left`);
          mine.snd_wl1 = criu.snd_wl1;
        }
        // Before the handshake no timestamps are agreed on (tcpi_options has none): neither writes one.
        if (criu.timestamp === undefined) {
          assert.equal(mine.timestamp, undefined, `${f}: no timestamp, as CRIU`);
          return;
        }
        const ahead = ((mine.timestamp ?? 0) - (criu.timestamp ?? 0)) >>> 0;
        assert.ok(mine.timestamp !== undefined && ahead < 600_000, `${f}: timestamp ${mine.timestamp} is CRIU's ${criu.timestamp} plus the time between the dumps`);
        delete mine.timestamp;
        delete criu.timestamp;
      }]));
      assertSameDump(ours, theirs, known);
      for (const f of streams) {
        const raw = fs.readFileSync(path.join(ours, f));
        const image = decodeImage(raw, f);
        assert.ok(encodeImage(image.kind.name, image.entries).equals(raw), `${f} through our reader`);
      }

      // What the images hold: per connection, the client's unread 1000 bytes and its unsent rest, the server's full receive queue.
      const stream = (f: string) => {
        const image = decodeImage(fs.readFileSync(path.join(ours, f)), f);
        const e = image.entries[0].message as unknown as TcpStream;
        const data = image.entries[0].extra!;
        return { e, inq: data.subarray(0, e.inq_len), outq: data.subarray(e.inq_len) };
      };
      const all = streams.map(stream);
      const clients = all.filter((s) => s.e.outq_len > 0);
      assert.equal(clients.length, 2, 'each client has data queued to send');
      for (const c of clients) {
        const server = all.find((s) => s.e.inq_seq === ((c.e.outq_seq - c.e.outq_len) >>> 0));
        assert.ok(server, 'the server received up to where the client\'s send queue starts');
        if (!server) continue;
        assert.deepEqual([c.e.inq_len, c.e.unsq_len, c.e.nodelay, c.e.opt_mask & 5], [1000, c.e.outq_len, true, 5], 'unread, unsent, TCP_NODELAY, timestamps and wscale');
        assert.equal(server.e.inq_len + c.e.outq_len, 14000, 'every byte the client wrote is queued once');
        assert.ok(isStream(server.inq, 0, 0) && isStream(c.outq, server.e.inq_len, 0), 'client to server: the stream from its first byte, in order');
        assert.ok(isStream(c.inq, 0, 1), 'server to client: the 1000 bytes unread');
        assert.ok(c.e.snd_wnd < c.e.unsq_len, 'the server\'s window does not take the unsent rest');
      }
      // Half-closed: the unread bytes without the FIN, nothing left to send (a FIN is not a byte), the FINs in the
      // sequence numbers: a side that got the other's FIN has rcv_nxt one past it, equal to the sender's write_seq.
      const half = halfEntries(ours).map(({ name, c, s }) => ({ name, c: stream(`tcp-stream-${c.ino.toString(16)}.img`), s: stream(`tcp-stream-${s.ino.toString(16)}.img`) }));
      for (const { name, c, s } of half) {
        assert.deepEqual([c.e.inq_len, c.e.outq_len, c.e.unsq_len, s.e.inq_len, s.e.outq_len, s.e.unsq_len], [500, 0, 0, 700, 0, 0], `${name}: queue lengths`);
        assert.ok(isStream(c.inq, 0, 3) && isStream(s.inq, 0, 2), `${name}: the unread bytes, in order`);
        // Which FIN reached its peer: h's and l's client FIN, k's server FIN (k's client FIN and l's server FIN were dropped); h6 and k6 as h and k.
        const kind = name[0];
        const cFinIn = kind !== 'k';
        const sFinIn = kind === 'k';
        assert.equal(s.e.inq_seq, (c.e.outq_seq - (cFinIn ? 0 : 1)) >>> 0, `${name}: server rcv_nxt against the client's write_seq`);
        assert.equal(c.e.inq_seq, (s.e.outq_seq - (sFinIn || kind === 'h' ? 0 : 1)) >>> 0, `${name}: client rcv_nxt against the server's write_seq`);
      }

      // SYN_SENT: nothing queued, write_seq one past the SYN; the listener has nothing to accept.
      const inet = (decodeDir(ours).get('files.img') as unknown as { isk?: InetEntry }[]).flatMap((f) => (f.isk ? [f.isk] : []));
      const connecting = inet.filter((e) => e.dst_port === SYN_PORT);
      assert.deepEqual(connecting.map((e) => e.state), [2], 'the client, SYN_SENT');
      const syn = stream(`tcp-stream-${connecting[0].ino.toString(16)}.img`);
      assert.deepEqual([syn.e.inq_len, syn.e.outq_len, syn.e.unsq_len], [0, 0, 0], 'SYN_SENT: nothing queued');
      assert.deepEqual(inet.filter((e) => e.src_port === SYN_PORT).map((e) => e.state), [10], 'its listener, LISTEN');

      // Stock CRIU repairs the connections in guest B (its network locked while it does); after SIGUSR1 each side reads.
      await sh(b.name, `${lockTcpq('-I')}; criu restore -D ${ours} -d --tcp-established -o restore.log; rc=$?; ${lockTcpq('-D')}` +
        `; [ $rc = 0 ] || { grep Error ${ours}/restore.log | tail -20; exit 1; }; sleep 1; kill -USR1 ${pid}`, 120);
      let done = '';
      // A half-closed end waits for a FIN the restore queued under the lock: its retransmit timer has backed off meanwhile.
      for (let i = 0; i < 500 && (done.match(/^(ok|bad) /gm) ?? []).length < 8; i++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        done = log('tcpq');
      }
      assert.match(done, /^ok v4 c2s=14000 s2c=1000$/m, 'v4: every queued byte arrived in order, and new data went both ways');
      assert.match(done, /^ok v6 c2s=14000 s2c=1000$/m, 'v6 too');
      // CLOSE_WAIT still sends and FIN_WAIT2 still reads; every end reads the rest and then the end of the stream, no reset.
      for (const name of Object.keys(HALF)) assert.match(done, new RegExp(`^ok half ${name} c2s=700 s2c=500$`, 'm'), `${name}: ${done}`);
      // Restore connects it again out of repair mode: its SYN (dropped by the lock, then sent again) reaches the listener.
      assert.match(done, /^ok syn$/m, `SYN_SENT: the connection completes, is accepted, data flows: ${done}`);
    }

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

    it('refuses urgent data not yet read with --tcp-established, where criu dump 3.17 keeps the bytes before the urgent mark and loses the rest; --tcp-close dumps the connection', async () => {
      fs.writeFileSync(path.join(share, 'urgent.py'), [
        'import socket, time',
        `l = socket.socket(); l.bind(('127.0.0.1', ${PORT + 11})); l.listen(1)`,
        'c = socket.create_connection(l.getsockname()); s, _ = l.accept()',
        "c.send(b'before'); c.send(b'!', socket.MSG_OOB); c.send(b'after')",
        'while True: print("tick", flush=True); time.sleep(0.2)',
      ].join('\n') + '\n');
      const pid = await start('urgent', `python3 ${share}/urgent.py`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const dir = path.join(share, 'urgent-img');
      const r = await cli(['dump', '--vm', a.name, '--pid', String(pid), '-D', dir, '--tcp-established']);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`pid ${pid} \\(python3\\) fd \\d+: TCP socket in state ESTABLISHED 127\\.0\\.0\\.1:${PORT + 11} -> .*: cannot be repaired: .*urgent data not yet read \\(MSG_OOB\\)`));
      assert.ok(!fs.existsSync(dir), 'no image directory');
      assert.match(await sh(a.name, `cat /sys/fs/cgroup${cg}/urgent/cgroup.events`), /frozen 0/, 'thawed again');
      // CRIU takes SIOCINQ's count, which tcp_inq ends at the urgent mark, and peeks that much: it writes "before" as
      // the whole receive queue with rcv_nxt past "!after", so a restored reader never gets those 6 bytes.
      const theirs = path.join(share, 'urgent-criu');
      await freeze('urgent', 1);
      await sh(a.name, `mkdir ${theirs} && criu dump -t ${pid} -D ${theirs} --leave-running --tcp-established --freeze-cgroup /sys/fs/cgroup${cg}/urgent -o dump.log` +
        ` || { tail -20 ${theirs}/dump.log; exit 1; }`, 120);
      const streams = fs.readdirSync(theirs).filter((f) => f.startsWith('tcp-stream-')).map((f) => {
        const image = decodeImage(fs.readFileSync(path.join(theirs, f)), f);
        return { e: image.entries[0].message as unknown as TcpStream, data: image.entries[0].extra! };
      });
      const receiver = streams.find((x) => x.e.inq_len > 0);
      const sender = streams.find((x) => x !== receiver);
      assert.ok(receiver && sender, 'both ends in tcp-stream images');
      assert.equal(receiver!.data.subarray(0, receiver!.e.inq_len).toString(), 'before', 'CRIU keeps what comes before the urgent mark');
      assert.equal((sender!.e.outq_seq - receiver!.e.inq_seq) >>> 0, 0, 'with rcv_nxt after all 12 bytes: "!after" is lost');
      await cliOk(['dump', '--vm', a.name, '--pid', String(pid), '-D', path.join(share, 'urgent-close'), '--leave-running', '--tcp-close']);
      await freeze('urgent', 0);
      await sh(a.name, `kill -9 ${pid}`);
    });
  });
}

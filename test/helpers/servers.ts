import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Json, KnownDifferences } from './criu-images.js';

/** Runs a script in a guest (PoolSuite.sh). */
type Sh = (guest: string, script: string, timeoutS?: number) => Promise<string>;

/** Loopback ports of the servers suite (below the socket suite's 7401-7480). */
export const PORTS = { redis: 7601, asyncio: 7602, node: 7603, nginx: 7604, postgres: 7605, nodeuring: 7606 } as const;

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A fresh postgres cluster made on the host (initdb under TCG takes long), in `dir` on the share: both guests see the same files. */
export function initPostgresCluster(dir: string): void {
  fs.mkdirSync(dir, { mode: 0o700 });
  execFileSync('chown', ['postgres:postgres', dir]);
  execFileSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--clear-groups', `${PG_BIN}/initdb`, '-D', dir, '-A', 'trust', '-U', 'postgres',
    '--no-sync', '-E', 'UTF8', '--locale=C'], { stdio: 'ignore', cwd: '/' });
}

/**
 * A real server of the servers suite: its set-up on the host (configs on the
 * share, which both guests see at the same path), its command line, the data
 * it is given in guest A, and what it answers (`before` the checkpoint in
 * guest A; `after` it, restored in guest B: proof that it held its data).
 */
export interface Server {
  name: keyof typeof PORTS;
  setUp?(share: string): void;
  command(share: string): string;
  /** Waits until it accepts connections. */
  ready?(guest: string, sh: Sh, share: string): Promise<void>;
  /** Gives it its data. */
  store?(guest: string, sh: Sh, share: string): Promise<void>;
  check(guest: string, sh: Sh, share: string, when: 'before' | 'after'): Promise<string>;
  answer(when: 'before' | 'after'): RegExp;
  /** Still refused on this branch: the object that stops it, and the refusal (pid: the server's) that must name it. */
  refused?: { object: string; pattern(pid: number): RegExp };
  knownDifferences?: KnownDifferences;
}

type Core = { tc?: { timers?: { real?: Record<string, number | string> }; signals_s?: { signals?: { siginfo: string }[] } } };
const SIGALRM = 14;

/**
 * ITIMER_REAL runs while a cgroup is frozen, and CRIU's dump of the same
 * frozen tree comes after ovmigrate's (under TCG, seconds after), so the
 * two see the time left at two moments `elapsed` seconds apart at most:
 * - a timer still armed at CRIU's dump has less left there, by no more than
 *   `elapsed` (a periodic one may have wrapped around its interval);
 * - a one-shot timer that fired between the two (a postgres backend's
 *   statement timers do) is disarmed in CRIU's, with the SIGALRM pending,
 *   where ours has the time left, shorter than `elapsed`.
 * Either is set aside (CRIU's made equal to ours), nothing else.
 */
export function timersThatRan(criuDir: string, elapsed: number): KnownDifferences {
  const settle = (ours: Json[], criu: Json[]) => {
    const o = (ours[0] as Core | undefined)?.tc;
    const c = (criu[0] as Core | undefined)?.tc;
    const [or, cr] = [o?.timers?.real, c?.timers?.real];
    if (!o || !c || !or || !cr) return;
    const left = Number(or.vsec) + Number(or.vusec) / 1e6;
    const oneShot = Number(or.isec) === 0 && Number(or.iusec) === 0;
    const theirs = Number(cr.vsec) + Number(cr.vusec) / 1e6;
    const interval = Number(or.isec) + Number(or.iusec) / 1e6;
    const sameInterval = Number(or.isec) === Number(cr.isec) && Number(or.iusec) === Number(cr.iusec);
    if (left > 0 && theirs > 0 && sameInterval) {
      // Ours is the earlier reading; our clock is the guest's at its timekeeper's last update, a tick or so behind.
      let ran = left - theirs;
      for (let i = 0; ran < 0 && !oneShot && i < 1e6; i++) ran += interval;
      if (ran >= 0 && ran <= elapsed + 1) Object.assign(cr, { vsec: or.vsec, vusec: or.vusec });
      return;
    }
    const signals = c.signals_s?.signals ?? [];
    const alarms = signals.filter((sig) => Buffer.from(sig.siginfo, 'base64').readInt32LE(0) === SIGALRM);
    if (!oneShot || left <= 0 || left >= elapsed || Number(cr.vsec) !== 0 || Number(cr.vusec) !== 0 || alarms.length !== 1) return;
    if ((o.signals_s?.signals ?? []).some((sig) => Buffer.from(sig.siginfo, 'base64').readInt32LE(0) === SIGALRM)) return;
    Object.assign(cr, { vsec: or.vsec, vusec: or.vusec });
    const rest = signals.filter((sig) => sig !== alarms[0]);
    if (rest.length) c.signals_s!.signals = rest;
    else delete c.signals_s!.signals;
  };
  return Object.fromEntries(fs.readdirSync(criuDir).filter((f) => /^core-\d+\.img$/.test(f)).map((f) => [f, settle]));
}

/**
 * A client in a guest: `wait PORT` until it accepts, `line PORT TEXT` one
 * line and its answer, `http PORT PATH` a GET's body, `hold` one connection to
 * each server with one exchange on it, then kept open.
 */
const CLIENT = `
import socket, subprocess, sys, time, urllib.request
kind = sys.argv[1]
def conn(port): return socket.create_connection(('127.0.0.1', int(port)), timeout=10)
if kind == 'wait':
    for i in range(300):
        try: conn(sys.argv[2]).close(); break
        except OSError: time.sleep(0.2)
    else: sys.exit('port %s never accepted' % sys.argv[2])
elif kind == 'line':
    c = conn(sys.argv[2]); c.sendall(sys.argv[3].encode() + b'\\n'); print(c.makefile().readline().strip())
elif kind == 'http':
    print(urllib.request.urlopen('http://127.0.0.1:%s%s' % (sys.argv[2], sys.argv[3]), timeout=20).read().decode().strip())
elif kind == 'hold':
    ports = dict(a.split('=') for a in sys.argv[2:])
    held, lines = [], []
    for name, request in [('redis', b'PING\\r\\n'), ('asyncio', b'held\\n'), ('node', b'GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'),
                          ('nginx', b'GET /hello.txt HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')]:
        c = conn(ports[name]); c.sendall(request); c.recv(65536); held.append(c); lines.append(name + ' connected')
    # psql waits on a pipe that never delivers: its backend idles in the server with the connection open.
    held.append(subprocess.Popen('sleep 1000000 | psql -h 127.0.0.1 -p %s -U postgres -q' % ports['postgres'], shell=True))
    # Its backend and the one answering this count; psql may take long to start in a loaded TCG guest.
    for i in range(120):
        out = subprocess.run(['psql', '-h', '127.0.0.1', '-p', ports['postgres'], '-U', 'postgres', '-Atc',
                              "select count(*) from pg_stat_activity where backend_type = 'client backend'"], capture_output=True, text=True).stdout.strip()
        if out == '2': lines.append('postgres connected'); break
        time.sleep(0.5)
    print('\\n'.join(lines), flush=True)
    while True: time.sleep(1000)
`;

/** python asyncio: an echo server counting the lines it answered (on every connection), its count the state it holds. */
const ASYNCIO = `
import asyncio, sys
served = 0
async def handle(reader, writer):
    global served
    while line := await reader.readline():
        served += 1
        writer.write(b'echo %d %s' % (served, line)); await writer.drain()
async def main():
    server = await asyncio.start_server(handle, '127.0.0.1', int(sys.argv[1]))
    print('listening', flush=True)
    async with server: await server.serve_forever()
asyncio.run(main())
`;

/** node: an HTTP server with a key-value store (/set/K/V, /get/K) and a request count. */
const NODE = `
const store = new Map();
let requests = 0;
const server = require('http').createServer((req, res) => {
  requests++;
  const [, op, key, value] = req.url.split('/');
  if (op === 'set') store.set(key, decodeURIComponent(value));
  res.end(\`node \${requests} \${store.get(key) ?? ''}\\n\`);
});
// A held keep-alive connection must stay open until the checkpoint.
server.keepAliveTimeout = 0;
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log('listening'));
`;

const nginxConf = (share: string) => `
daemon off;
master_process on;
worker_processes 2;
user root;
pid ${share}/nginx/nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  access_log off;
  keepalive_timeout 1h;
  client_body_temp_path ${share}/nginx/body;
  proxy_temp_path ${share}/nginx/proxy;
  fastcgi_temp_path ${share}/nginx/fastcgi;
  uwsgi_temp_path ${share}/nginx/uwsgi;
  scgi_temp_path ${share}/nginx/scgi;
  server { listen 127.0.0.1:${PORTS.nginx}; root ${share}/www; }
}
`;

/** The guest-side client (client.py) on the share; `hold` its command line for a program that stays connected to every server. */
export function setUpClient(share: string): string {
  fs.writeFileSync(path.join(share, 'client.py'), CLIENT);
  return `python3 ${share}/client.py hold ${Object.entries(PORTS).map(([k, v]) => `${k}=${v}`).join(' ')}`;
}

const py = (share: string, ...args: (string | number)[]) => `python3 ${share}/client.py ${args.join(' ')}`;
const waitPort = (port: number) => (guest: string, sh: Sh, share: string) => sh(guest, py(share, 'wait', port), 120).then(() => undefined);
const psql = (sql: string) => `psql -h 127.0.0.1 -p ${PORTS.postgres} -U postgres -Atc "${sql}"`;

export const SERVERS: Server[] = [
  {
    name: 'redis',
    // No persistence: the data lives only in its memory, which the checkpoint carries.
    command: () => `redis-server --port ${PORTS.redis} --bind 127.0.0.1 --save "" --appendonly no --maxmemory 32mb --protected-mode no`,
    ready: waitPort(PORTS.redis),
    store: (guest, sh) => sh(guest, `redis-cli -p ${PORTS.redis} SET greeting "from guest A" >/dev/null && redis-cli -p ${PORTS.redis} INCR hits >/dev/null`).then(() => undefined),
    check: (guest, sh) => sh(guest, `redis-cli -p ${PORTS.redis} GET greeting; redis-cli -p ${PORTS.redis} INCR hits; redis-cli -p ${PORTS.redis} CLIENT LIST | wc -l`, 60),
    // The held client was cut by --tcp-close: only the asking one is listed.
    answer: (when) => (when === 'after' ? /^from guest A\n2\n1$/ : /^from guest A\n\d+\n\d+$/),
  },
  {
    name: 'asyncio',
    setUp: (share) => fs.writeFileSync(path.join(share, 'asyncio-echo.py'), ASYNCIO),
    command: (share) => `python3 ${share}/asyncio-echo.py ${PORTS.asyncio}`,
    ready: waitPort(PORTS.asyncio),
    store: (guest, sh, share) => sh(guest, py(share, 'line', PORTS.asyncio, 'stored')).then(() => undefined),
    check: (guest, sh, share, when) => sh(guest, py(share, 'line', PORTS.asyncio, when), 60),
    // 1: stored, 2: the held client's line, 3: this one.
    answer: (when) => (when === 'after' ? /^echo 3 after$/ : /^echo \d+ before$/),
  },
  {
    name: 'node',
    setUp: (share) => fs.writeFileSync(path.join(share, 'server.js'), NODE),
    command: (share) => `node ${share}/server.js ${PORTS.node}`,
    ready: waitPort(PORTS.node),
    store: (guest, sh, share) => sh(guest, py(share, 'http', PORTS.node, '/set/greeting/from%20guest%20A')).then(() => undefined),
    check: (guest, sh, share) => sh(guest, py(share, 'http', PORTS.node, '/get/greeting'), 60),
    answer: (when) => (when === 'after' ? /^node 3 from guest A$/ : /^node \d+ from guest A$/),
  },
  {
    name: 'nginx',
    setUp: (share) => {
      fs.mkdirSync(path.join(share, 'nginx'));
      fs.mkdirSync(path.join(share, 'www'));
      fs.writeFileSync(path.join(share, 'www', 'hello.txt'), 'hello from nginx\n');
      fs.writeFileSync(path.join(share, 'nginx.conf'), nginxConf(share));
    },
    command: (share) => `nginx -e stderr -p ${share}/nginx/ -c ${share}/nginx.conf`,
    ready: waitPort(PORTS.nginx),
    check: (guest, sh, share) => sh(guest, py(share, 'http', PORTS.nginx, '/hello.txt'), 60),
    answer: () => /^hello from nginx$/,
  },
  {
    name: 'postgres',
    setUp: (share) => initPostgresCluster(path.join(share, 'pg')),
    // In an IPC namespace of its own, which the dump carries with its SysV segments: all its shared memory is SysV
    // (main and dynamic). POSIX DSM segments would be files of guest A's /dev/shm, which a runtime carries; and the
    // default anonymous main memory is an shm_mnt inode whose number may equal a segment's IPC id, which CRIU 3.17's
    // pagemap-shmem names cannot tell apart (refused by name). The container suite runs postgres with both defaults, in
    // a runc container whose /dev/shm and IPC namespace the container dump carries.
    command: (share) => `unshare --ipc setpriv --reuid=postgres --regid=postgres --clear-groups ${PG_BIN}/postgres -D ${share}/pg -p ${PORTS.postgres}` +
      ' -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c shared_buffers=1MB -c max_connections=8 -c fsync=off' +
      ' -c shared_memory_type=sysv -c dynamic_shared_memory_type=sysv',
    ready: waitPort(PORTS.postgres),
    store: (guest, sh) => sh(guest, psql("create table t (v text); insert into t values ('from guest A')")).then(() => undefined),
    // A new row goes in, and the one stored before the checkpoint is still there.
    check: (guest, sh, _share, when) => sh(guest, `${psql(`insert into t values ('${when}')`)} >/dev/null && ${psql('select v from t order by 1')}`, 60),
    answer: (when) => (when === 'after' ? /^after\nfrom guest A$/ : /^before\nfrom guest A$/),
  },
];

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protobuf from 'protobufjs';
import {
  FdRecords, RecordChannel, ReqType, STAND_IN_DIR, STAND_IN_MARK, answer, decodeResponse, encodeRequest, holdsStandIn, serve, withoutStandIn,
} from '../../shim/criu-version/index.js';
import { missingComponent } from '../helpers/cli.js';

const STAND_IN = path.join(STAND_IN_DIR, 'criu');
/** What go-criu v7's GetCriuVersion sends: criu_req{type: VERSION}, opts unset. */
const GO_CRIU_VERSION_REQUEST = Buffer.from([0x08, 0x0a]);

/** go-criu's version number (main.go GetCriuVersion): major*10000 + minor*100 + sublevel, a gitid counting as the next minor. */
function goCriuVersion(bytes: Buffer): number {
  const r = decodeResponse(bytes);
  assert.equal(r.type, ReqType.VERSION);
  assert.equal(r.success, true);
  const v = r.version!;
  let n = v.major_number * 10000 + v.minor_number * 100 + (v.sublevel ?? 0);
  if ((v as { gitid?: string }).gitid) n = n - (n % 100) + 100;
  return n;
}

/** A request with fields our subset leaves out (criu_opts: images_dir_fd=1, pid=2, leave_running=6), as runc sends a dump. */
function dumpWithOpts(): Buffer {
  const opts = protobuf.Writer.create().uint32((1 << 3) | 0).int32(5).uint32((2 << 3) | 0).int32(42).uint32((6 << 3) | 0).bool(true).finish();
  return Buffer.from(protobuf.Writer.create().uint32((1 << 3) | 0).int32(ReqType.DUMP).uint32((2 << 3) | 2).bytes(opts).finish());
}

/** Records in, records out, as a SOCK_SEQPACKET pair gives them. */
class FakeRecords implements RecordChannel {
  readonly written: Buffer[] = [];
  reads = 0;
  constructor(private readonly incoming: Buffer[]) {}
  read(): Buffer | undefined {
    this.reads++;
    return this.incoming.shift();
  }
  write(record: Buffer): void {
    this.written.push(Buffer.from(record));
  }
}

describe('criu stand-in: the version query of containerd 2.x, and nothing else', () => {
  it('answers go-criu\'s VERSION request with the images\' CRIU version, at least containerd\'s 3.16', () => {
    const ch = new FakeRecords([GO_CRIU_VERSION_REQUEST]);
    assert.deepEqual(serve(ch), { answered: 1, refused: 0 });
    assert.equal(ch.written.length, 1, 'one answer, one record');
    assert.equal(goCriuVersion(ch.written[0]), 31701);
    assert.ok(goCriuVersion(ch.written[0]) >= 31600);
    const r = decodeResponse(ch.written[0]);
    assert.equal((r.version as { gitid?: string }).gitid, undefined, 'no gitid (go-criu would count a minor up)');
  });

  it('refuses dump, restore, check and every other request with a failure naming the host, never a silent success', () => {
    for (const type of [ReqType.DUMP, ReqType.RESTORE, ReqType.PRE_DUMP, ReqType.CHECK, 9, 11, 13, ReqType.EMPTY]) {
      const r = answer({ type });
      assert.equal(r.success, false, `type ${type}`);
      assert.equal(r.type, type);
      assert.ok(r.cr_errno! > 0);
      assert.match(r.cr_errmsg!, /host/);
      assert.equal(r.version, undefined);
    }
    const ch = new FakeRecords([dumpWithOpts()]);
    assert.deepEqual(serve(ch), { answered: 1, refused: 1 });
    const r = decodeResponse(ch.written[0]);
    assert.equal(r.type, ReqType.DUMP);
    assert.equal(r.success, false);
    assert.match(r.cr_errmsg!, /^DUMP refused: .*dumped from the host/);
  });

  it('frames one message per record both ways: each answer is a whole criu_resp on its own, until the client closes', () => {
    const ch = new FakeRecords([encodeRequest({ type: ReqType.VERSION, keep_open: true }), dumpWithOpts(), GO_CRIU_VERSION_REQUEST]);
    assert.deepEqual(serve(ch), { answered: 3, refused: 1 });
    assert.equal(ch.reads, 4, 'read until the end');
    assert.deepEqual(ch.written.map((w) => decodeResponse(w).success), [true, false, true]);
    // No length prefix: the record is the message (a prefix would not decode as field 1 = VERSION).
    assert.equal(ch.written[0][0], 0x08);
    assert.equal(ch.written[0][1], ReqType.VERSION);
  });

  it('a record that is no criu_req gets a failure and ends the session', () => {
    const ch = new FakeRecords([Buffer.from([0xff, 0xff, 0xff]), GO_CRIU_VERSION_REQUEST]);
    assert.deepEqual(serve(ch), { answered: 0, refused: 1 });
    assert.equal(ch.reads, 1);
    const r = decodeResponse(ch.written[0]);
    assert.equal(r.success, false);
    assert.match(r.cr_errmsg!, /does not decode/);
  });

  it('FdRecords reads a descriptor record by record and ends at its end', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-criu-'));
    try {
      fs.writeFileSync(path.join(dir, 'req'), GO_CRIU_VERSION_REQUEST);
      const fd = fs.openSync(path.join(dir, 'req'), 'r');
      const records = new FdRecords(fd);
      assert.deepEqual(records.read(), GO_CRIU_VERSION_REQUEST);
      assert.equal(records.read(), undefined);
      fs.closeSync(fd);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('the program', function () {
    // A node start each, on a loaded machine.
    this.timeout(120_000);
    it('--version and check answer as CRIU does; other commands are refused', () => {
      assert.equal(execFileSync(STAND_IN, ['--version'], { encoding: 'utf8' }), 'Version: 3.17.1\n');
      const check = spawnSync(STAND_IN, ['check'], { encoding: 'utf8' });
      assert.equal(check.status, 0);
      assert.equal(check.stdout, 'Looks good.\n');
      for (const args of [['dump', '-t', '1'], ['restore', '-D', '/tmp'], ['check', '--feature', 'mem_dirty_track'], ['swrk'], ['swrk', 'x']]) {
        const r = spawnSync(STAND_IN, args, { encoding: 'utf8' });
        assert.equal(r.status, 1, args.join(' '));
        assert.match(r.stderr, /refused.*host/, args.join(' '));
      }
    });

    /** Runs `criu swrk <fd>` on one end of a real SOCK_SEQPACKET pair (python3 makes it), as go-criu does. */
    function swrk(requests: Buffer[]): { answers: Buffer[]; exit: number } {
      const script = `
import socket, subprocess, sys, json
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([sys.argv[1], 'swrk', str(b.fileno())], pass_fds=[b.fileno()], stderr=subprocess.DEVNULL)
b.close()
reqs = [bytes.fromhex(h) for h in sys.argv[2:]]
for r in reqs: a.send(r)
answers = [a.recv(8192).hex() for r in reqs]
a.close()
print(json.dumps({'answers': answers, 'exit': p.wait()}))`;
      const out = spawnSync('python3', ['-c', script, STAND_IN, ...requests.map((r) => r.toString('hex'))], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(out.status, 0, out.stderr);
      const r = JSON.parse(out.stdout) as { answers: string[]; exit: number };
      return { answers: r.answers.map((h) => Buffer.from(h, 'hex')), exit: r.exit };
    }

    it('over a real SOCK_SEQPACKET pair: go-criu\'s exchange gives 31701 and exit 0; requests sent together are answered one record each', function () {
      if (spawnSync('python3', ['-c', '1']).status !== 0) missingComponent(this, 'python3');
      const version = swrk([GO_CRIU_VERSION_REQUEST]);
      assert.equal(version.exit, 0, 'go-criu fails the check on a non-zero exit (Cleanup waits for it)');
      assert.equal(goCriuVersion(version.answers[0]), 31701);
      const two = swrk([encodeRequest({ type: ReqType.VERSION, keep_open: true }), dumpWithOpts()]);
      assert.equal(two.answers.length, 2);
      assert.equal(goCriuVersion(two.answers[0]), 31701);
      assert.equal(decodeResponse(two.answers[1]).success, false);
      assert.equal(two.exit, 1, 'a session with a refusal exits non-zero');
    });
  });

  describe('kept off runc\'s PATH', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ovm-criu-path-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('drops every directory whose criu is the stand-in, and keeps the rest in order', () => {
      const mk = (name: string, text?: string) => {
        const d = path.join(dir, name);
        fs.mkdirSync(d);
        if (text !== undefined) fs.writeFileSync(path.join(d, 'criu'), text, { mode: 0o755 });
        return d;
      };
      const real = mk('real', '\x7fELF...the real criu');
      const stand = mk('stand', `#!/bin/sh\n# ${STAND_IN_MARK}\nexec node x\n`);
      const none = mk('none');
      assert.equal(withoutStandIn([none, stand, real, '', STAND_IN_DIR, '/nonexistent'].join(':')), [none, real, '', '/nonexistent'].join(':'));
      assert.equal(withoutStandIn(undefined), undefined);
      assert.ok(holdsStandIn(STAND_IN_DIR), 'the checked-in stand-in carries the mark');
      assert.ok(!holdsStandIn(real));
    });

    it('the stand-in\'s directory holds only criu (nothing else would be found there)', () => {
      assert.deepEqual(fs.readdirSync(STAND_IN_DIR), ['criu']);
    });
  });
});

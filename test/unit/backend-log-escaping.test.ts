import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import winston from 'winston';
import { backendMethods } from '../../common/backend-api.js';
import { FailedPreconditionError } from '../../common/errors.js';
import { log, logSafe } from '../../common/log.js';
import { TtrpcClient, TtrpcServer } from '../../common/ttrpc/index.js';
import { BackendService, ImageStore } from '../../introspect/backend/index.js';
import { duplexPair } from './helpers/duplex-pair.js';

describe('logSafe: guest-originated strings in host logs', () => {
  it('escapes controls, bidi and separators, and the escape itself', () => {
    assert.equal(logSafe('web\ninfo forged line'), 'web\\x0ainfo forged line');
    assert.equal(logSafe('a\x1b[31mred\x7f\x9b'), 'a\\x1b[31mred\\x7f\\x9b');
    assert.equal(logSafe('evil\u202egpj.exe'), 'evil\\u{202e}gpj.exe');
    assert.equal(logSafe('x\u2028y\ufeffz'), 'x\\u{2028}y\\u{feff}z');
    assert.equal(logSafe('back\\x0a'), 'back\\\\x0a', 'an escape in the input cannot pass for ours');
    assert.equal(logSafe('lone \ud800 surrogate'), 'lone \\u{d800} surrogate');
  });

  it('keeps what prints, and cuts long values saying how long they were', () => {
    assert.equal(logSafe('/default/web-1 kworker/0:1 naïve 名前 🙂'), '/default/web-1 kworker/0:1 naïve 名前 🙂');
    assert.equal(logSafe('x'.repeat(300)), `${'x'.repeat(256)}...(300 chars)`);
    assert.equal(logSafe('🙂'.repeat(5), 2), '🙂🙂...(5 chars)', 'cut between characters, not inside one');
  });

  it('the backend logs a failed checkpoint on one line whatever the dump error quotes', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ovmigrate-logsafe-'));
    fs.mkdirSync(path.join(root, 'share'));
    const store = ImageStore.open(path.join(root, 'share'), { staging: path.join(root, 'staging') });
    const lines: string[] = [];
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
    const transport = new winston.transports.Stream({ stream: sink });
    const shown = log.transports.filter((t) => !t.silent);
    for (const t of shown) t.silent = true;
    log.add(transport);
    const server = new TtrpcServer();
    new BackendService(store, () => Promise.reject(new FailedPreconditionError('pid 7 (evil\n2026-01-01T00:00:00.000Z info released) is not frozen'))).register(server);
    const [a, b] = duplexPair();
    void server.serve(b);
    const client = new TtrpcClient(a);
    try {
      await backendMethods().checkpoint.call(client, { id: 'web', cgroup: '/default/\u202eweb', config: Buffer.from('{}') }).catch(() => undefined);
      const failed = lines.filter((l) => l.includes('checkpoint web'));
      assert.equal(failed.length, 1, lines.join('\n'));
      assert.match(failed[0], /\(\/default\/\\u\{202e\}web\) failed: FAILED_PRECONDITION: pid 7 \(evil\\x0a2026-01-01T00:00:00.000Z info released\) is not frozen$/);
      assert.ok(!lines.some((l) => l.startsWith('2026-01-01')), 'no forged line');
    } finally {
      client.close();
      log.remove(transport);
      for (const t of shown) t.silent = false;
      store.close();
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

/**
 * What a real `evtstream serve` answers over HTTP and WebSocket besides FutoIn calls: a request
 * over the message limit gets 413 with a FutoIn error that fetch and curl read (no reset), a
 * WebSocket message over it closes that socket with 1009 and a reason, unknown paths get 404;
 * nothing of a refused request is written and everyone else keeps being served.
 */
import { expect } from 'chai';
import { execFile } from 'child_process';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import WebSocket from 'ws';
import {
  killChildren,
  rawCall,
  requireFreshDist,
  startCliServer,
  type CliServer,
} from '../support/cli';
import { describeDatabases } from '../support/db';
import { TEST_CREDENTIALS } from '../support/service';
import { withTimeout } from '../support/wait';

const LIMIT = 64 * 1024;
const ADD = 'futoin.evt.gen:1.1:addEvent';
const TOO_LARGE = /^Request message of \d+ bytes exceeds the message limit of 65536 bytes$/;

/** An addEvent message of at least `bytes` bytes. */
function addEventOf(bytes: number): string {
  return JSON.stringify({
    f: ADD,
    p: { type: 'BIG', data: 'x'.repeat(bytes) },
    rid: 'C1',
    sec: TEST_CREDENTIALS,
  });
}

interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '-i', '--max-time', '30', ...args], (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

/** The status line and the JSON body of a `curl -i` answer (the last one, after a 100). */
function curlAnswer(out: string): { status: number; body: unknown } {
  const parts = out.split(/\r\n\r\n/);
  const heads = parts.filter((p) => p.startsWith('HTTP/'));
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(heads.at(-1) ?? '')?.[1]);
  return { status, body: JSON.parse(parts.at(-1) ?? 'null') };
}

describeDatabases(
  'HTTP and WebSocket answers of evtstream serve',
  (fx) => {
    let server: CliServer;
    let tmp: string;
    before(async function () {
      this.timeout(60_000);
      requireFreshDist();
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-http-'));
      server = await startCliServer(['--db', fx.url], {
        env: { EVTSTREAM_USERS: TEST_CREDENTIALS, EVTSTREAM_LOG: 'warn' },
      });
    });
    after(async () => {
      await killChildren();
      fs.rmSync(tmp, { recursive: true, force: true });
    });

    async function storedEvents(): Promise<number> {
      const store = await fx.openStore();
      try {
        return await store.countEvents();
      } finally {
        await store.close();
      }
    }

    async function stillServes(): Promise<void> {
      expect(server.child.status, 'the service process is alive').to.equal(null);
      const ping = await rawCall(
        server.url,
        'futoin.evt.poll:1.1:ping',
        { echo: 7 },
        TEST_CREDENTIALS,
      );
      expect(ping).to.deep.include({ r: { echo: 7 } });
    }

    // Breaking change it catches: NodeExecutor's own body handling (a reset, no answer).
    it('a body over the message limit gets 413 with a FutoIn error, read by fetch; nothing written', async () => {
      const before = await storedEvents();
      for (const bytes of [LIMIT + 1024, 5 * 1024 * 1024]) {
        const rsp = await fetch(server.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/futoin+json' },
          body: addEventOf(bytes),
          signal: AbortSignal.timeout(20_000),
        });
        expect(rsp.status, `${bytes} bytes`).to.equal(413);
        expect(rsp.headers.get('content-type')).to.equal('application/futoin+json');
        expect(rsp.headers.get('connection')).to.equal('close');
        const body = (await rsp.json()) as { e: string; edesc: string };
        expect(body.e).to.equal('InvalidRequest');
        expect(body.edesc).to.match(TOO_LARGE);
      }
      // Just under the limit is a call like any other (refused for its size by addEvent's rules
      // or accepted, but answered 200 either way).
      const under = await fetch(server.url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/futoin+json' },
        body: addEventOf(LIMIT - 1024),
      });
      expect(under.status).to.equal(200);
      expect(await storedEvents(), 'only the call under the limit wrote').to.be.at.most(before + 1);
      await stillServes();
    });

    it('curl reads the 413 and its FutoIn error, with and without Expect: 100-continue, chunked too', async () => {
      const file = path.join(tmp, 'big.json');
      fs.writeFileSync(file, addEventOf(2 * 1024 * 1024));
      const before = await storedEvents();
      const common = ['-X', 'POST', '-H', 'Content-Type: application/futoin+json'];
      for (const extra of [
        [],
        ['-H', 'Expect: 100-continue'],
        ['-H', 'Expect:'],
        ['-H', 'Transfer-Encoding: chunked'],
        ['-H', 'Transfer-Encoding: chunked', '-H', 'Expect:'],
      ]) {
        const r = await curl([...common, ...extra, '--data-binary', `@${file}`, server.url]);
        expect(r.code, `curl ${extra.join(' ')}: ${r.stderr}`).to.equal(0);
        const answer = curlAnswer(r.stdout);
        expect(answer.status, extra.join(' ')).to.equal(413);
        expect(answer.body).to.include({ e: 'InvalidRequest' });
      }
      expect(await storedEvents()).to.equal(before);
      await stillServes();
    });

    // Breaking change it catches: answering 413 at once and closing on the unread rest (the
    // client still sending gets a reset and may lose the answer).
    it('while a client slowly sends an oversized body, others are served; then it gets its 413', async () => {
      const url = new URL(server.url);
      const req = http.request({
        host: url.hostname,
        port: url.port,
        method: 'POST',
        path: '/',
        headers: { 'Content-Type': 'application/futoin+json' },
      });
      const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
        req.on('response', (rsp) => {
          let body = '';
          rsp.setEncoding('utf8');
          rsp.on('data', (d: string) => (body += d));
          rsp.on('end', () => resolve({ status: rsp.statusCode ?? 0, body }));
        });
        req.on('error', reject);
      });
      const chunk = 'x'.repeat(48 * 1024);
      req.write(`{"f":"${ADD}","p":{"type":"BIG","data":"`);
      req.write(chunk);
      req.write(chunk); // over the limit now
      // Another client meanwhile, over HTTP and over WebSocket.
      await stillServes();
      const ws = new WebSocket(server.wsUrl);
      const reply = await withTimeout(
        new Promise<unknown>((resolve, reject) => {
          ws.on('open', () =>
            ws.send(
              JSON.stringify({
                f: 'futoin.evt.poll:1.1:ping',
                p: { echo: 3 },
                rid: 'C1',
                sec: TEST_CREDENTIALS,
              }),
            ),
          );
          ws.on('message', (d: Buffer) => resolve(JSON.parse(d.toString())));
          ws.on('error', reject);
        }),
        'a WebSocket ping during the upload',
      );
      ws.close();
      expect(reply).to.deep.include({ r: { echo: 3 } });
      req.write(chunk);
      req.end('"},"rid":"C1"}');
      const { status, body } = await withTimeout(answer, 'the 413 answer');
      expect(status).to.equal(413);
      expect((JSON.parse(body) as { edesc: string }).edesc).to.match(TOO_LARGE);
    });

    it('a WebSocket message over the limit closes that socket with 1009 and a reason; nothing written; others served', async () => {
      const before = await storedEvents();
      const other = new WebSocket(server.wsUrl);
      await withTimeout(
        new Promise((resolve, reject) => {
          other.on('open', resolve);
          other.on('error', reject);
        }),
        'the other connection',
      );
      const big = new WebSocket(server.wsUrl);
      big.on('error', () => undefined);
      const closed = await withTimeout(
        new Promise<{ code: number; reason: string }>((resolve) => {
          big.on('open', () => big.send(addEventOf(LIMIT + 1024)));
          big.on('close', (code: number, reason: Buffer) =>
            resolve({ code, reason: reason.toString() }),
          );
        }),
        'the oversized connection to close',
      );
      expect(closed).to.deep.equal({
        code: 1009,
        reason: 'Message over the limit of 65536 bytes',
      });
      const reply = await withTimeout(
        new Promise<unknown>((resolve) => {
          other.on('message', (d: Buffer) => resolve(JSON.parse(d.toString())));
          other.send(
            JSON.stringify({
              f: 'futoin.evt.poll:1.1:ping',
              p: { echo: 5 },
              rid: 'C2',
              sec: TEST_CREDENTIALS,
            }),
          );
        }),
        'the other connection to answer',
      );
      other.close();
      expect(reply).to.deep.include({ r: { echo: 5 } });
      expect(await storedEvents()).to.equal(before);
    });

    // Breaking change it catches: handing every path to FutoIn (200 with a FutoIn error).
    it('paths that are no FutoIn call get 404; FutoIn calls, probes, console and metrics are served', async () => {
      const get = async (p: string, init: RequestInit = {}): Promise<number> =>
        (await fetch(`${server.url}${p.replace(/^\//, '')}`, init)).status;
      for (const p of ['/healthz', '/nope', '/favicon.ico', '/futoin.evt.poll', '/a/b', '/livez/x'])
        expect(await get(p), p).to.equal(404);
      expect(await get('/nope', { method: 'POST', body: '{}' }), 'POST /nope').to.equal(404);
      // FutoIn's own: POST and GET-style calls (FTN5), GET / (400, as futoin-executor answers).
      const auth = { Authorization: `Basic ${Buffer.from(TEST_CREDENTIALS).toString('base64')}` };
      const viaGet = await fetch(`${server.url}futoin.evt.poll/1.1/ping?echo=9`, { headers: auth });
      expect(viaGet.status).to.equal(200);
      expect(await viaGet.json()).to.deep.include({ r: { echo: 9 } });
      expect(await get('/')).to.equal(400);
      await stillServes();
      expect(await get('/livez')).to.equal(200);
      expect(await get('/readyz')).to.equal(200);
      expect(await get('/console/')).to.equal(200);
      expect(await get('/metrics'), 'admins only').to.equal(401);
    });
  },
  ['sqlite'],
);

/**
 * Messages that crash futoin-executor's NodeExecutor as shipped (and so the reference service),
 * sent raw to the real service process (`evtstream serve`): each must get a FutoIn error or close
 * that one connection, and the process keeps serving everyone.
 */
import { expect } from 'chai';
import { requireFreshDist, killChildren, startCliServer, type CliServer } from '../support/cli';
import { describeDatabases } from '../support/db';
import { TEST_CREDENTIALS } from '../support/service';

interface WsSocket {
  send(data: string | Buffer): void;
  close(): void;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Buffer) => void): this;
  on(event: 'close', listener: (code: number) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const WebSocket = require('ws') as new (url: string) => WsSocket;

const VALID = {
  f: 'futoin.evt.poll:1.1:pollEvents',
  p: { component: 'LIVE' },
  sec: TEST_CREDENTIALS,
};

/** Sends raw frames on a new WebSocket; resolves with the replies or the close code. */
function wsExchange(
  url: string,
  frames: Array<string | Buffer>,
  expectReplies: number,
): Promise<{ replies: unknown[]; closed?: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const replies: unknown[] = [];
    const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
    ws.on('open', () => frames.forEach((f) => ws.send(f)));
    ws.on('message', (data) => {
      replies.push(JSON.parse(data.toString()));
      if (replies.length === expectReplies) {
        clearTimeout(timer);
        ws.close();
        resolve({ replies });
      }
    });
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve({ replies, closed: code });
    });
    ws.on('error', () => undefined);
  });
}

async function httpPost(url: string, body: string): Promise<Record<string, unknown>> {
  const rsp = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/futoin+json' },
  });
  return (await rsp.json()) as Record<string, unknown>;
}

describeDatabases('hardening: messages that crash a stock NodeExecutor', (fx) => {
  after(() => expect(service.child.stderr).not.to.match(/uncaught|unhandled/i));
  let service: CliServer;
  before(async function () {
    this.timeout(240_000);
    requireFreshDist();
    service = await startCliServer(['--db', fx.url], {
      env: { EVTSTREAM_USERS: TEST_CREDENTIALS, EVTSTREAM_LOG: 'warn' },
    });
  });
  after(killChildren);

  async function stillServes(): Promise<void> {
    expect(service.child.status, 'the service process is alive').to.equal(null);
    const viaHttp = await httpPost(service.url, JSON.stringify({ ...VALID, rid: 'C1' }));
    expect(viaHttp).to.have.property('r');
    const viaWs = await wsExchange(service.wsUrl, [JSON.stringify({ ...VALID, rid: 'C2' })], 1);
    expect(viaWs.replies[0]).to.have.property('r');
  }

  const wsFrames: Array<[string, string | Buffer]> = [
    ['a JSON null message', 'null'],
    ['a message without rid', JSON.stringify({ f: VALID.f, p: VALID.p, sec: TEST_CREDENTIALS })],
    ['a message with a numeric rid', JSON.stringify({ ...VALID, rid: 7 })],
    ['a JSON array message', '[1,2]'],
    [
      'a frame over the 64 KiB message limit',
      JSON.stringify({ ...VALID, rid: 'C9', pad: 'x'.repeat(70 * 1024) }),
    ],
  ];
  for (const [name, frame] of wsFrames) {
    it(`WebSocket: ${name} closes that connection only`, async () => {
      const other = await wsExchange(service.wsUrl, [JSON.stringify({ ...VALID, rid: 'C0' })], 1);
      expect(other.replies).to.have.length(1);
      const res = await wsExchange(service.wsUrl, [frame], 1);
      expect(res.replies).to.deep.equal([]);
      expect(res.closed).to.be.oneOf([1008, 1009]);
      await stillServes();
    });
  }

  it('WebSocket: non-JSON text is ignored and the connection keeps working', async () => {
    const res = await wsExchange(
      service.wsUrl,
      ['not json', JSON.stringify({ ...VALID, rid: 'C3' })],
      1,
    );
    expect(res.replies[0]).to.include({ rid: 'C3' });
  });

  const httpBodies: Array<[string, string, string]> = [
    ['a JSON null body', 'null', 'InvalidRequest'],
    ['a JSON array body', '[1]', 'InvalidRequest'],
    ['"p": null', JSON.stringify({ ...VALID, p: null, rid: 'C4' }), 'InvalidRequest'],
    [
      'a message without rid',
      JSON.stringify({ f: VALID.f, p: VALID.p, sec: TEST_CREDENTIALS }),
      '',
    ],
  ];
  for (const [name, body, code] of httpBodies) {
    it(`HTTP: ${name} gets ${code || 'an answer'}`, async () => {
      const reply = await httpPost(service.url, body);
      if (code) expect(reply['e']).to.equal(code);
      else expect(reply).to.have.property('r');
      await stillServes();
    });
  }

  it('WebSocket: "p": null gets InvalidRequest on a connection that keeps working', async () => {
    const res = await wsExchange(
      service.wsUrl,
      [JSON.stringify({ ...VALID, p: null, rid: 'C5' }), JSON.stringify({ ...VALID, rid: 'C6' })],
      2,
    );
    const byRid = Object.fromEntries(res.replies.map((r) => [(r as { rid: string }).rid, r]));
    expect(byRid['C5']).to.include({ e: 'InvalidRequest' });
    expect(byRid['C6']).to.have.property('r');
  });
});

/**
 * Stopping a real `evtstream serve` with SIGTERM while a push receiver is mid-stream: readiness
 * turns 503 at once, new push sessions are refused, the batch in flight finishes and its
 * pointer is stored, the process exits 0 within --shutdown-timeout, and a new service goes on
 * from the stored pointer without losing anything.
 */
import { expect } from 'chai';
import WebSocket from 'ws';
import {
  killChildren,
  rawCall,
  requireFreshDist,
  startCliServer,
  type CliServer,
} from '../support/cli';
import { describeDatabases, type DbFixture } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import { expectFutoinError, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { withTimeout } from '../support/wait';

const ADD = 'futoin.evt.gen:1.1:addEvent';

async function addEvents(server: CliServer, n: number, tag: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const rsp = await rawCall(server.url, ADD, { type: 'T', data: { tag, i } }, TEST_CREDENTIALS);
    expect(rsp, JSON.stringify(rsp)).to.have.property('r');
    ids.push(String(rsp['r']));
  }
  return ids;
}

async function probe(server: CliServer, path: string): Promise<{ status: number; body: unknown }> {
  const rsp = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: rsp.status, body: await rsp.json() };
}

async function pointerOf(fx: DbFixture, component: string): Promise<string | null> {
  const store = await fx.openStore();
  try {
    return (await store.consumerPosition(`${TEST_USER}:${component}`))?.pointer ?? null;
  } finally {
    await store.close();
  }
}

const serve = (fx: DbFixture, args: string[] = []): Promise<CliServer> =>
  startCliServer(['--db', fx.url, ...args], { env: { EVTSTREAM_USERS: TEST_CREDENTIALS } });

describeDatabases('evtstream serve: SIGTERM drains push sessions, then exits', (fx) => {
  before(requireFreshDist);
  const receivers: RawReceiver[] = [];
  afterEach(() => {
    for (const r of receivers.splice(0)) r.close();
  });
  after(killChildren);

  // Breaking changes it catches: readiness still 200 while draining; new sessions accepted;
  // the process closing without waiting for the batch in flight (its pointer not stored).
  it('readyz 503 at once, new sessions refused, the batch in flight acknowledged and stored; a new service goes on from there', async function () {
    this.timeout(120_000);
    const server = await serve(fx, ['--shutdown-timeout', '60s']);
    const first = await addEvents(server, 5, 'before');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const receiver = await connectRaw(server.wsUrl, TEST_CREDENTIALS, 'DRAIN', null, '1.1', (r) => {
      r.behaviour = () => held;
    });
    receivers.push(receiver);
    await receiver.until(() => receiver.calls.flatMap((c) => c.ids).length === first.length);
    expect((await probe(server, 'readyz')).status).to.equal(200);

    server.child.signal('SIGTERM');
    await server.child.waitForOutput(/SIGTERM: stopping/, undefined, 'stderr');
    expect(await probe(server, 'readyz')).to.deep.equal({
      status: 503,
      body: { status: 'not ready', reason: 'shutting down' },
    });
    expect((await probe(server, 'livez')).status, 'still live while draining').to.equal(200);
    const refused = await expectFutoinError(
      connectRaw(server.wsUrl, TEST_CREDENTIALS, 'LATE'),
      'DefenseRejected',
    );
    expect(refused.info).to.match(/shutting down/);
    expect(server.child.status, 'waits for the batch in flight').to.equal(null);

    release();
    const status = await server.child.wait(70_000);
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    // Finished by draining, not cut off by the timeout.
    expect(server.child.stderr).not.to.match(/Shutdown: /);
    expect(server.child.stderr).not.to.include('ERROR');
    expect(receiver.events.map((e) => e.id)).to.deep.equal(first);
    expect(await pointerOf(fx, 'DRAIN'), 'the acknowledged batch is stored').to.equal(first.at(-1));

    // A new service: only what came after the stored pointer, all of it.
    const next = await serve(fx);
    try {
      const later = await addEvents(next, 3, 'after');
      const again = await connectRaw(next.wsUrl, TEST_CREDENTIALS, 'DRAIN');
      receivers.push(again);
      await again.until(() => again.events.length >= later.length);
      expect(again.events.map((e) => e.id)).to.deep.equal(later);
    } finally {
      await next.child.stop('SIGTERM');
    }
  });

  // Breaking change it catches: the push target wrapped for tracing without goingAway (the
  // sessions' sockets were then cut without a close code a receiver could act on).
  it("closes the push sessions' WebSockets as going away (1001), saying why", async function () {
    this.timeout(60_000);
    const server = await serve(fx);
    const ws = new WebSocket(server.wsUrl);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.on('close', (code: number, reason: Buffer) =>
        resolve({ code, reason: reason.toString() }),
      ),
    );
    // A LIVE session by hand: readyToReceive answered means the session is open.
    const answered = await withTimeout(
      new Promise<unknown>((resolve, reject) => {
        ws.on('error', reject);
        ws.on('message', (d: Buffer) => resolve(JSON.parse(d.toString())));
        ws.on('open', () =>
          ws.send(
            JSON.stringify({
              f: 'futoin.evt.push:1.1:readyToReceive',
              p: { component: 'LIVE' },
              rid: 'C1',
              sec: TEST_CREDENTIALS,
            }),
          ),
        );
      }),
      'readyToReceive to be answered',
    );
    expect(answered).to.deep.include({ rid: 'C1' });
    expect(answered).to.not.have.property('e');
    server.child.signal('SIGTERM');
    expect(await withTimeout(closed, 'the session socket to close')).to.deep.equal({
      code: 1001,
      reason: 'The service is shutting down: connect again, to another node',
    });
    const status = await server.child.wait(30_000);
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
  });

  // Breaking change it catches: a drain that waits for a receiver that never answers.
  it('exits 0 within --shutdown-timeout when a receiver never answers; its batch is delivered again', async function () {
    this.timeout(120_000);
    const server = await serve(fx, ['--shutdown-timeout', '2s']);
    const ids = await addEvents(server, 3, 'stalled');
    const receiver = await connectRaw(server.wsUrl, TEST_CREDENTIALS, 'STALL', null, '1.1', (r) => {
      r.behaviour = () => 'stall';
    });
    receivers.push(receiver);
    await receiver.until(() => receiver.calls.flatMap((c) => c.ids).includes(ids.at(-1)!));
    const pointer = await pointerOf(fx, 'STALL');
    const signalled = performance.now();
    server.child.signal('SIGTERM');
    const status = await server.child.wait(30_000);
    const ms = performance.now() - signalled;
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    expect(ms, 'ms from SIGTERM to the exit: the drain waited for the timeout').to.be.at.least(
      2_000,
    );
    expect(server.child.stderr).to.match(/Shutdown: push batches still unanswered after 2000 ms/);
    expect(await pointerOf(fx, 'STALL'), 'nothing was acknowledged').to.equal(pointer);
    // Everything sent and never answered (events of the suite's other tests too).
    const unanswered = [...new Set(receiver.calls.flatMap((c) => c.ids))];
    expect(unanswered).to.include.members(ids);

    const next = await serve(fx);
    try {
      const again = await connectRaw(next.wsUrl, TEST_CREDENTIALS, 'STALL');
      receivers.push(again);
      await again.until(() => again.events.length >= unanswered.length);
      expect(again.events.map((e) => e.id)).to.deep.equal(unanswered);
    } finally {
      await next.child.stop('SIGTERM');
    }
  });
});

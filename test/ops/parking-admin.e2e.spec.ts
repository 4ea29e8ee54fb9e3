/**
 * ftn18es.admin 1.1 on the real service: max_attempts per consumer (applied to a session that is
 * stuck now), the parked events with the receiver's error, replay (the session restarts and the
 * receiver gets the event marked replayed) and skip, all recorded; 1.0 clients keep working;
 * calls from another browser origin, or in the URL form, are refused.
 */
import { expect } from 'chai';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import WebSocket from 'ws';
import type { StreamService } from '../../src/app/service';
import type { Event } from '../../src/common/event';
import { AdminFace } from '../../src/common/faces/AdminFace';
import type { ConsumerInfo, MoveRecord, ParkedInfo } from '../../src/ops/admin';
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import { describeDatabases } from '../support/db';
import { connectRaw, type RawReceiver } from '../support/push';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
  TEST_USER,
} from '../support/service';
import { waitFor, waitForEvent, waitForValue } from '../support/wait';

const ADMIN = 'root';
const ADMIN_SECRET = 'root-secret';
const ADMIN_CREDENTIALS = `${ADMIN}:${ADMIN_SECRET}`;
const ALLOWED_ORIGIN = 'https://ops.example.com';

/** A ReliableReceiver failing on the events in `poison`. */
class Picky extends ReliableReceiver {
  readonly got: Event[] = [];
  readonly poison = new Set<string>();
  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    if (events.some((e) => this.poison.has(e.id))) as.error('InternalError', 'poison');
    this.got.push(...events);
  }
}

/** One raw FTN7 call over a WebSocket opened with `headers` (a browser's Origin, say). */
async function wsCall(
  url: string,
  f: string,
  p: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const ws = new WebSocket(url, { headers });
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      ws.once('message', (data: Buffer) =>
        resolve(JSON.parse(data.toString('utf8')) as Record<string, unknown>),
      );
      ws.once('close', () => reject(new Error('closed without an answer')));
    });
    ws.send(JSON.stringify({ f, p, rid: 'C1', sec: ADMIN_CREDENTIALS }));
    return await answer;
  } finally {
    ws.close();
  }
}

describeDatabases('ftn18es.admin: poison events', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;
  const faces = new Set<string>();
  const receivers: RawReceiver[] = [];

  before(async () => {
    service = await startService(fx, {
      admins: new Map([[ADMIN, ADMIN_SECRET]]),
      adminOrigins: [ALLOWED_ORIGIN],
      push: { retry_min_ms: 10, retry_max_ms: 100 },
    });
    ccm = clientCcm();
  });
  afterEach(() => {
    for (const r of receivers.splice(0)) r.close();
  });
  after(async () => {
    ccm?.close();
    await service?.close();
  });

  const admin = <T>(body: (as: AsyncSteps, face: AdminFace) => void, version = '1.1'): Promise<T> =>
    steps<T>((as) => {
      const name = `admin-${version}`;
      if (!faces.has(name)) {
        faces.add(name);
        AdminFace.register(as, ccm, name, service.wsUrl, ADMIN_CREDENTIALS, {
          secureChannel: true,
          version,
        });
      }
      as.add((as) => body(as, ccm.iface<AdminFace>(name)));
    });
  const consumer = async (ident: string): Promise<ConsumerInfo | undefined> =>
    (await admin<{ consumers: ConsumerInfo[] }>((as, f) => f.listConsumers(as))).consumers.find(
      (c) => c.ident === ident,
    );
  const parked = async (ident: string | null, all = false): Promise<ParkedInfo[]> =>
    (
      await admin<{ parked: ParkedInfo[] }>((as, f) =>
        f.listParked(as, ident, { include_resolved: all }),
      )
    ).parked;
  const moves = async (ident: string, version = '1.1'): Promise<MoveRecord[]> =>
    (await admin<{ moves: MoveRecord[] }>((as, f) => f.listMoves(as, ident, 20), version)).moves;
  const add = (n: number, type: string): Promise<string[]> =>
    service.store.addEvents(
      Array.from({ length: n }, (_v, i) => ({ type, data: JSON.stringify({ i }) })),
    );
  const raw = async (
    component: string,
    behaviour: RawReceiver['behaviour'],
    want: string[],
  ): Promise<RawReceiver> => {
    const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, component, want, '1.1', (r) => {
      r.ordered = true;
      r.behaviour = behaviour;
    });
    receivers.push(r);
    return r;
  };

  describe('max_attempts', () => {
    const C = 'ADM_STUCK';
    const ident = `${TEST_USER}:${C}`;

    // Breaking change it catches: the rule read only when a session starts.
    it('parks the event a consumer is stuck on once max_attempts is set, recorded', async function () {
      this.timeout(60_000);
      await service.store.registerConsumer(ident);
      const ids = await add(4, C);
      const poison = ids[1]!;
      const r = await raw(C, (call) => (call.ids.includes(poison) ? 'fail' : 'ok'), [C]);
      await r.until(() => r.calls.length >= 5);
      expect(await consumer(ident)).to.include({ parked: 0, max_attempts: 0 });
      expect(r.events).to.deep.equal([]);

      const set = await admin<{ max_attempts: number }>((as, f) =>
        f.setMaxAttempts(as, ident, 2, 'it blocks billing'),
      );
      expect(set).to.deep.equal({ max_attempts: 2 });
      await r.until(() => r.events.length === 3);
      expect(r.events.map((e) => e.id)).to.deep.equal([ids[0], ids[2], ids[3]]);
      await waitFor('parked shown', async () => (await consumer(ident))?.parked === 1);
      expect(await consumer(ident)).to.include({ max_attempts: 2, parking_suspended: false });

      const [p] = await parked(ident);
      expect(p).to.deep.include({
        ident,
        state: 'parked',
        error_code: 'InternalError',
        error_info: 'receiver fails on purpose',
      });
      expect(p!.event).to.deep.equal({
        id: poison,
        type: C,
        data: { i: 1 },
        ts: p!.event.ts,
      });
      expect(p!.attempts).to.be.at.least(2);
      expect(p).to.not.have.property('acted_by');
      const [limit] = await moves(ident);
      expect(limit).to.deep.include({
        action: 'limit',
        max_attempts: 2,
        by: ADMIN,
        reason: 'it blocks billing',
      });
    });

    it('refuses an unknown consumer, and values the interface does not take', async () => {
      await expectFutoinError(
        admin((as, f) => f.setMaxAttempts(as, `${TEST_USER}:NOBODY`, 3)),
        'NotRegistered',
      );
      // futoin-invoker checks the types before sending; the service checks them too.
      for (const bad of [1001, -1, 2.5, '3']) {
        const rsp = await wsCall(service.wsUrl, 'ftn18es.admin:1.1:setMaxAttempts', {
          ident,
          max_attempts: bad,
        });
        expect(rsp, String(bad)).to.include({ e: 'InvalidRequest' });
      }
      const off = await admin<{ max_attempts: number }>((as, f) => f.setMaxAttempts(as, ident, 0));
      expect(off.max_attempts).to.equal(0);
      expect(await consumer(ident)).to.include({ max_attempts: 0, parked: 1 });
    });
  });

  describe('replay and skip', () => {
    const C = 'ADM_PICKY';
    const ident = `${TEST_USER}:${C}`;
    let receiver: Picky;
    let rccm: AdvancedCCM;
    let ids: string[];
    let sessions = 0;

    before(async function () {
      this.timeout(60_000);
      await service.store.registerConsumer(ident);
      await admin((as, f) => f.setMaxAttempts(as, ident, 2));
      rccm = new AdvancedCCM();
      receiver = new Picky(rccm);
      receiver.on('ready', () => sessions++);
      ids = await add(6, C);
      receiver.poison.add(ids[1]!);
      receiver.poison.add(ids[3]!);
      const ready = waitForEvent(receiver, 'ready', 30_000);
      receiver.start(service.wsUrl, TEST_CREDENTIALS, { component: C, want: [C] });
      await ready;
      await waitForValue(
        'caught up',
        async () => (await consumer(ident))?.pointer,
        (p) => p === ids[5],
        30_000,
      );
    });
    after(() => {
      receiver?.stop();
      rccm?.close();
    });

    it('lists what it parked, in ID order, with the errors', async () => {
      expect(receiver.got.map((e) => e.id)).to.deep.equal([ids[0], ids[2], ids[4], ids[5]]);
      const list = await parked(ident);
      expect(list.map((p) => [p.event.id, p.state, p.error_code])).to.deep.equal([
        [ids[1], 'parked', 'InternalError'],
        [ids[3], 'parked', 'InternalError'],
      ]);
      expect((await parked(null)).map((p) => p.ident)).to.include(ident);
    });

    it('replays one: the session restarts and the receiver gets it marked replayed', async function () {
      this.timeout(60_000);
      receiver.poison.delete(ids[1]!);
      const before = sessions;
      const r = await admin<{ count: number }>((as, f) =>
        f.replayParked(as, ident, ids[1], 'fixed the parser'),
      );
      expect(r.count).to.equal(1);
      await waitFor('a new session', () => sessions > before);
      await waitFor('the replay', () => receiver.got.some((e) => e.id === ids[1]));
      const replay = receiver.got.find((e) => e.id === ids[1]);
      expect(replay).to.include({ replayed: true, type: C });
      expect(replay!.data).to.deep.equal({ i: 1 });
      await waitForValue(
        'resolved',
        async () => (await parked(ident, true)).find((p) => p.event.id === ids[1]),
        (p) => p?.state === 'replayed',
      );
      const [p] = (await parked(ident, true)).filter((x) => x.event.id === ids[1]);
      expect(p).to.include({ acted_by: ADMIN, acted_reason: 'fixed the parser' });
      expect(p!.resolved_at).to.be.a('string');
      expect((await parked(ident)).map((x) => x.event.id)).to.deep.equal([ids[3]]);
      expect(receiver.got.filter((e) => e.id === ids[1])).to.have.length(1);
    });

    it('skips one with a reason, recorded; unknown ones are refused', async () => {
      await expectFutoinError(
        admin((as, f) => f.skipParked(as, ident, ids[1], 'already replayed')),
        'InvalidRequest',
      );
      await expectFutoinError(
        admin((as, f) => f.replayParked(as, `${TEST_USER}:NOBODY`, null)),
        'NotRegistered',
      );
      const r = await admin<{ count: number }>((as, f) =>
        f.skipParked(as, ident, null, 'bad data from the old importer'),
      );
      expect(r.count).to.equal(1);
      expect(await parked(ident)).to.deep.equal([]);
      expect(await consumer(ident)).to.include({ parked: 0 });
      const actions = (await moves(ident)).map((m) => [m.action, m.event_id, m.reason]);
      expect(actions.slice(0, 2)).to.deep.equal([
        ['skip', ids[3], 'bad data from the old importer'],
        ['replay', ids[1], 'fixed the parser'],
      ]);
      const none = await admin<{ count: number }>((as, f) => f.replayParked(as, ident, null));
      expect(none.count).to.equal(0);
    });

    it('keeps 1.0 clients working: moves and drops only in listMoves, extra fields dropped', async () => {
      const old = await moves(ident, '1.0');
      expect(old.every((m) => m.action === 'move' || m.action === 'drop')).to.equal(true);
      const list = await admin<{ consumers: ConsumerInfo[] }>(
        (as, f) => f.listConsumers(as),
        '1.0',
      );
      expect(list.consumers.find((c) => c.ident === ident)).to.include({ ident });
      const moved = await admin<Record<string, unknown>>(
        (as, f) => f.moveConsumer(as, ident, 'newest'),
        '1.0',
      );
      expect(Object.keys(moved).sort()).to.deep.equal(['from', 'pointer']);
      // A 1.0 face knows no 1.1 function (futoin-invoker refuses it before sending).
      await expectFutoinError(
        admin((as, f) => f.setMaxAttempts(as, ident, 3), '1.0'),
        'InvokerError',
      );
    });
  });

  describe('cross-site requests', () => {
    const C = 'ADM_ORIGIN';
    const ident = `${TEST_USER}:${C}`;
    const F = 'ftn18es.admin:1.1:';
    const host = (): string => new URL(service.url).host;

    before(() => service.store.registerConsumer(ident));

    // Breaking change it catches: checking the Origin on HTTP only, or not at all.
    it('refuses admin calls over a WebSocket opened from another origin, and takes its own', async () => {
      for (const origin of ['http://evil.example', 'null', `https://${host()}.evil.example`]) {
        for (const [fn, p] of [
          ['moveConsumer', { ident, to: 'newest' }],
          ['dropConsumer', { ident }],
          ['setMaxAttempts', { ident, max_attempts: 5 }],
          ['listConsumers', {}],
        ] as const) {
          const rsp = await wsCall(service.wsUrl, F + fn, p, { Origin: origin });
          expect(rsp, `${fn} from ${origin}`).to.include({ e: 'SecurityError' });
          expect(String(rsp['edesc'])).to.match(/another origin/);
        }
      }
      expect(await consumer(ident)).to.include({ max_attempts: 0 });
      for (const origin of [`http://${host()}`, ALLOWED_ORIGIN]) {
        const rsp = await wsCall(service.wsUrl, `${F}listConsumers`, {}, { Origin: origin });
        expect(rsp, origin).to.have.property('r');
      }
      // Not a browser: no Origin at all.
      expect(await wsCall(service.wsUrl, `${F}stats`, {})).to.have.property('r');
    });

    it('refuses admin calls posted from another origin, and any in the URL form', async () => {
      const post = (origin: string): Promise<Response> =>
        fetch(service.url, {
          method: 'POST',
          headers: { 'Content-Type': 'text/plain', Origin: origin },
          body: JSON.stringify({
            f: `${F}dropConsumer`,
            p: { ident },
            rid: 'C1',
            sec: ADMIN_CREDENTIALS,
          }),
        });
      expect(await (await post('http://evil.example')).json()).to.include({ e: 'SecurityError' });
      expect(await consumer(ident)).to.not.equal(undefined);

      // What an <img> or a link elsewhere makes a browser send, with credentials it knows
      // (futoin-executor takes an HTTP Basic Authorization header in the URL form).
      const basic = `Basic ${Buffer.from(ADMIN_CREDENTIALS).toString('base64')}`;
      for (const fn of ['listConsumers', 'stats']) {
        const get = await fetch(new URL(`ftn18es.admin/1.1/${fn}`, service.url), {
          headers: { Authorization: basic },
        });
        expect(await get.json(), fn).to.include({ e: 'SecurityError' });
      }
      expect(await consumer(ident)).to.not.equal(undefined);
    });
  });
});

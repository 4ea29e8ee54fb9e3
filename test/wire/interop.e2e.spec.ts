/**
 * Interoperability over the wire: clients built only from futoin-invoker and the official FTN18
 * specs, and the reference implementation's faces (futoin-eventstream), talk to our service over
 * real HTTP and WebSocket on every database. Also proves the poll semantics of reliable and LIVE
 * consumers, chunking by the caller's message limit and exact IDs beyond 2^53.
 */
import { expect } from 'chai';
import { SPEC_DIRS } from '@futoin/specs';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { AdvancedCCM, RegisterOptions, SimpleCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases, type DbFixture } from '../support/db';
import { moveIdSequence } from '../support/sql';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
} from '../support/service';
import { waitForValue } from '../support/wait';

/** The reference faces: futoin-eventstream ships no types and its main module does not export
 * them, so they are loaded by path and typed here from GenFace.js / PollFace.js. */
interface RefFaceClass {
  new (...args: never[]): unknown;
  register(
    as: AsyncSteps,
    ccm: SimpleCCM,
    name: string,
    endpoint: string,
    credentials?: string | null,
    options?: RegisterOptions,
  ): void;
}
/** Native methods the invoker generates from the spec: positional params after `as`. */
interface RefGen {
  addEvent(as: AsyncSteps, type: string, data: unknown): void;
}
interface RefPoll {
  registerConsumer(as: AsyncSteps, component: string): void;
  pollEvents(as: AsyncSteps, component: string, last_id?: string, want?: string[]): void;
}
/* eslint-disable @typescript-eslint/no-require-imports -- untyped CommonJS modules (see above) */
const RefGenFace = require('futoin-eventstream/GenFace') as RefFaceClass;
const RefPollFace = require('futoin-eventstream/PollFace') as RefFaceClass;
/* eslint-enable @typescript-eslint/no-require-imports */

const TRANSPORTS = ['http', 'ws'] as const;
const VERSIONS = ['1.0', '1.1'] as const;
type Transport = (typeof TRANSPORTS)[number];
type Version = (typeof VERSIONS)[number];

const BOB_CREDENTIALS = 'bob:bob-secret';
const EVENT_ID_RE = /^[1-9][0-9]{0,17}$/;
const TS_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const KIB = 1024;
/** FTN18 EventList maxlen. */
const MAX_EVENTS = 1000;

interface WireEvent {
  id: string;
  type: string;
  data: unknown;
  ts: string;
}

interface PollOptions {
  last_id?: string;
  want?: string[];
}

/** What a test does with the service, whichever client library speaks for it. */
interface EvtClient {
  addEvent(type: string, data: unknown): Promise<string>;
  registerConsumer(component: string): Promise<boolean>;
  pollEvents(component: string, options?: PollOptions): Promise<WireEvent[]>;
}

interface ClientSpec {
  url: string;
  version: Version;
  credentials: string;
}

type Faces = (ccm: AdvancedCCM, spec: ClientSpec) => Promise<EvtClient>;

/** gen and poll registered from the official specs only, called through `iface.call()`. */
const officialFaces: Faces = async (ccm, { url, version, credentials }) => {
  await steps((as) => {
    for (const face of ['gen', 'poll']) {
      ccm.register(as, face, `futoin.evt.${face}:${version}`, url, credentials, {
        specDirs: SPEC_DIRS,
        secureChannel: true,
      });
    }
  });
  const call = <R>(face: string, fn: string, params: Record<string, unknown>) =>
    steps<R>((as) => ccm.iface(face).call(as, fn, params));
  return {
    addEvent: (type, data) => call('gen', 'addEvent', { type, data }),
    registerConsumer: (component) => call('poll', 'registerConsumer', { component }),
    pollEvents: (component, options = {}) => call('poll', 'pollEvents', { component, ...options }),
  };
};

/** futoin-eventstream's GenFace and PollFace, called through their native methods. */
const referenceFaces: Faces = async (ccm, { url, version, credentials }) => {
  await steps((as) => {
    RefGenFace.register(as, ccm, 'gen', url, credentials, { version, secureChannel: true });
    RefPollFace.register(as, ccm, 'poll', url, credentials, { version, secureChannel: true });
  });
  const gen = ccm.iface<RefGen>('gen');
  const poll = ccm.iface<RefPoll>('poll');
  expect(gen).to.be.instanceOf(RefGenFace);
  expect(poll).to.be.instanceOf(RefPollFace);
  return {
    addEvent: (type, data) => steps((as) => gen.addEvent(as, type, data)),
    registerConsumer: (component) => steps((as) => poll.registerConsumer(as, component)),
    pollEvents: (component, { last_id, want } = {}) =>
      steps((as) => poll.pollEvents(as, component, last_id, want)),
  };
};

/**
 * Runs `body` with a client on its own CCM, closed afterwards. Every poll result is checked to
 * be well formed (see expectWellFormed), whatever the test looks at.
 */
async function withClient<T>(
  faces: Faces,
  spec: ClientSpec,
  body: (client: EvtClient) => Promise<T>,
): Promise<T> {
  const ccm = clientCcm();
  try {
    const client = await faces(ccm, spec);
    return await body({
      ...client,
      pollEvents: async (component, options) => {
        const events = await client.pollEvents(component, options);
        expectWellFormed(events);
        return events;
      },
    });
  } finally {
    ccm.close();
  }
}

/** IDs are decimal strings in increasing order; timestamps are UTC, to the second, of now. */
function expectWellFormed(events: readonly WireEvent[]): void {
  let previous = 0n;
  for (const e of events) {
    expect(e.id).to.be.a('string').and.match(EVENT_ID_RE);
    expect(BigInt(e.id) > previous, `${e.id} after ${previous}`).to.equal(true);
    previous = BigInt(e.id);
    expect(e.ts).to.be.a('string').and.match(TS_RE);
    expect(Math.abs(Date.parse(e.ts) - Date.now())).to.be.below(2 * 60_000);
  }
}

const idsOf = (events: readonly WireEvent[]): string[] => events.map((e) => e.id);
const prevId = (id: string): string => (BigInt(id) - 1n).toString();
const cmpIds = (a: string, b: string): number =>
  BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0;

/** Waits (bounded) until the service delivers up to `id`: on PostgreSQL and MariaDB the gap-safe
 * horizon follows commits through a probe of open writers. It never moves back, so every poll
 * made afterwards sees the event. */
async function deliverable(store: EventStore, id: string): Promise<void> {
  await waitForValue(
    `event ${id} to be deliverable (the horizon at or past it)`,
    () => store.horizon(),
    (horizon) => cmpIds(horizon, id) >= 0,
  );
}

/** Adds events one after another (so IDs increase) and waits until they are deliverable. */
async function addEvents(
  store: EventStore,
  client: EvtClient,
  type: string,
  count: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await client.addEvent(type, { i, type }));
  await deliverable(store, ids[ids.length - 1] ?? '0');
  return ids;
}

/** Adds events in-process in one transaction (fast); data is JSON text. */
async function storeEvents(store: EventStore, type: string, data: string[]): Promise<string[]> {
  const ids = await store.addEvents(data.map((d) => ({ type, data: d })));
  await deliverable(store, ids[ids.length - 1] ?? '0');
  return ids;
}

async function consumerRows(store: EventStore): Promise<number> {
  const [row] = await store.db.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM evt_consumers');
  return Number(row?.n);
}

interface ClientOptions {
  version?: Version;
  credentials?: string;
  faces?: Faces;
}

interface ServiceContext {
  readonly service: StreamService;
  url(transport: Transport): string;
  /** A client (official faces, FTN18 1.1, alice unless told otherwise) for the body's duration. */
  client<T>(
    transport: Transport,
    body: (client: EvtClient) => Promise<T>,
    options?: ClientOptions,
  ): Promise<T>;
}

/** A running service per database suite, with one seed event so that every test's first event
 * has a predecessor to poll after ('0' is not an EventID). */
function useService(fx: DbFixture): ServiceContext {
  let running: StreamService | undefined;
  before(async () => {
    running = await startService(fx);
    await storeEvents(running.store, 'SEED', ['{}']);
  });
  after(() => running?.close());
  const ctx: ServiceContext = {
    get service(): StreamService {
      if (!running) throw new Error('The service is not running');
      return running;
    },
    url: (transport) => (transport === 'http' ? ctx.service.url : ctx.service.wsUrl),
    client: (transport, body, options = {}) =>
      withClient(
        options.faces ?? officialFaces,
        {
          url: ctx.url(transport),
          version: options.version ?? '1.1',
          credentials: options.credentials ?? TEST_CREDENTIALS,
        },
        body,
      ),
  };
  return ctx;
}

describeDatabases('interop over HTTP and WebSocket', (fx) => {
  const ctx = useService(fx);
  const pointer = (ident: string) => ctx.service.store.consumerPointer(ident);

  const CLIENTS = { official: officialFaces, reference: referenceFaces } as const;
  for (const [kind, faces] of Object.entries(CLIENTS)) {
    for (const transport of TRANSPORTS) {
      for (const version of VERSIONS) {
        it(`${kind} faces add and poll over ${transport} with FTN18 ${version}`, () =>
          ctx.client(
            transport,
            async (c) => {
              const component = `${kind.slice(0, 3)}_${transport}_${version.replace('.', '')}`;
              const data = [{ n: 1, nested: { list: [1, 'two', null] } }, 'text ✓', 42.5, null];
              const ids: string[] = [];
              for (const d of data) ids.push(await c.addEvent('INTEROP', d));
              for (const id of ids) expect(id).to.be.a('string').and.match(EVENT_ID_RE);
              await deliverable(ctx.service.store, ids[ids.length - 1] ?? '0');

              expect(await c.registerConsumer(component)).to.equal(true);
              const first = ids[0] ?? '0';
              const events = await c.pollEvents(component, { last_id: prevId(first) });
              expect(events.map(({ id, type, data }) => ({ id, type, data }))).to.deep.equal(
                ids.map((id, i) => ({ id, type: 'INTEROP', data: data[i] })),
              );
              expect(await pointer(`alice:${component}`)).to.equal(prevId(first));

              const last = ids[ids.length - 1] ?? '0';
              expect(await c.pollEvents(component, { last_id: last })).to.deep.equal([]);
              expect(await pointer(`alice:${component}`)).to.equal(last);
            },
            { version, faces },
          ));
      }
    }
  }

  it('sends timestamps as UTC YYYY-MM-DDTHH:MM:SSZ over both transports', async () => {
    const before = Date.now();
    const [id = '0'] = await ctx.client('http', (c) =>
      addEvents(ctx.service.store, c, 'TS_CHECK', 1),
    );
    for (const transport of TRANSPORTS) {
      const [event] = await ctx.client(transport, (c) =>
        c.pollEvents('LIVE', { last_id: prevId(id) }),
      );
      expect(event?.id).to.equal(id);
      expect(event?.ts).to.match(TS_RE);
      const ts = Date.parse(event?.ts ?? '');
      // Stored to the second: at most 1 s before the call started, never after it ended.
      expect(ts).to.be.within(before - 1_000, Date.now());
      expect(Math.abs(ts - Date.now())).to.be.below(2 * 60_000);
    }
  });

  for (const transport of TRANSPORTS) {
    describe(`polling over ${transport}`, () => {
      /** Component names are per transport, so the two runs never share a consumer. */
      const comp = (name: string) => `${name}_${transport === 'http' ? 'H' : 'W'}`;
      const client = <T>(body: (c: EvtClient) => Promise<T>) => ctx.client(transport, body);
      const add = (c: EvtClient, type: string, count: number) =>
        addEvents(ctx.service.store, c, type, count);

      it('refuses to poll for a consumer that is not registered: NotRegistered', () =>
        client(async (c) => {
          await expectFutoinError(c.pollEvents(comp('NOT_REG')), 'NotRegistered');
          await expectFutoinError(c.pollEvents(comp('NOT_REG'), { last_id: '1' }), 'NotRegistered');
        }));

      it('registers a consumer idempotently: true twice', () =>
        client(async (c) => {
          expect(await c.registerConsumer(comp('IDEM'))).to.equal(true);
          expect(await c.registerConsumer(comp('IDEM'))).to.equal(true);
          expect(await pointer(`alice:${comp('IDEM')}`)).to.equal('0');
        }));

      it('refuses to register LIVE: LiveNotAllowed', () =>
        client(async (c) => {
          await expectFutoinError(c.registerConsumer('LIVE'), 'LiveNotAllowed');
        }));

      it('delivers events after the greater of last_id and the stored pointer', () =>
        client(async (c) => {
          const component = comp('AFTER');
          await c.registerConsumer(component);
          const [e1 = '', e2 = '', e3 = '', e4 = ''] = await add(c, 'AFTER', 4);

          // last_id above the pointer: events after it, and the pointer acknowledges it.
          expect(idsOf(await c.pollEvents(component, { last_id: e2 }))).to.deep.equal([e3, e4]);
          expect(await pointer(`alice:${component}`)).to.equal(e2);
          // last_id below the pointer: events after the pointer.
          expect(idsOf(await c.pollEvents(component, { last_id: e1 }))).to.deep.equal([e3, e4]);
          // No last_id: events after the pointer.
          expect(idsOf(await c.pollEvents(component))).to.deep.equal([e3, e4]);
        }));

      it('never moves the stored pointer back for a lower last_id', () =>
        client(async (c) => {
          const component = comp('NO_BACK');
          await c.registerConsumer(component);
          const [e1 = '', , e3 = ''] = await add(c, 'NO_BACK', 3);

          expect(await c.pollEvents(component, { last_id: e3 })).to.deep.equal([]);
          expect(await pointer(`alice:${component}`)).to.equal(e3);
          for (const lower of [e1, prevId(e1), '1']) {
            expect(await c.pollEvents(component, { last_id: lower })).to.deep.equal([]);
            expect(await pointer(`alice:${component}`)).to.equal(e3);
          }
        }));

      it('does not move the pointer past the newest event for a last_id far beyond it', () =>
        client(async (c) => {
          const component = comp('BEYOND');
          await c.registerConsumer(component);
          const [newest = ''] = await add(c, 'BEYOND', 1);

          const farAhead = '999999999999999999';
          expect(await c.pollEvents(component, { last_id: farAhead })).to.deep.equal([]);
          expect(await pointer(`alice:${component}`)).to.equal(newest);

          // Events added later still reach the consumer.
          const later = await add(c, 'BEYOND', 2);
          expect(idsOf(await c.pollEvents(component))).to.deep.equal(later);
        }));

      it('filters by type with want', () =>
        client(async (c) => {
          const component = comp('WANT');
          await c.registerConsumer(component);
          const [a1 = ''] = await add(c, 'WANT_A', 1);
          const [b1 = ''] = await add(c, 'WANT_B', 1);
          const [a2 = ''] = await add(c, 'WANT_A', 1);
          const from = { last_id: prevId(a1) };

          const onlyB = await c.pollEvents(component, { ...from, want: ['WANT_B'] });
          expect(onlyB.map((e) => [e.id, e.type])).to.deep.equal([[b1, 'WANT_B']]);
          const onlyA = await c.pollEvents(component, { ...from, want: ['WANT_A'] });
          expect(idsOf(onlyA)).to.deep.equal([a1, a2]);
          const both = await c.pollEvents(component, { ...from, want: ['WANT_B', 'WANT_A'] });
          expect(idsOf(both)).to.deep.equal([a1, b1, a2]);
        }));

      it('moves the pointer up to the newest event when a filtered poll finds nothing wanted', () =>
        client(async (c) => {
          const component = comp('SKIP');
          await c.registerConsumer(component);
          const [, newest = ''] = await add(c, 'SKIP_ME', 2);

          expect(await c.pollEvents(component, { want: ['NOT_THERE'] })).to.deep.equal([]);
          expect(await pointer(`alice:${component}`)).to.equal(newest);
          // Nothing left for an unfiltered poll either: the skipped events count as delivered.
          expect(await c.pollEvents(component)).to.deep.equal([]);
        }));

      it('returns nothing for want: [] and moves the pointer past everything', () =>
        client(async (c) => {
          const component = comp('WANT_NONE');
          await c.registerConsumer(component);
          const [, newest = ''] = await add(c, 'ANY', 2);

          expect(await c.pollEvents(component, { want: [] })).to.deep.equal([]);
          expect(await pointer(`alice:${component}`)).to.equal(newest);
          expect(await c.pollEvents(component)).to.deep.equal([]);
        }));

      it('polls LIVE from the given last_id without writing a consumer row', () =>
        client(async (c) => {
          const rowsBefore = await consumerRows(ctx.service.store);
          const [e1 = '', e2 = '', e3 = ''] = await add(c, 'LIVE_EVT', 3);

          for (let round = 0; round < 2; round++) {
            expect(idsOf(await c.pollEvents('LIVE', { last_id: prevId(e1) }))).to.deep.equal([
              e1,
              e2,
              e3,
            ]);
            expect(idsOf(await c.pollEvents('LIVE', { last_id: e2 }))).to.deep.equal([e3]);
            expect(await c.pollEvents('LIVE', { last_id: e3 })).to.deep.equal([]);
          }
          const live = await c.pollEvents('LIVE', { want: ['LIVE_EVT'] });
          expect(idsOf(live).slice(-3)).to.deep.equal([e1, e2, e3]);

          expect(await consumerRows(ctx.service.store)).to.equal(rowsBefore);
          expect(await pointer('alice:LIVE')).to.equal(null);
        }));

      it('returns events in increasing ID order, also when added concurrently', () =>
        client(async (c) => {
          // One call first: futoin-invoker adds an 'open' listener to its WebSocket for every
          // call made while connecting (25 would trip Node's 10-listener leak warning).
          await c.addEvent('CONCURRENT_OPEN', {});
          const ids = await Promise.all(
            Array.from({ length: 25 }, (_v, i) => c.addEvent('CONCURRENT', { i })),
          );
          const sorted = [...ids].sort(cmpIds);
          await deliverable(ctx.service.store, sorted[sorted.length - 1] ?? '0');

          const events = await c.pollEvents('LIVE', {
            last_id: prevId(sorted[0] ?? '1'),
            want: ['CONCURRENT'],
          });
          expect(idsOf(events)).to.deep.equal(sorted);
          expect(new Set(events.map((e) => (e.data as { i: number }).i)).size).to.equal(25);
        }));

      it('keeps consumers of alice and bob with the same component apart', () =>
        client(async (alice) => {
          const component = comp('SHARED');
          await ctx.client(
            transport,
            async (bob) => {
              expect(await alice.registerConsumer(component)).to.equal(true);
              await expectFutoinError(bob.pollEvents(component), 'NotRegistered');
              expect(await bob.registerConsumer(component)).to.equal(true);
              const [e1 = '', e2 = ''] = await add(alice, 'SHARED', 2);

              expect(idsOf(await alice.pollEvents(component, { last_id: e1 }))).to.deep.equal([e2]);
              expect(idsOf(await bob.pollEvents(component, { last_id: prevId(e1) }))).to.deep.equal(
                [e1, e2],
              );
              expect(await pointer(`alice:${component}`)).to.equal(e1);
              expect(await pointer(`bob:${component}`)).to.equal(prevId(e1));

              // Bob acknowledging everything leaves alice where she was.
              expect(await bob.pollEvents(component, { last_id: e2 })).to.deep.equal([]);
              expect(await pointer(`bob:${component}`)).to.equal(e2);
              expect(idsOf(await alice.pollEvents(component))).to.deep.equal([e2]);
              expect(await pointer(`alice:${component}`)).to.equal(e1);
            },
            { credentials: BOB_CREDENTIALS },
          );
        }));
    });
  }
});

describeDatabases('chunking by the caller message limit', (fx) => {
  const ctx = useService(fx);
  const EVENTS = 300;
  /** IDs of EVENTS events of about 1 KiB each. */
  let ids: string[] = [];
  let first = '';
  let last = '';

  before(async () => {
    const pad = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(28); // 1008 characters
    ids = await storeEvents(
      ctx.service.store,
      'CHUNK',
      Array.from({ length: EVENTS }, (_v, i) => JSON.stringify({ i, pad })),
    );
    first = ids[0] ?? '';
    last = ids[ids.length - 1] ?? '';
  });

  /** A reliable consumer polls with last_id until `until` is delivered: the events up to it,
   * and how many events each response carried. */
  async function drain(
    c: EvtClient,
    component: string,
    after: string,
    until: string,
  ): Promise<{ events: WireEvent[]; sizes: number[] }> {
    const events: WireEvent[] = [];
    const sizes: number[] = [];
    let lastId = after;
    while (cmpIds(lastId, until) < 0) {
      if (sizes.length > 2 * MAX_EVENTS) throw new Error('Draining does not progress');
      const chunk = await c.pollEvents(component, { last_id: lastId });
      expect(chunk, `poll after ${lastId}`).to.not.be.empty;
      sizes.push(chunk.length);
      events.push(...chunk.filter((e) => cmpIds(e.id, until) <= 0));
      lastId = chunk[chunk.length - 1]?.id ?? lastId;
    }
    return { events, sizes };
  }

  for (const transport of TRANSPORTS) {
    const t = transport === 'http' ? 'H' : 'W';

    it(`keeps a 1.0 poll under 64 KiB and below what a 1.1 poll carries over ${transport}`, async () => {
      const from = { last_id: prevId(first) };
      const v10 = await ctx.client(transport, (c) => c.pollEvents('LIVE', from), {
        version: '1.0',
      });
      const v11 = await ctx.client(transport, (c) => c.pollEvents('LIVE', from), {
        version: '1.1',
      });

      expect(Buffer.byteLength(JSON.stringify(v10))).to.be.below(64 * KIB);
      expect(v10.length).to.be.above(0).and.below(v11.length);
      expect(idsOf(v10)).to.deep.equal(ids.slice(0, v10.length));
      expect(idsOf(v11).slice(0, EVENTS)).to.deep.equal(ids);
    });

    for (const version of VERSIONS) {
      it(`drains every event exactly once, in order, with FTN18 ${version} over ${transport}`, () =>
        ctx.client(
          transport,
          async (c) => {
            const component = `DRAIN_${t}_${version.replace('.', '')}`;
            await c.registerConsumer(component);
            const { events, sizes } = await drain(c, component, prevId(first), last);

            expect(idsOf(events)).to.deep.equal(ids);
            expect(events.map((e) => (e.data as { i: number }).i)).to.deep.equal(
              ids.map((_id, i) => i),
            );
            // 300 KB: five or more 64 KiB responses, or one 8 MiB response.
            if (version === '1.0') expect(sizes.length).to.be.above(4);
            else expect(sizes).to.deep.equal([EVENTS]);
          },
          { version },
        ));
    }
  }

  describe('an event of 200 KB', () => {
    const big = { blob: 'x'.repeat(200 * 1000), tail: 'end ✓' };
    let bigId = '';
    before(async () => {
      [bigId = ''] = await storeEvents(ctx.service.store, 'BIG', [JSON.stringify(big)]);
    });

    for (const transport of TRANSPORTS) {
      it(`reaches a 1.1 client intact over ${transport}`, async () => {
        const events = await ctx.client(transport, (c) =>
          c.pollEvents('LIVE', { last_id: prevId(bigId) }),
        );
        expect(events[0]?.id).to.equal(bigId);
        expect(events[0]?.type).to.equal('BIG');
        expect(events[0]?.data).to.deep.equal(big);
      });

      it(`fails for a 1.0 client with NotSupportedVersion over ${transport}`, () =>
        ctx.client(
          transport,
          async (c) => {
            await expectFutoinError(
              c.pollEvents('LIVE', { last_id: prevId(bigId) }),
              'NotSupportedVersion',
            );
            const component = `BIG10_${transport === 'http' ? 'H' : 'W'}`;
            await c.registerConsumer(component);
            await expectFutoinError(
              c.pollEvents(component, { last_id: prevId(bigId) }),
              'NotSupportedVersion',
            );
            // Not skipped: the consumer still has it, and gets it once it speaks 1.1.
            expect(await ctx.service.store.consumerPointer(`alice:${component}`)).to.equal(
              prevId(bigId),
            );
            const [event] = await ctx.client(transport, (c11) => c11.pollEvents(component));
            expect(event?.id).to.equal(bigId);
          },
          { version: '1.0' },
        ));
    }
  });

  describe('many small events', () => {
    let small: string[] = [];
    before(async () => {
      small = await storeEvents(
        ctx.service.store,
        'SMALL',
        Array.from({ length: 1200 }, (_v, i) => String(i)),
      );
    });

    for (const transport of TRANSPORTS) {
      it(`never carry more than 1000 per response over ${transport}`, () =>
        ctx.client(transport, async (c) => {
          const [firstSmall = '', lastSmall = ''] = [small[0], small[small.length - 1]];
          const live = await c.pollEvents('LIVE', { last_id: prevId(firstSmall) });
          expect(idsOf(live)).to.deep.equal(small.slice(0, live.length));
          expect(live.length).to.be.at.most(MAX_EVENTS);

          const component = `MAX1000_${transport === 'http' ? 'H' : 'W'}`;
          await c.registerConsumer(component);
          const { events, sizes } = await drain(c, component, prevId(firstSmall), lastSmall);
          expect(idsOf(events)).to.deep.equal(small);
          // Every response stops at 1000, and 1200 tiny events fill one up to it.
          expect(Math.max(...sizes)).to.equal(MAX_EVENTS);
        }));
    }
  });
});

describeDatabases('event IDs beyond 2^53', (fx) => {
  const ctx = useService(fx);

  it('keeps an ID above 2^53 exact as a string from the database to both transports', async () => {
    // 2^53 + 3 has no double: any detour through a JS number would change it.
    const next = 2n ** 53n + 3n;
    expect(Number(next.toString()).toString()).to.not.equal(next.toString());
    await moveIdSequence(ctx.service.store, next);

    const id = await ctx.client('http', (c) => c.addEvent('BIG_ID', { n: 1 }));
    expect(id).to.be.a('string');
    expect(BigInt(id)).to.equal(next);
    expect(id).to.equal('9007199254740995');
    await deliverable(ctx.service.store, id);

    for (const transport of TRANSPORTS) {
      await ctx.client(transport, async (c) => {
        const live = await c.pollEvents('LIVE', { last_id: prevId(id) });
        expect(idsOf(live)).to.deep.equal([id]);

        const component = `BIG_ID_${transport}`;
        await c.registerConsumer(component);
        expect(idsOf(await c.pollEvents(component, { last_id: prevId(id) }))).to.deep.equal([id]);
        expect(await ctx.service.store.consumerPointer(`alice:${component}`)).to.equal(prevId(id));
        expect(await c.pollEvents(component, { last_id: id })).to.deep.equal([]);
        expect(await ctx.service.store.consumerPointer(`alice:${component}`)).to.equal(id);
      });
    }

    const following = await ctx.client('ws', (c) => c.addEvent('BIG_ID', { n: 2 }));
    expect(BigInt(following)).to.equal(next + 1n);
    expect(following).to.equal('9007199254740996');
  });
});

/**
 * Bad input over the wire: raw FutoIn messages (not through futoin-invoker, which would refuse
 * most of them client-side) over HTTP POST and WebSocket. Each bad call must get a clear FutoIn
 * error, write nothing, and leave the service (and, on WebSocket, the connection) serving the
 * next valid call.
 */
import http from 'http';
import { expect } from 'chai';
import { TABLES } from '../../src/common/constants';
import type { StreamService } from '../../src/app/service';
import { describeDatabases } from '../support/db';
import { startService, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { sqlFor } from '../support/sql';

// `ws` (futoin-executor's WebSocket package) ships no types: the little used here, typed here.
interface WsSocket {
  send(data: string): void;
  close(): void;
  on(event: 'open', listener: () => void): this;
  on(event: 'message', listener: (data: Buffer) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const WebSocket = require('ws') as new (url: string) => WsSocket;

type Transport = 'http' | 'ws';
const TRANSPORTS: readonly Transport[] = ['http', 'ws'];

/** A FutoIn request without its rid (the client adds a unique one). */
interface Msg {
  f: unknown;
  p?: unknown;
  sec?: unknown;
  /** Raw JSON text sent in place of `p.data` (for numbers JSON.stringify cannot write). */
  rawData?: string;
}

interface Reply {
  rid?: unknown;
  r?: unknown;
  e?: unknown;
  edesc?: unknown;
}

/** What came back: a FutoIn response, or the connection closed without one. */
type Outcome = { reply: Reply } | { closed: string };

/** FTN3 standard errors (futoin-invoker's SpecTools.STANDARD_ERRORS). */
const STANDARD_ERRORS = [
  'UnknownInterface',
  'NotSupportedVersion',
  'NotImplemented',
  'Unauthorized',
  'InternalError',
  'InvalidRequest',
  'DefenseRejected',
  'PleaseReauth',
  'SecurityError',
];
/** ...and the errors futoin.evt.poll declares. */
const FUTOIN_ERRORS = [...STANDARD_ERRORS, 'NotRegistered', 'LiveNotAllowed'];

const EVENT_ID_RE = /^[1-9][0-9]{0,17}$/;
/** futoin-executor's request limit (its SAFE_PAYLOAD_LIMIT; no FTN18 function raises it). */
const REQUEST_LIMIT = 64 * 1024;

// --- Messages ---------------------------------------------------------------------------------

const RAW_MARK = '@@RAW_DATA@@';
/** The one consumer valid calls poll with; registered before the tests. */
const OK_COMPONENT = 'OK';

const addEvent = (type: unknown, data: unknown = {}): Msg => ({
  f: 'futoin.evt.gen:1.1:addEvent',
  p: { type, data },
  sec: TEST_CREDENTIALS,
});
const registerConsumer = (component: unknown): Msg => ({
  f: 'futoin.evt.poll:1.1:registerConsumer',
  p: { component },
  sec: TEST_CREDENTIALS,
});
const pollEvents = (component: unknown, lastId?: unknown, want?: unknown): Msg => ({
  f: 'futoin.evt.poll:1.1:pollEvents',
  p: {
    component,
    ...(lastId !== undefined ? { last_id: lastId } : {}),
    ...(want !== undefined ? { want } : {}),
  },
  sec: TEST_CREDENTIALS,
});
/** addEvent whose data is the raw JSON text given. */
const addRawEvent = (rawData: string): Msg => ({ ...addEvent('RAW', RAW_MARK), rawData });
/** The message with other credentials (undefined: no `sec` at all). */
const withSec = (msg: Msg, sec: unknown): Msg => {
  const { sec: _sec, ...rest } = msg;
  return sec === undefined ? rest : { ...rest, sec };
};

function encode(msg: Msg, rid: string): string {
  const { rawData, ...fields } = msg;
  const text = JSON.stringify({ ...fields, rid });
  return rawData === undefined ? text : text.replace(JSON.stringify(RAW_MARK), rawData);
}

/** `levels` nested arrays around a small map. */
function nested(levels: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
}

// --- Cases ------------------------------------------------------------------------------------

interface BadCase {
  name: string;
  msg: Msg;
  expectCode: string;
}

const BAD_COMPONENTS: Array<[string, string]> = [
  ['17 characters', 'C'.repeat(17)],
  ['a symbol', 'a-b'],
  ['a space', 'a b'],
  ['a non-ASCII letter', 'ä'],
  ['empty', ''],
];

const BAD_CASES: BadCase[] = [
  // addEvent type: ^[A-Z_]{1,16}$
  { name: 'addEvent type in lower case', msg: addEvent('bad'), expectCode: 'InvalidRequest' },
  { name: 'addEvent type empty', msg: addEvent(''), expectCode: 'InvalidRequest' },
  {
    name: 'addEvent type of 17 characters',
    msg: addEvent('A'.repeat(17)),
    expectCode: 'InvalidRequest',
  },
  { name: 'addEvent type with a digit', msg: addEvent('TYPE1'), expectCode: 'InvalidRequest' },
  { name: 'addEvent type with a symbol', msg: addEvent('A-B'), expectCode: 'InvalidRequest' },
  { name: 'addEvent type a number', msg: addEvent(5), expectCode: 'InvalidRequest' },
  {
    name: 'addEvent without data',
    msg: { ...addEvent('T'), p: { type: 'T' } },
    expectCode: 'InvalidRequest',
  },
  {
    name: 'addEvent with an unknown parameter',
    msg: { ...addEvent('T'), p: { type: 'T', data: {}, extra: 1 } },
    expectCode: 'InvalidRequest',
  },

  // component: ^[A-Za-z0-9_]{1,16}$
  ...BAD_COMPONENTS.flatMap(([what, component]): BadCase[] => [
    {
      name: `registerConsumer component ${what}`,
      msg: registerConsumer(component),
      expectCode: 'InvalidRequest',
    },
    {
      name: `pollEvents component ${what}`,
      msg: pollEvents(component),
      expectCode: 'InvalidRequest',
    },
  ]),

  // last_id: ^[1-9][0-9]{0,17}$, a string
  ...(
    [
      ['letters', 'abc'],
      ["'0'", '0'],
      ['zero-padded', '007'],
      ['of 19 digits', '1'.repeat(19)],
      ["'-1'", '-1'],
      ["'1.5'", '1.5'],
      ['the number -1', -1],
      ['the number 1.5', 1.5],
      ['the number 5', 5],
    ] as Array<[string, unknown]>
  ).map(([what, lastId]): BadCase => ({
    name: `pollEvents last_id ${what}`,
    msg: pollEvents(OK_COMPONENT, lastId),
    expectCode: 'InvalidRequest',
  })),

  // want: a list of event types
  {
    name: 'pollEvents want with one invalid type',
    msg: pollEvents(OK_COMPONENT, undefined, ['OK', 'bad']),
    expectCode: 'InvalidRequest',
  },
  {
    name: 'pollEvents want with a number',
    msg: pollEvents(OK_COMPONENT, undefined, [1]),
    expectCode: 'InvalidRequest',
  },
  {
    name: 'pollEvents want not a list',
    msg: pollEvents(OK_COMPONENT, undefined, 'NOTALIST'),
    expectCode: 'InvalidRequest',
  },

  // FTN18 errors
  {
    name: 'pollEvents of an unregistered component',
    msg: pollEvents('NEVER_REGISTERED'),
    expectCode: 'NotRegistered',
  },
  { name: 'registerConsumer LIVE', msg: registerConsumer('LIVE'), expectCode: 'LiveNotAllowed' },

  // data JSON cannot carry unchanged
  { name: 'addEvent data 1e400', msg: addRawEvent('{"x":1e400}'), expectCode: 'InvalidRequest' },
  {
    name: 'addEvent data with an integer above 2^53',
    msg: addRawEvent('{"n":9007199254740993}'),
    expectCode: 'InvalidRequest',
  },
  {
    name: 'addEvent data nested 600 levels deep',
    msg: addRawEvent(`${'['.repeat(600)}${']'.repeat(600)}`),
    expectCode: 'InvalidRequest',
  },

  // credentials
  {
    name: 'addEvent with a wrong secret',
    msg: withSec(addEvent('T'), `${TEST_USER}:wrong`),
    expectCode: 'SecurityError',
  },
  {
    name: 'addEvent of an unknown user',
    msg: withSec(addEvent('T'), 'mallory:alice-secret'),
    expectCode: 'SecurityError',
  },
  {
    name: 'addEvent without sec',
    msg: withSec(addEvent('T'), undefined),
    expectCode: 'SecurityError',
  },
  {
    name: 'addEvent with a user name only',
    msg: withSec(addEvent('T'), TEST_USER),
    expectCode: 'SecurityError',
  },
  {
    name: 'registerConsumer with a wrong secret',
    msg: withSec(registerConsumer('SNEAKY'), `${TEST_USER}:wrong`),
    expectCode: 'SecurityError',
  },
  {
    name: 'pollEvents without sec',
    msg: withSec(pollEvents(OK_COMPONENT), undefined),
    expectCode: 'SecurityError',
  },

  // f: what futoin-executor answers (all standard FTN3 errors)
  {
    name: 'unknown function',
    msg: { f: 'futoin.evt.gen:1.1:dropEvents', p: {}, sec: TEST_CREDENTIALS },
    expectCode: 'InvalidRequest',
  },
  {
    name: 'unknown function, anonymous',
    msg: { f: 'futoin.evt.gen:1.1:dropEvents', p: {} },
    expectCode: 'UnknownInterface',
  },
  {
    name: 'unknown interface',
    msg: { f: 'futoin.evt.nope:1.0:addEvent', p: {}, sec: TEST_CREDENTIALS },
    expectCode: 'UnknownInterface',
  },
  {
    name: 'unsupported major version',
    msg: { ...addEvent('T'), f: 'futoin.evt.gen:2.0:addEvent' },
    expectCode: 'NotSupportedVersion',
  },
  {
    name: 'newer minor version than served',
    msg: { ...addEvent('T'), f: 'futoin.evt.gen:1.9:addEvent' },
    expectCode: 'NotSupportedVersion',
  },
  {
    name: 'f without a version',
    msg: { ...addEvent('T'), f: 'futoin.evt.gen:addEvent' },
    expectCode: 'InvalidRequest',
  },
  {
    name: 'f with a version without minor',
    msg: { ...addEvent('T'), f: 'futoin.evt.gen:1:addEvent' },
    expectCode: 'InvalidRequest',
  },
  { name: 'f garbage', msg: { ...addEvent('T'), f: 'garbage' }, expectCode: 'InvalidRequest' },
  { name: 'f a number', msg: { ...addEvent('T'), f: 42 }, expectCode: 'InvalidRequest' },
];

// --- Clients ----------------------------------------------------------------------------------

/** One WebSocket connection: responses matched to requests by rid. */
class WsConnection {
  private readonly socket: WsSocket;
  private readonly opened: Promise<void>;
  private readonly pending = new Map<string, (outcome: Outcome) => void>();
  private closed: string | null = null;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.on('open', resolve);
      this.socket.on('error', reject);
    });
    this.opened.catch(() => undefined);
    this.socket.on('message', (data) => {
      const reply = JSON.parse(data.toString()) as Reply;
      const done = typeof reply.rid === 'string' ? this.pending.get(reply.rid) : undefined;
      if (!done) throw new Error(`Response to no request: ${data.toString().slice(0, 200)}`);
      this.pending.delete(reply.rid as string);
      done({ reply });
    });
    this.socket.on('close', (code, reason) => {
      this.closed = `closed by the server (code ${code}${reason.length ? `: ${reason.toString()}` : ''})`;
      for (const done of this.pending.values()) done({ closed: this.closed });
      this.pending.clear();
    });
  }

  get isOpen(): boolean {
    return this.closed === null;
  }

  async send(text: string, rid: string): Promise<Outcome> {
    await this.opened;
    if (this.closed !== null) return { closed: this.closed };
    return new Promise((resolve) => {
      this.pending.set(rid, resolve);
      this.socket.send(text);
    });
  }

  close(): void {
    this.socket.close();
  }
}

function httpPost(url: string, body: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false, // a new connection for every call
        headers: {
          'Content-Type': 'application/futoin+json',
          'Content-Length': Buffer.byteLength(body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          // A FutoIn error may come with another status (413 for a body over the limit).
          const futoin = res.headers['content-type'] === 'application/futoin+json';
          if (res.statusCode !== 200 && !futoin) {
            reject(new Error(`HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200)}`));
            return;
          }
          resolve({ reply: JSON.parse(text) as Reply });
        });
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ closed: `connection closed (${err.code ?? err.message})` }),
    );
    req.end(body);
  });
}

/**
 * Sends raw messages over HTTP (a new connection per call) or WebSocket (one connection per
 * client, reopened if the server closed it).
 */
class RawClient {
  private ws: WsConnection | null = null;
  private seq = 0;

  constructor(private readonly service: { url: string; wsUrl: string }) {}

  async send(transport: Transport, msg: Msg): Promise<Outcome> {
    const rid = `C${++this.seq}`;
    const text = encode(msg, rid);
    if (transport === 'http') return httpPost(this.service.url, text);
    if (!this.ws?.isOpen) this.ws = new WsConnection(this.service.wsUrl);
    return this.ws.send(text, rid);
  }

  /** The response to `msg`; fails if the connection closed instead. */
  async call(transport: Transport, msg: Msg): Promise<Reply> {
    const outcome = await this.send(transport, msg);
    if ('closed' in outcome) throw new Error(`No response over ${transport}: ${outcome.closed}`);
    return outcome.reply;
  }

  close(): void {
    this.ws?.close();
  }
}

function expectError(reply: Reply, code: string): void {
  const shown = JSON.stringify(reply).slice(0, 300);
  expect(reply.e, shown).to.equal(code);
  expect(FUTOIN_ERRORS, shown).to.include(reply.e);
  expect(reply, shown).not.to.have.property('r');
  expect(reply.edesc, shown).to.be.a('string').that.is.not.empty;
}

function expectResult(reply: Reply): unknown {
  expect(reply, JSON.stringify(reply).slice(0, 300)).not.to.have.property('e');
  expect(reply).to.have.property('r');
  return reply.r;
}

/**
 * Runs `work` and fails if an exception went unhandled meanwhile: mocha would blame whatever test
 * runs at that moment and go on, but in a service process it ends the process (a crash).
 */
async function expectNoCrash(work: () => Promise<void>): Promise<void> {
  const mochaListeners = process.listeners('uncaughtException');
  const uncaught: string[] = [];
  const capture = (err: Error): void => {
    uncaught.push(`${err.name}: ${err.message}`);
  };
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', capture);
  const done = work();
  try {
    await done.catch(() => undefined);
  } finally {
    process.off('uncaughtException', capture);
    for (const listener of mochaListeners) process.on('uncaughtException', listener);
  }
  expect(uncaught, 'uncaught exceptions (each one ends a service process)').to.deep.equal([]);
  await done; // the work's own failure, if any
}

// --- Database ---------------------------------------------------------------------------------

interface RowCounts {
  events: number;
  consumers: number;
}

async function countRows(service: StreamService): Promise<RowCounts> {
  const count = async (table: string): Promise<number> => {
    const rows = await service.store.db.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`);
    return Number(rows[0]?.n);
  };
  return { events: await count(TABLES.events), consumers: await count(TABLES.consumers) };
}

async function storedEventIds(service: StreamService): Promise<string[]> {
  const { dialect, db } = service.store;
  const rows = await db.query<{ id: string }>(
    `SELECT ${sqlFor(dialect.name).idText('id')} AS id FROM ${TABLES.events} ORDER BY ${TABLES.events}.id`,
  );
  return rows.map((r) => r.id);
}

async function storedConsumers(service: StreamService): Promise<string[]> {
  const rows = await service.store.db.query<{ ident: string }>(
    `SELECT ident FROM ${TABLES.consumers} ORDER BY ident`,
  );
  return rows.map((r) => r.ident);
}

// --- Tests ------------------------------------------------------------------------------------

describeDatabases('wire: bad input', (fx) => {
  let service: StreamService;
  let client: RawClient;
  /** IDs returned by valid addEvent calls, in call order. */
  const validIds: string[] = [];
  /** The last event the OK consumer has seen (undefined: none yet; '0' is no EventID). */
  let lastSeen: string | undefined;

  before(async () => {
    service = await startService(fx);
    client = new RawClient(service);
    expect(expectResult(await client.call('http', registerConsumer(OK_COMPONENT)))).to.equal(true);
  });
  after(async () => {
    client?.close();
    await service?.close();
  });

  /** addEvent, then pollEvents returns exactly that event (which it returns). */
  async function expectServing(
    transport: Transport,
    via: RawClient,
    data: unknown = { transport },
  ): Promise<{ id: string; type: string; data: unknown }> {
    const id = expectResult(await via.call(transport, addEvent('VALID', data)));
    expect(id).to.be.a('string').that.matches(EVENT_ID_RE);
    validIds.push(id as string);
    const events = expectResult(
      await via.call(transport, pollEvents(OK_COMPONENT, lastSeen)),
    ) as Array<{ id: string; type: string; data: unknown }>;
    expect(events.map((e) => e.id)).to.deep.equal([id]);
    lastSeen = id as string;
    return events[0]!;
  }

  /** expectServing on a new connection. */
  async function expectServingAnew(transport: Transport, data: unknown): Promise<void> {
    const fresh = new RawClient(service);
    try {
      await expectServing(transport, fresh, data);
    } finally {
      fresh.close();
    }
  }

  for (const transport of TRANSPORTS) {
    describe(`over ${transport}`, () => {
      for (const c of BAD_CASES) {
        it(`${c.name}: ${c.expectCode}, nothing written, next call served`, () =>
          expectNoCrash(async () => {
            const before = await countRows(service);
            expectError(await client.call(transport, c.msg), c.expectCode);
            expect(await countRows(service)).to.deep.equal(before);
            await expectServing(transport, client);
          }));
      }

      it('accepts data nested 100 levels deep and polls it back intact', () =>
        expectNoCrash(async () => {
          const data = nested(100, { leaf: transport, n: [1, 2.5, 'x', null, true] });
          const event = await expectServing(transport, client, data);
          expect(event.type).to.equal('VALID');
          expect(event.data).to.deep.equal(data);
        }));

      it('refuses a ~70 KiB addEvent without crashing; nothing written, still serving', () =>
        expectNoCrash(async () => {
          const msg = addEvent('BIG', 'x'.repeat(70 * 1024));
          expect(encode(msg, 'C0').length).to.be.above(REQUEST_LIMIT);
          const before = await countRows(service);
          // Over HTTP a FutoIn error (with status 413); over WebSocket the frame exceeds the
          // receiver's maxPayload and closes the connection (1009).
          const sender = new RawClient(service);
          try {
            const outcome = await sender.send(transport, msg);
            if (transport === 'http') {
              expect(outcome).to.have.nested.property('reply.e', 'InvalidRequest');
            } else {
              expect(outcome).to.have.property('closed').that.is.a('string');
            }
          } finally {
            sender.close();
          }
          expect(await countRows(service)).to.deep.equal(before);
          await expectServingAnew(transport, { after: 'oversized' });
        }));

      it('refuses addEvent on an insecure channel (SecurityError) but still polls', () =>
        expectNoCrash(async () => {
          const insecure = await startService(fx, { secureLoopback: false });
          const other = new RawClient(insecure);
          try {
            const before = await countRows(service);
            const reply = await other.call(transport, addEvent('INSECURE'));
            expectError(reply, 'SecurityError');
            expect(await countRows(service)).to.deep.equal(before);
            // futoin.evt.poll does not require SecureChannel.
            const events = expectResult(await other.call(transport, pollEvents('LIVE')));
            expect((events as Array<{ id: string }>).map((e) => e.id)).to.deep.equal(validIds);
            expect(await countRows(service)).to.deep.equal(before);
          } finally {
            other.close();
            await insecure.close();
          }
        }));

      it('after all that, a new connection adds and polls; only valid calls wrote', () =>
        expectNoCrash(async () => {
          await expectServingAnew(transport, { final: transport });
          expect(await storedEventIds(service)).to.deep.equal(validIds);
          expect(await storedConsumers(service)).to.deep.equal([`${TEST_USER}:${OK_COMPONENT}`]);
        }));
    });
  }
});

/**
 * Interoperability of our receivers with the REFERENCE push service: futoin-eventstream's
 * DBGenService and DBPushService on a futoin-executor NodeExecutor, over real WebSockets on
 * loopback, on a temporary SQLite database with the reference's own schema. Checks complete,
 * ordered, at-least-once delivery across dropped connections and failing handlers, paced
 * reconnections, LIVE delivery, and a consumer process that exits by itself after stop().
 */
// NodeExecutor freezes Object.prototype; moment (loaded by futoin-database's query drivers)
// assigns prototype methods when loaded, so the drivers must be loaded before any NodeExecutor.
import 'futoin-database/MySQLDriver';
import 'futoin-database/PostgreSQLDriver';
import 'futoin-database/SQLiteDriver';
import { expect } from 'chai';
import { spawn } from 'child_process';
import fs from 'fs';
import http, { type IncomingMessage } from 'http';
import type net from 'net';
import os from 'os';
import path from 'path';
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { L2Face } from 'futoin-database';
import AutoConfig from 'futoin-database/AutoConfig';
import { type Executor, NodeExecutor } from 'futoin-executor';
import LegacySecurityProvider from 'futoin-executor/LegacySecurityProvider';
import { AdvancedCCM } from 'futoin-invoker';
import type { Event } from '../../src/delivery/poll/PollService';
import { LiveReceiver } from '../../src/receiving/LiveReceiver';
import { ReliableReceiver } from '../../src/receiving/ReliableReceiver';
import { expectElapsedAtLeast, expectGapsAtLeast, shortestBackoffs } from '../support/pacing';
import { sleep, waitFor, waitForValue, withTimeout } from '../support/wait';
import { run } from './support';

/** The reference services: untyped CommonJS, loaded by path and typed from their sources. */
interface RefServiceClass {
  register(as: AsyncSteps, executor: Executor, options?: Record<string, unknown>): RefService;
}
interface RefService {
  on(event: string, handler: (...args: unknown[]) => void): void;
}
/* eslint-disable @typescript-eslint/no-require-imports -- see RefServiceClass */
const RefDBGenService = require('futoin-eventstream/DBGenService') as RefServiceClass;
const RefDBPushService = require('futoin-eventstream/DBPushService') as RefServiceClass;
/* eslint-enable @typescript-eslint/no-require-imports */

const REF_SCHEMA_DIR = path.join(
  path.dirname(require.resolve('futoin-eventstream/package.json')),
  'sql',
  'active',
  'sqlite',
);
const CREDENTIALS = 'user:secret';
/** The reference pushes at most this many events per call over WebSockets. */
const REF_WS_CHUNK = 100;
/** It sleeps up to 3 s between reads when idle, so deliveries get a generous deadline. */
const DELIVERY_MS = 20_000;
/** LiveReceiver's reconnection backoff by default (RECONNECT_MIN_MS, RECONNECT_MAX_MS). */
const RECONNECT = { min: 100, max: 10_000 };
/** LiveReceiver's backoff before it answers a failed handling (FAILURE_MIN_MS, FAILURE_MAX_MS). */
const HANDLER_RETRY = { min: 100, max: 5_000 };

/**
 * futoin-executor 2.3.7's NodeExecutor, with one fix: when a WebSocket closes while a call to
 * the client is in flight (a push), its 'close' listener fails that call with AsyncSteps#error,
 * which always throws — an uncaught exception that would end the process. Dropping connections
 * mid-stream is what the suite does, so the throw is contained here.
 */
class GuardedNodeExecutor extends NodeExecutor {
  override handleWSConnection(upgradeReq: IncomingMessage, ws: unknown): void {
    const socket = ws as { on(event: string, listener: (...args: unknown[]) => void): unknown };
    const on = socket.on.bind(socket);
    socket.on = (event, listener) =>
      on(event, (...args: unknown[]) => {
        try {
          listener(...args);
        } catch (e) {
          if (event !== 'close' || (e as Error).message !== 'CommError') throw e;
        }
      });
    try {
      super.handleWSConnection(upgradeReq, ws);
    } finally {
      socket.on = on;
    }
  }
}

/** What a receiver got and said. */
class Observed {
  readonly ids: string[] = [];
  readonly workerErrors: string[] = [];
  readonly receiverErrors: string[] = [];
  /** When each workerError was handled (performance.now()): at or after it happened. */
  readonly workerErrorsAt: number[] = [];
  ready = 0;

  constructor(receiver: LiveReceiver) {
    receiver.on('ready', () => this.ready++);
    receiver.on('newEvents', (events) => this.ids.push(...events.map((e) => e.id)));
    receiver.on('workerError', (code) => {
      this.workerErrors.push(code);
      this.workerErrorsAt.push(performance.now());
    });
    receiver.on('receiverError', (code) => this.receiverErrors.push(code));
  }
}

/** A ReliableReceiver whose handler fails the next `failNext` times. */
class FlakyReceiver extends ReliableReceiver {
  /** When each handling started (performance.now()). */
  readonly attemptsAt: number[] = [];
  failures = 0;
  failNext = 0;
  readonly handled: string[] = [];

  protected override _onEvents(as: AsyncSteps, events: Event[]): void {
    this.attemptsAt.push(performance.now());
    if (this.failNext > 0) {
      this.failNext--;
      this.failures++;
      throw new Error('Handler failed');
    }
    this.handled.push(...events.map((e) => e.id));
  }
}

/**
 * Delivery was complete and in order, at least once: the first occurrences are exactly
 * `expected`, and whatever came twice is a re-sent tail of at most one push per rewind, with at
 * most `maxRewinds` rewinds (one per lost connection).
 */
function expectAtLeastOnceInOrder(received: string[], expected: string[], maxRewinds: number) {
  const seen = new Set<string>();
  const firsts: string[] = [];
  let rewinds = 0;
  let duplicates = 0;
  let previous = 0n;
  for (const id of received) {
    if (BigInt(id) <= previous) rewinds++;
    previous = BigInt(id);
    if (seen.has(id)) duplicates++;
    else {
      seen.add(id);
      firsts.push(id);
    }
  }
  expect(firsts).to.deep.equal(expected);
  expect(rewinds, 'rewinds').to.be.at.most(maxRewinds);
  expect(duplicates, 'duplicates').to.be.at.most(maxRewinds * REF_WS_CHUNK);
}

describe('our receivers against the reference push service (futoin-eventstream 1.3.9)', function () {
  this.timeout(60_000);

  let tmpDir: string;
  let server: http.Server;
  const sockets = new Set<net.Socket>();
  let ccm: AdvancedCCM;
  let executor: GuardedNodeExecutor;
  let url: string;
  const pushErrors: unknown[] = [];
  const receivers: LiveReceiver[] = [];

  const db = (): L2Face => ccm.db?.('evt') as L2Face;

  /** Adds `count` events in multi-row INSERTs (the reference's columns); returns all IDs so far. */
  async function addEvents(count: number, type = 'T'): Promise<void> {
    const BATCH = 100;
    for (let done = 0; done < count; done += BATCH) {
      await run((as) => {
        const q = db().insert('evt_queue');
        for (let i = done; i < Math.min(count, done + BATCH); i++) {
          if (i > done) q.newRow();
          q.set({ type, data: JSON.stringify({ i }), ts: q.helpers().now() });
        }
        q.execute(as);
      });
    }
  }

  /** Event IDs in ID order (optionally of one type), read a page at a time. */
  async function allIds(type?: string): Promise<string[]> {
    const ids: string[] = [];
    for (;;) {
      const res = await run<{ rows: unknown[][] }>((as) => {
        const q = db().select('evt_queue').get('id');
        if (type) q.where('type', type);
        q.where('id >', Number(ids[ids.length - 1] ?? 0))
          .order('id')
          .limit(1000)
          .execute(as);
      });
      if (res.rows.length === 0) return ids;
      ids.push(...res.rows.map((r) => String(r[0])));
    }
  }

  /** Waits until the consumer's stored position (evt_consumers.last_evt_id) is `id`. */
  async function pointerReaches(component: string, id: string): Promise<void> {
    await waitForValue(
      `the stored pointer of ${component} at ${id}`,
      async () => {
        const res = await run<{ rows: (number | string | null)[][] }>((as) =>
          db().query(as, `SELECT last_evt_id FROM evt_consumers WHERE ident LIKE '%:${component}'`),
        );
        return String(res.rows[0]?.[0] ?? '');
      },
      (pointer) => pointer === id,
      DELIVERY_MS,
    );
  }

  /**
   * Adds one more event and waits until `got` has it: in-order delivery brings anything still
   * owed (a duplicate too) before it. Resolves with every ID in the database, the new one last.
   */
  async function deliverOneMore(got: () => string[], type = 'END'): Promise<string[]> {
    await addEvents(1, type);
    const all = await allIds();
    const last = all[all.length - 1] ?? '';
    await waitFor(`the event added last (${last})`, () => got().includes(last), DELIVERY_MS);
    return all;
  }

  function start<T extends LiveReceiver>(
    receiver: T,
    component?: string,
    credentials = CREDENTIALS,
  ): Observed {
    receivers.push(receiver);
    const observed = new Observed(receiver);
    receiver.start(url, credentials, component ? { component } : {});
    return observed;
  }

  before(async function () {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-ref-push-'));
    server = http.createServer();
    server.on('connection', (sock: net.Socket) => {
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;

    ccm = new AdvancedCCM();
    await run((as) => {
      AutoConfig(
        as,
        ccm,
        { evt: {} },
        { DB_EVT_TYPE: 'sqlite', DB_EVT_SOCKET: path.join(tmpDir, 'evt.sqlite') },
      );
      as.add((as) => {
        for (const file of fs.readdirSync(REF_SCHEMA_DIR).sort()) {
          const sql = fs.readFileSync(path.join(REF_SCHEMA_DIR, file), 'utf8');
          for (const statement of sql.split(';')) {
            const code = statement.replace(/--[^\n]*/g, '').trim();
            if (code) db().query(as, code);
          }
        }
      });
      as.add((as) => {
        const security = new LegacySecurityProvider(as, ccm);
        security.addUser('user', 'secret');
        executor = new GuardedNodeExecutor(ccm, { httpServer: server, securityProvider: security });
        RefDBGenService.register(as, executor);
        const push = RefDBPushService.register(as, executor);
        push.on('pushError', (...args) => pushErrors.push(args));
      });
    });
  });

  afterEach(function () {
    for (const r of receivers.splice(0)) r.stop();
  });

  after(async function () {
    executor?.close();
    for (const sock of sockets) sock.destroy();
    await new Promise((resolve) => server?.close(resolve));
    ccm?.close();
    // The reference's push worker may still be sleeping (up to 3 s) before it notices.
    await sleep(100);
    fs.rmSync(tmpDir, { recursive: true, force: true });
  });

  it('ReliableReceiver gets every event exactly once, in order: those before and while connected', async function () {
    await addEvents(1000);
    const receiver = new ReliableReceiver();
    const got = start(receiver, 'ALL');
    await waitFor('ready', () => got.ready === 1, DELIVERY_MS);
    await addEvents(1000);
    expect(await allIds()).to.have.length(2000);
    await waitFor('all 2000 events', () => got.ids.length >= 2000, DELIVERY_MS);
    const expected = await deliverOneMore(() => got.ids);
    expect(got.ids).to.deep.equal(expected);
    await pointerReaches('ALL', expected[expected.length - 1] ?? '');
    expect(got.workerErrors).to.deep.equal([]);
    expect(got.receiverErrors).to.deep.equal([]);
  });

  it('ReliableReceiver reconnects by itself after its WebSocket drops and resumes from the stored pointer', async function () {
    const receiver = new ReliableReceiver();
    const got = start(receiver, 'DROP');
    await waitFor('ready', () => got.ready === 1, DELIVERY_MS);
    await addEvents(1500);
    // Drop the connection while the stream is flowing.
    await waitFor('the first events', () => got.ids.length >= 300, DELIVERY_MS);
    for (const sock of sockets) sock.destroy();
    await addEvents(300);
    await waitFor('ready after reconnecting', () => got.ready === 2, DELIVERY_MS);
    expect(got.workerErrors).to.deep.equal(['Disconnect']);
    await addEvents(200);

    // A new consumer starts from the first event in the database.
    const before = await allIds();
    await waitFor('every event', () => new Set(got.ids).size >= before.length, DELIVERY_MS);
    const expected = await deliverOneMore(() => got.ids);
    expectAtLeastOnceInOrder(got.ids, expected, 1);
    await pointerReaches('DROP', expected[expected.length - 1] ?? '');
  });

  it('a ReliableReceiver whose handler fails at first still gets every event, with paced retries', async function () {
    await addEvents(300, 'FLAKY');
    const expected = await allIds();
    const receiver = new FlakyReceiver();
    const FAILURES = 4;
    receiver.failNext = FAILURES;
    const got = start(receiver, 'FLAKY');
    await waitFor(
      'every event',
      () => new Set(receiver.handled).size >= expected.length,
      DELIVERY_MS,
    );
    expect(receiver.failures).to.equal(FAILURES);
    // The reference re-sends a failed push at once: our answers set the pace (50-100 ms, then
    // doubling), so each retry waited at least the shortest of these.
    expectGapsAtLeast(
      'retries of a failing handler',
      receiver.attemptsAt.slice(0, FAILURES + 1),
      shortestBackoffs(HANDLER_RETRY.min, HANDLER_RETRY.max, FAILURES),
    );
    await waitFor('receiverError events', () => got.receiverErrors.length === FAILURES);

    const all = await deliverOneMore(() => receiver.handled);
    expectAtLeastOnceInOrder(receiver.handled, all, 0);
    expect(got.workerErrors).to.deep.equal([]);
  });

  it('retries a refused login with backoff, never in a tight loop', async function () {
    const receiver = new ReliableReceiver();
    const startedAt = performance.now();
    const got = start(receiver, 'DENIED', 'user:wrong');
    await waitFor('6 refused logins', () => got.workerErrors.length >= 6);
    expect(new Set(got.workerErrors)).to.deep.equal(new Set(['SecurityError']));
    expect(got.ready).to.equal(0);
    // Waits of 50-100, 100-200, 200-400, 400-800, 800-1600 ms: the 6th attempt at least 1550 ms
    // after the start (refusing without waiting is far quicker).
    expectElapsedAtLeast(
      'refused logins',
      startedAt,
      got.workerErrorsAt.slice(0, 6),
      shortestBackoffs(RECONNECT.min, RECONNECT.max, 5),
    );
  });

  it('LiveReceiver gets new events', async function () {
    const receiver = new LiveReceiver();
    const got = start(receiver);
    await waitFor('ready', () => got.ready === 1, DELIVERY_MS);
    await addEvents(250, 'LIVE_NEW');
    const expected = await allIds('LIVE_NEW');
    await waitFor('the new events', () => got.ids.length >= 250, DELIVERY_MS);
    const last = (await deliverOneMore(() => got.ids, 'LIVE_END')).at(-1);
    // Live groups may be pushed two at a time and are handled as they come.
    const live = got.ids.filter((id) => id !== last).sort((a, b) => Number(a) - Number(b));
    expect(live).to.deep.equal(expected);
    expect(got.receiverErrors).to.deep.equal([]);
  });

  it('a consumer process exits by itself once its receiver is stopped', async function () {
    await addEvents(50, 'EXIT');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'fixtures', 'receiver-process.ts')],
      {
        cwd: path.join(__dirname, '..', '..'),
        env: {
          ...process.env,
          EVT_URL: url,
          EVT_CREDENTIALS: CREDENTIALS,
          EVT_COMPONENT: 'EXIT',
          EVT_COUNT: '50',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exit = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      await waitFor(
        () => `the child to stop (stderr: ${err})`,
        () => out.includes('stopped'),
        30_000,
      );
      const code = await withTimeout(
        exit,
        () => `the exit after stop (stdout: ${out}, stderr: ${err})`,
      );
      expect(code, `exit after stop (stdout: ${out}, stderr: ${err})`).to.equal(0);
      expect(out).to.match(/received \d+/);
    } finally {
      if (child.exitCode === null) child.kill();
    }
  });

  after(function () {
    // Diagnostics only: the reference reports failed pushes (our paced failures among them).
    if (process.env['EVT_TEST_LOG'] === 'debug') {
      process.stderr.write(`reference pushError events: ${pushErrors.length}\n`);
    }
  });
});

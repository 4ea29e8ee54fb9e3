/**
 * Options per component: named defaults, checked when the component is constructed or started.
 * Every value that cannot work is refused with an error naming the component and the option,
 * and the README's option tables list exactly the defaults in the code.
 */
import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import $as from 'futoin-asyncsteps';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { DBServiceApp } from '../src/app/DBServiceApp';
import { APP_DEFAULTS, appSettings, SERVICE_DEFAULTS, serviceSettings } from '../src/app/options';
import type { ServiceConfig } from '../src/app/service';
import { StreamService } from '../src/app/service';
import { consoleLogger } from '../src/common/log';
import { POLL_DEFAULTS, pollSettings, storeOptionsOf } from '../src/delivery/poll/options';
import { PollService } from '../src/delivery/poll/PollService';
import { PUSH_DEFAULTS, pushSettings } from '../src/delivery/push/options';
import { PushService } from '../src/delivery/push/PushService';
import { GenService } from '../src/generation/GenService';
import { dbGenSettings, GEN_DEFAULTS, genMaxEventBytes } from '../src/generation/options';
import { DBEventArchiver } from '../src/maintenance/DBEventArchiver';
import { DBEventDiscarder } from '../src/maintenance/DBEventDiscarder';
import {
  ARCHIVER_DEFAULTS,
  archiverMigrate,
  archiverSettings,
  DISCARDER_DEFAULTS,
  discarderSettings,
} from '../src/maintenance/options';
import { RECEIVER_DEFAULTS, receiverSettings } from '../src/receiving/connect';
import { COORDINATION_DEFAULTS } from '../src/storage/coordination/options';
import { LiveReceiver } from '../src/receiving/LiveReceiver';
import { TRANSACTIONAL_DEFAULTS } from '../src/receiving/TransactionalReceiver';
import { AUTH_DEFAULTS, UsersSecurityProvider } from '../src/transport/auth';

/** Every component's defaults, by the name the README gives them. */
const ALL_DEFAULTS: Record<string, Readonly<Record<string, unknown>>> = {
  GEN_DEFAULTS,
  POLL_DEFAULTS,
  PUSH_DEFAULTS,
  COORDINATION_DEFAULTS,
  RECEIVER_DEFAULTS,
  TRANSACTIONAL_DEFAULTS,
  ARCHIVER_DEFAULTS,
  DISCARDER_DEFAULTS,
  APP_DEFAULTS,
  SERVICE_DEFAULTS,
  AUTH_DEFAULTS,
};

/** Refusals: what to call, and the start of the error it must throw. */
type Refusal = [() => unknown, string];

function expectRefusals(refusals: readonly Refusal[]): void {
  for (const [call, start] of refusals) {
    let error: unknown = null;
    try {
      call();
    } catch (e) {
      error = e;
    }
    expect(error, start).to.be.an('error');
    expect((error as Error).message, start).to.satisfy((m: string) => m.startsWith(start));
    expect(error, start).to.satisfy(
      (e: unknown) => e instanceof RangeError || e instanceof TypeError,
    );
  }
}

// Values of the wrong type, as JavaScript callers (or JSON configuration) may pass them.
const wrong = <T>(v: unknown): T => v as T;

describe('component options', function () {
  it('gen: refuses what cannot work, naming the option', function () {
    expectRefusals([
      [
        () => genMaxEventBytes({ max_event_bytes: 0 }),
        'gen option max_event_bytes must be an integer ≥ 1, got 0',
      ],
      [() => genMaxEventBytes({ max_event_bytes: wrong('4M') }), 'gen option max_event_bytes'],
      [() => dbGenSettings({ batch_max_events: 0 }), 'gen option batch_max_events'],
      [() => dbGenSettings({ batch_max_bytes: 1.5 }), 'gen option batch_max_bytes'],
      [
        () => dbGenSettings({ event_table: 'evt queue' }),
        'gen option event_table must be a table name',
      ],
    ]);
    expect(genMaxEventBytes({})).to.equal(GEN_DEFAULTS.max_event_bytes);
    expect(dbGenSettings({}).limits).to.deep.equal({
      maxEvents: GEN_DEFAULTS.batch_max_events,
      maxBytes: GEN_DEFAULTS.batch_max_bytes,
    });
  });

  it('poll: refuses what cannot work, naming the option', function () {
    expectRefusals([
      [
        () => pollSettings({ allow_reliable: wrong('yes') }),
        'poll option allow_reliable must be true or false',
      ],
      [() => pollSettings({ allow_polling: wrong(1) }), 'poll option allow_polling'],
      [
        () => pollSettings({ max_chunk_events: 0 }),
        'poll option max_chunk_events must be an integer from 1 to 1000, got 0',
      ],
      [() => pollSettings({ max_chunk_events: 1001 }), 'poll option max_chunk_events'],
      [() => storeOptionsOf('poll', { consumer_table: '' }), 'poll option consumer_table'],
      [() => storeOptionsOf('push', { event_table: 'a;b' }), 'push option event_table'],
    ]);
    expect(pollSettings({})).to.deep.equal({
      allowReliable: POLL_DEFAULTS.allow_reliable,
      allowPolling: POLL_DEFAULTS.allow_polling,
      maxChunkEvents: POLL_DEFAULTS.max_chunk_events,
    });
  });

  it('push: refuses what cannot work, naming the option', function () {
    expectRefusals([
      [
        () => pushSettings({ request_max: 0 }),
        'push option request_max must be an integer ≥ 1, got 0',
      ],
      [() => pushSettings({ queue_max: 0 }), 'push option queue_max'],
      [() => pushSettings({ queue_max_bytes: -1 }), 'push option queue_max_bytes'],
      [
        () => pushSettings({ call_timeout_ms: 0 }),
        'push option call_timeout_ms must be a number of ms > 0',
      ],
      [() => pushSettings({ retry_min_ms: 0 }), 'push option retry_min_ms'],
      [
        () => pushSettings({ retry_min_ms: 500, retry_max_ms: 100 }),
        'push options retry_min_ms and retry_max_ms',
      ],
      [
        () => pushSettings({ skip_store_ms: -1 }),
        'push option skip_store_ms must be a number of ms ≥ 0',
      ],
      [() => pushSettings({ poll_min_ms: 0 }), 'push option poll_min_ms'],
      [() => pushSettings({ poll_max_ms: 1 }), 'push options poll_min_ms and poll_max_ms'],
      [() => pushSettings({ listen: wrong('no') }), 'push option listen'],
      [
        () => pushSettings({ park_max_streak: 0 }),
        'push option park_max_streak must be an integer ≥ 1, got 0',
      ],
    ]);
    const d = PUSH_DEFAULTS;
    expect(pushSettings({ skip_store_ms: 0 }).hub.session.skipStoreMs).to.equal(0);
    // futoin-eventstream's DBPushService names for the same pauses; ours win where both are.
    expect(pushSettings({ sleep_min: 100, sleep_max: 3000, sleep_step: 100 }).hub.waker).to.include(
      { pollMinMs: 100, pollMaxMs: 3000 },
    );
    expect(pushSettings({ sleep_min: 100, poll_min_ms: 7 }).hub.waker.pollMinMs).to.equal(7);
    expectRefusals([
      [() => pushSettings({ sleep_min: 0 }), 'push option sleep_min'],
      [() => pushSettings({ sleep_step: -1 }), 'push option sleep_step'],
    ]);
    expect(pushSettings({})).to.deep.equal({
      callTimeoutMs: d.call_timeout_ms,
      hub: {
        session: {
          maxInFlight: d.request_max,
          queueMaxEvents: d.queue_max,
          queueMaxBytes: d.queue_max_bytes,
          retryMinMs: d.retry_min_ms,
          retryMaxMs: d.retry_max_ms,
          skipStoreMs: d.skip_store_ms,
          parkMaxStreak: d.park_max_streak,
        },
        waker: { pollMinMs: d.poll_min_ms, pollMaxMs: d.poll_max_ms, listen: d.listen },
        liveCallsPerS: d.live_calls_per_s,
        reliableCallsPerS: d.reliable_calls_per_s,
      },
    });
    expect(pushSettings({ live_calls_per_s: 0 }).hub.liveCallsPerS).to.equal(0);
    expect(pushSettings({ reliable_calls_per_s: 0 }).hub.reliableCallsPerS).to.equal(0);
    expectRefusals([
      [
        () => pushSettings({ reliable_calls_per_s: -1 }),
        'push option reliable_calls_per_s must be an integer ≥ 0, got -1',
      ],
      [
        () => pushSettings({ live_calls_per_s: -1 }),
        'push option live_calls_per_s must be an integer ≥ 0, got -1',
      ],
      [() => pushSettings({ live_calls_per_s: 1.5 }), 'push option live_calls_per_s'],
    ]);
  });

  it('receivers: refuse what cannot work at start(), naming the option', function () {
    expectRefusals([
      [
        () => receiverSettings('receiver', { want: wrong('ORDER') }),
        'receiver option want must be null or a list of event types',
      ],
      [() => receiverSettings('receiver', { want: ['order'] }), 'receiver option want'],
      [() => receiverSettings('receiver', { component: wrong(7) }), 'receiver option component'],
      [() => receiverSettings('receiver', { reqTimeout: 0 }), 'receiver option reqTimeout'],
      [() => receiverSettings('receiver', { reconnectMinMS: 0 }), 'receiver option reconnectMinMS'],
      [
        () => receiverSettings('receiver', { reconnectMaxMS: 50 }),
        'receiver options reconnectMinMS and reconnectMaxMS',
      ],
    ]);
    const s = receiverSettings('receiver', { version: '1.0', want: ['ORDER'] });
    expect(s).to.deep.include({
      want: ['ORDER'],
      reqTimeout: RECEIVER_DEFAULTS.reqTimeout,
      reconnectMinMS: RECEIVER_DEFAULTS.reconnectMinMS,
      reconnectMaxMS: RECEIVER_DEFAULTS.reconnectMaxMS,
    });
    expect(s.faceOptions, 'the rest goes to the face').to.deep.equal({ version: '1.0' });
  });

  it('archiver: refuses what cannot work, naming the option', function () {
    expectRefusals([
      [
        () => archiverSettings({ mode: wrong('pull') }),
        'archiver option mode must be one of push, poll, auto',
      ],
      [() => archiverSettings({ history_table: 'evt history' }), 'archiver option history_table'],
      [() => archiverSettings({ pollMinMS: 0 }), 'archiver option pollMinMS'],
      [() => archiverSettings({ pollMaxMS: 5 }), 'archiver options pollMinMS and pollMaxMS'],
      [() => archiverSettings({ reconnectMinMS: -1 }), 'archiver option reconnectMinMS'],
      [() => archiverMigrate({ migrate: wrong('yes') }), 'archiver option migrate'],
    ]);
    expect(archiverSettings({})).to.deep.include({
      mode: ARCHIVER_DEFAULTS.mode,
      historyTable: ARCHIVER_DEFAULTS.history_table,
      pollMinMs: ARCHIVER_DEFAULTS.pollMinMS,
      pollMaxMs: ARCHIVER_DEFAULTS.pollMaxMS,
    });
  });

  it('discarder: refuses what cannot work, naming the option', function () {
    expectRefusals([
      [
        () => discarderSettings({ keep_for: 'a while' }),
        'discarder option keep_for must be a duration',
      ],
      [() => discarderSettings({ stale_consumer_ms: -5 }), 'discarder option stale_consumer_ms'],
      [() => discarderSettings({ limit_at_once: 0 }), 'discarder option limit_at_once'],
      [() => discarderSettings({ limit_at_once: 1.5 }), 'discarder option limit_at_once'],
      [() => discarderSettings({ poll_period_ms: 0 }), 'discarder option poll_period_ms'],
      [
        () => discarderSettings({ event_table: 'evt_queue; DROP TABLE x' }),
        'discarder option event_table',
      ],
    ]);
    expect(discarderSettings({ stale_consumer_ms: null, keep_for: '1h' })).to.deep.equal({
      periodMs: DISCARDER_DEFAULTS.poll_period_ms,
      limit: DISCARDER_DEFAULTS.limit_at_once,
      eventTable: undefined,
      consumerTable: undefined,
      keepMs: 3_600_000,
      staleMs: undefined,
    });
  });

  it("app and service: refuse what cannot work, their components' options included", function () {
    expectRefusals([
      [() => appSettings({ enableAdmin: wrong('yes') }), 'app option enableAdmin'],
      [() => appSettings({ evtOptions: { request_max: 0 } }), 'push option request_max'],
      [() => appSettings({ evtOptions: { max_event_bytes: 0 } }), 'gen option max_event_bytes'],
      [
        () => appSettings({ enableDiscarder: true, discarderOptions: { limit_at_once: 0 } }),
        'discarder option limit_at_once',
      ],
      [
        () => appSettings({ enableArchiver: true, archiverOptions: { mode: wrong('pull') } }),
        'archiver option mode',
      ],
      [
        () => serviceSettings(config({ port: 70_000 })),
        'service option port must be an integer from 0 to 65535',
      ],
      [() => serviceSettings(config({ metrics: wrong('everyone') })), 'service option metrics'],
      [() => serviceSettings(config({ console: wrong('no') })), 'service option console'],
      [
        () => serviceSettings(config({ shutdownTimeoutMs: -1 })),
        'service option shutdownTimeoutMs must be a number of ms ≥ 0',
      ],
      [
        () => serviceSettings(config({ readyTimeoutMs: 0 })),
        'service option readyTimeoutMs must be a number of ms > 0',
      ],
      [
        () => new UsersSecurityProvider(new Map(), new Map(), { failure_limit: 0 }),
        'auth option failure_limit must be an integer ≥ 1',
      ],
      [
        () => new UsersSecurityProvider(new Map(), new Map(), { failure_window_ms: 0 }),
        'auth option failure_window_ms must be a number of ms > 0',
      ],
      [
        () => serviceSettings(config({ adminOrigins: ['ops.example.com'] })),
        'service option adminOrigins must be a list of http(s) origins',
      ],
    ]);
    expect(appSettings({})).to.deep.equal(APP_DEFAULTS);
    expect(serviceSettings(config({}))).to.deep.equal({
      metrics: SERVICE_DEFAULTS.metrics,
      console: SERVICE_DEFAULTS.console,
      trustProxy: SERVICE_DEFAULTS.trustProxy,
      secureLoopback: SERVICE_DEFAULTS.secureLoopback,
      shutdownTimeoutMs: SERVICE_DEFAULTS.shutdownTimeoutMs,
      readyTimeoutMs: SERVICE_DEFAULTS.readyTimeoutMs,
      adminOrigins: [],
    });
  });

  it('the components check when constructed or started, before anything runs', async function () {
    const executor = new Executor(new AdvancedCCM());
    try {
      expect(() => new GenService($as(), executor, { max_event_bytes: 0 })).to.throw(
        RangeError,
        /^gen option/,
      );
      expect(() => new PollService($as(), executor, { max_chunk_events: 0 })).to.throw(
        RangeError,
        /^poll option/,
      );
      expect(() => new PushService($as(), executor, { request_max: 0 })).to.throw(
        RangeError,
        /^push option/,
      );
      expect(() => new LiveReceiver().start(executor, null, { reqTimeout: -1 })).to.throw(
        RangeError,
        /^receiver option/,
      );
      expect(() => new DBEventDiscarder().start(new AdvancedCCM(), { keep_for: '7w' })).to.throw(
        RangeError,
        /^discarder option/,
      );
      const ccm = new AdvancedCCM();
      const archiver = new DBEventArchiver(ccm, {
        warehouse: { dialect: 'sqlite', file: ':memory:' },
      });
      expect(() => archiver.start(executor, null, { pollMinMS: 0 })).to.throw(
        RangeError,
        /^archiver option/,
      );
      ccm.close();
      const app = await DBServiceApp.start({ evtOptions: { queue_max: 0 } }).catch(
        (e: unknown) => e,
      );
      expect(app).to.be.instanceOf(RangeError);
      expect((app as Error).message).to.match(/^push option queue_max/);
      const service = await StreamService.start(config({ port: -1 })).catch((e: unknown) => e);
      expect(service).to.be.instanceOf(RangeError);
    } finally {
      executor.close();
    }
  });

  it('every defaults object is frozen', function () {
    for (const [name, d] of Object.entries(ALL_DEFAULTS))
      expect(Object.isFrozen(d), name).to.equal(true);
  });

  it('every defaults object is exported from the package main', async function () {
    const main: Record<string, unknown> = await import('../src/index');
    for (const [name, d] of Object.entries(ALL_DEFAULTS)) expect(main[name], name).to.equal(d);
  });
});

describe('README option tables', function () {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const section = readme.slice(
    readme.indexOf('\n## Options\n'),
    readme.indexOf('\n## ', readme.indexOf('\n## Options\n') + 1),
  );

  /** The rows (option → default, as written) of the table after the paragraph naming `name`. */
  function table(name: string): Map<string, string> {
    const at = section.indexOf(`\`${name}\` in`);
    expect(at, `README names ${name}`).to.be.greaterThan(0);
    const rows = new Map<string, string>();
    const lines = section.slice(at).split('\n');
    let i = lines.findIndex((l) => l.startsWith('|'));
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
      const cells = lines[i]!.split('|').map((c) => c.trim());
      rows.set(cells[1]!.replace(/`/g, ''), cells[2]!.replace(/`/g, ''));
    }
    return rows;
  }

  const written = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : String(v));

  for (const [name, defaults] of Object.entries(ALL_DEFAULTS)) {
    it(`lists ${name} as the code has it`, function () {
      const expected = new Map(Object.entries(defaults).map(([k, v]) => [k, written(v)]));
      expect(Object.fromEntries(table(name))).to.deep.equal(Object.fromEntries(expected));
    });
  }
});

function config(over: Partial<ServiceConfig>): ServiceConfig {
  return {
    db: { dialect: 'sqlite', file: ':memory:' },
    host: '127.0.0.1',
    port: 0,
    users: new Map(),
    log: consoleLogger('silent'),
    ...over,
  };
}

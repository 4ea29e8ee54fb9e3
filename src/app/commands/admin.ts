import os from 'os';
import { parseArgs, type ParseArgsConfig } from 'util';
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { runSteps } from '../../common/errors';
import { isEventId } from '../../common/ids';
import { parseTime } from '../../common/time';
import {
  AdminCore,
  MAX_ATTEMPTS_LIMIT,
  type ConsumerInfo,
  type MoveRecord,
  type MoveResult,
  type ParkedInfo,
  type StreamStats,
} from '../../ops/admin';
import { AdminFace, type MoveTarget } from '../../common/faces/AdminFace';
import { migrate } from '../../storage/migrate';
import { EventStore } from '../../storage/store';
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbConfig,
  intOption,
  cliLogger,
  UsageError,
  type CliIO,
} from './common';

/**
 * The operations commands: consumers, consumer reset/drop/moves, stats. Each works against a
 * running service (--url, as an admin, through ftn18es.admin) or directly on the database
 * (--db), with the same results.
 */

const TARGET_HELP = `
Where to (--url, as an admin: EVTSTREAM_ADMIN="name:secret" or --admin):
  --url URL          a running service (http://, https://, ws://, wss://); a loopback
                     or TLS URL counts as the secure channel ftn18es.admin requires
  --admin NAME:SECRET  the admin's credentials (default: $EVTSTREAM_ADMIN)
or directly on the database (needs its credentials; moves are recorded as the OS user):
${DB_HELP}
  --json             JSON instead of a table`;

export const CONSUMERS_HELP = `Usage: evtstream consumers [options]

Lists the registered reliable consumers: ident (user:component), pointer (the last event
acknowledged), lag in events and in time (the age of the oldest event it has not
acknowledged), last activity, and how it reads (push, poll, idle; as the service sees it:
directly on the database every consumer shows as idle).
${TARGET_HELP}
  --lag-limit N      count at most N lagging events per consumer (default 100000)
`;

export const CONSUMER_HELP = `Usage: evtstream consumer <action> [NAME] [options]

  consumer reset NAME --to WHERE [--reason TEXT] [--dry-run]
      moves the consumer's pointer; its next poll (whatever last_id it sends) or push
      session reads from there. WHERE: start (every event again), newest (skip to now),
      an event ID (the next event it gets is the one after), or a time (ISO 8601, UTC
      when no zone is given, or an age such as 2h; README, "Durations and times"): the
      first event it gets is the first at or after that time. What the discarder deleted
      comes from the warehouse when the service has one (serve --dwh); without one, the
      consumer goes on at the oldest event left, and the service logs the jump. --dry-run
      only says where the pointer would go, and the lag from there.
  consumer drop NAME [--reason TEXT]
      unregisters the consumer: it no longer holds events back from the discarder.
  consumer moves [NAME] [--limit N]
      the recorded actions (resets, drops, replays, skips, max-attempts), newest first.

Poison events (push consumers; README, "Poison events"):
  consumer max-attempts NAME N|off [--reason TEXT]
      after N failed onEvents calls (1 to ${MAX_ATTEMPTS_LIMIT}) the event the receiver fails on is
      parked and delivery goes on after it; off (or 0): delivery waits on it (the
      default). Also starts parking again where it stopped after too many in a row.
  consumer parked [NAME] [--all] [--limit N]
      the parked events (not resolved yet; --all: also replayed and skipped ones), with
      the receiver's last error.
  consumer replay NAME [ID] [--reason TEXT]
      delivers the parked event ID (without ID: all of the consumer's) again at its
      next push session, in ID order, marked "replayed": true.
  consumer skip NAME [ID] --reason TEXT
      resolves the parked event ID (without ID: all of the consumer's) without delivery.

NAME is the consumer's ident, user:component (see evtstream consumers).
${TARGET_HELP}
`;

export const STATS_HELP = `Usage: evtstream stats [options]

Stream statistics: newest and oldest event IDs, the delivery horizon, active events,
warehouse events (with a service that archives), new events per second recently,
consumers, push sessions.
${TARGET_HELP}
`;

const ADMIN_OPTIONS = {
  ...COMMON_OPTIONS,
  url: { type: 'string' },
  admin: { type: 'string' },
  json: { type: 'boolean' },
  'lag-limit': { type: 'string' },
  to: { type: 'string' },
  reason: { type: 'string' },
  limit: { type: 'string' },
  'dry-run': { type: 'boolean' },
  all: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof ADMIN_OPTIONS }>>['values'];

/** What the commands need, remote or local. */
interface Admin {
  listConsumers(lagLimit: number): Promise<ConsumerInfo[]>;
  moveConsumer(
    ident: string,
    to: MoveTarget,
    at: { id?: string; time?: string; reason: string; dryRun: boolean },
  ): Promise<MoveResult>;
  dropConsumer(ident: string, reason: string): Promise<boolean>;
  listMoves(ident: string | null, limit: number): Promise<MoveRecord[]>;
  stats(): Promise<StreamStats>;
  setMaxAttempts(ident: string, max: number, reason: string): Promise<number>;
  listParked(ident: string | null, all: boolean, limit: number): Promise<ParkedInfo[]>;
  replayParked(ident: string, id: string | null, reason: string): Promise<number>;
  skipParked(ident: string, id: string | null, reason: string): Promise<number>;
  close(): Promise<void>;
}

/** Runs FutoIn steps; rejects with an EvtError (printed "Code: info"). */
const run = <T>(body: (as: AsyncSteps) => void): Promise<T> => runSteps<T>(() => $as(), body);

const isLoopbackUrl = (u: URL): boolean =>
  ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname) || u.hostname.startsWith('127.');

async function remoteAdmin(url: string, credentials: string): Promise<Admin> {
  // futoin-invoker's "secure+" prefix marks a channel secure; loopback and TLS are anyway.
  const marked = url.startsWith('secure+');
  let parsed: URL;
  try {
    parsed = new URL(marked ? url.slice('secure+'.length) : url);
  } catch {
    throw new UsageError(`--url: not a URL: ${url}`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol))
    throw new UsageError('--url must be http://, https://, ws:// or wss://');
  if (!/^[^:]+:.+$/.test(credentials)) throw new UsageError('--admin must be NAME:SECRET');
  const ccm = new AdvancedCCM();
  const secure =
    marked || parsed.protocol === 'https:' || parsed.protocol === 'wss:' || isLoopbackUrl(parsed);
  await run((as) =>
    AdminFace.register(as, ccm, 'admin', url, credentials, { secureChannel: secure }),
  );
  const face = ccm.iface<AdminFace>('admin');
  return {
    listConsumers: async (lagLimit) =>
      (await run<{ consumers: ConsumerInfo[] }>((as) => face.listConsumers(as, lagLimit)))
        .consumers,
    moveConsumer: (ident, to, at) =>
      run((as) =>
        face.moveConsumer(as, ident, to, {
          id: at.id ?? null,
          time: at.time ?? null,
          reason: at.reason,
          dry_run: at.dryRun,
        }),
      ),
    dropConsumer: async (ident, reason) =>
      (await run<{ dropped: boolean }>((as) => face.dropConsumer(as, ident, reason))).dropped,
    listMoves: async (ident, limit) =>
      (await run<{ moves: MoveRecord[] }>((as) => face.listMoves(as, ident, limit))).moves,
    stats: async () => (await run<{ stats: StreamStats }>((as) => face.stats(as))).stats,
    setMaxAttempts: async (ident, max, reason) =>
      (await run<{ max_attempts: number }>((as) => face.setMaxAttempts(as, ident, max, reason)))
        .max_attempts,
    listParked: async (ident, all, limit) =>
      (
        await run<{ parked: ParkedInfo[] }>((as) =>
          face.listParked(as, ident, { include_resolved: all, limit }),
        )
      ).parked,
    replayParked: async (ident, id, reason) =>
      (await run<{ count: number }>((as) => face.replayParked(as, ident, id, reason))).count,
    skipParked: async (ident, id, reason) =>
      (await run<{ count: number }>((as) => face.skipParked(as, ident, id, reason))).count,
    close: async () => {
      ccm.close();
      await Promise.resolve();
    },
  };
}

async function localAdmin(values: Values, io: CliIO, writes: boolean): Promise<Admin> {
  const log = cliLogger(values, io.env);
  const store = await EventStore.open(dbConfig(values.db, io.env), { log });
  try {
    // Moves are recorded in evt_consumer_moves, parks in evt_parked: a store older than those
    // tables gets them first (as the service would at its start). Reading commands change nothing.
    if (writes) await migrate(store.db, store.dialect, { kind: 'active', log });
  } catch (err) {
    await store.close();
    throw err;
  }
  const core = new AdminCore(store);
  return {
    listConsumers: (lagLimit) => core.listConsumers(lagLimit),
    moveConsumer: (ident, to, at) => core.moveConsumer(ident, to, localUser(), at),
    dropConsumer: (ident, reason) => core.dropConsumer(ident, localUser(), reason),
    listMoves: (ident, limit) => core.listMoves(ident, limit),
    stats: () => core.stats(),
    setMaxAttempts: async (ident, max, reason) =>
      (await core.setMaxAttempts(ident, max, localUser(), reason)).max_attempts,
    listParked: (ident, all, limit) => core.listParked(ident, { all, limit }),
    replayParked: async (ident, id, reason) =>
      (await core.replayParked(ident, id, localUser(), reason)).count,
    skipParked: async (ident, id, reason) =>
      (await core.skipParked(ident, id, localUser(), reason)).count,
    close: () => store.close(),
  };
}

/** Who made a local move, for the record. */
function localUser(): string {
  try {
    return `os:${os.userInfo().username}`;
  } catch {
    return 'os:unknown';
  }
}

function parse(argv: string[]): { values: Values; positionals: string[] } {
  return parseArgs({ args: argv, options: ADMIN_OPTIONS, strict: true, allowPositionals: true });
}

async function withAdmin<T>(
  values: Values,
  io: CliIO,
  work: (a: Admin) => Promise<T>,
  writes = false,
): Promise<T> {
  if (values.url && values.db) throw new UsageError('--url and --db exclude each other');
  if (!values.url && values.admin) throw new UsageError('--admin goes with --url');
  let admin: Admin;
  if (values.url) {
    const credentials = values.admin ?? io.env['EVTSTREAM_ADMIN'];
    if (!credentials) throw new UsageError('--url needs --admin NAME:SECRET or EVTSTREAM_ADMIN');
    admin = await remoteAdmin(values.url, credentials);
  } else {
    admin = await localAdmin(values, io, writes);
  }
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}

/** Left-aligned columns, the last one free. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/** 1234567 ms → "20m34s"; shortest form for people. */
export function formatAge(ms: number): string {
  if (ms <= 0) return '0s';
  const s = Math.floor(ms / 1000);
  if (s < 60) return ms < 1000 ? `${ms}ms` : `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

const LIMIT_RANGE = { min: 1, max: 1_000_000 };

const ACTIONS = 'reset, drop, moves, max-attempts, parked, replay, skip';

const IDENT_RE = /^[^\s:][^:]{0,46}:[A-Za-z0-9_]{1,16}$/;

function identArg(name: string | undefined): string {
  if (name === undefined) throw new UsageError('Name the consumer: user:component');
  if (!IDENT_RE.test(name))
    throw new UsageError(`"${name}" is not a consumer ident (user:component, see consumers)`);
  return name;
}

export async function consumersCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    io.out(CONSUMERS_HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  const lagLimit = intOption('--lag-limit', values['lag-limit'], 100_000, LIMIT_RANGE);
  const consumers = await withAdmin(values, io, (a) => a.listConsumers(lagLimit));
  if (values.json) {
    for (const c of consumers) io.out(JSON.stringify(c));
    return 0;
  }
  if (consumers.length === 0) {
    io.out('No registered consumers');
    return 0;
  }
  for (const line of table(
    ['CONSUMER', 'MODE', 'POINTER', 'LAG', 'LAG TIME', 'PARKED', 'LAST ACTIVITY'],
    consumers.map((c) => [
      c.ident,
      c.mode,
      c.pointer,
      `${c.lag_events}${c.lag_capped ? '+' : ''}`,
      formatAge(c.lag_ms),
      parkedColumn(c),
      c.last_time,
    ]),
  ))
    io.out(line);
  return 0;
}

/** Parked events, max_attempts and whether parking stopped, briefly: "2 (max 3, stopped)". */
function parkedColumn(c: ConsumerInfo): string {
  if (c.max_attempts === 0 && c.parked === 0) return '-';
  const rule = c.max_attempts === 0 ? 'no parking' : `max ${c.max_attempts}`;
  return `${c.parked} (${rule}${c.parking_suspended ? ', stopped' : ''})`;
}

/** An optional event ID argument. */
function eventArg(value: string | undefined): string | null {
  if (value === undefined) return null;
  const id: unknown = value;
  if (isEventId(id)) return id;
  throw new UsageError(`"${value}" is not an event ID`);
}

/** --to: start, newest, an event ID or a time. */
function moveTarget(value: string | undefined): { to: MoveTarget; id?: string; time?: string } {
  if (value === undefined) throw new UsageError('reset needs --to start|newest|ID|TIME');
  if (value === 'start' || value === 'newest') return { to: value };
  if (isEventId(value) && !/^\d+[smhd]$/.test(value)) return { to: 'id', id: value };
  const ms = parseTime(value);
  if (ms === null)
    throw new UsageError(`--to must be start, newest, an event ID or a time (not "${value}")`);
  // Whole seconds, as the stored times.
  return { to: 'time', time: `${new Date(ms).toISOString().slice(0, 19)}Z` };
}

export async function consumerCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    io.out(CONSUMER_HELP);
    return 0;
  }
  const [action, name, arg, ...extra] = positionals;
  const takesArg = action === 'replay' || action === 'skip' || action === 'max-attempts';
  if (extra.length || (arg !== undefined && !takesArg))
    throw new UsageError(`Unexpected argument "${extra[0] ?? arg}"`);
  const reason = values.reason ?? '';
  if (reason.length > 200) throw new UsageError('--reason takes at most 200 characters');
  switch (action) {
    case 'reset': {
      const ident = identArg(name);
      const target = moveTarget(values.to);
      const dryRun = values['dry-run'] ?? false;
      const moved = await withAdmin(
        values,
        io,
        (a) => a.moveConsumer(ident, target.to, { ...target, reason, dryRun }),
        !dryRun,
      );
      const lag = `${moved.lag_events}${moved.lag_capped ? '+' : ''} events to deliver from there`;
      if (values.json)
        io.out(JSON.stringify({ ident, ...moved, ...(dryRun ? { dry_run: true } : {}) }));
      else if (dryRun)
        io.out(`${ident}: the pointer would move from ${moved.from} to ${moved.pointer}; ${lag}`);
      else io.out(`${ident}: pointer moved from ${moved.from} to ${moved.pointer}; ${lag}`);
      return 0;
    }
    case 'max-attempts': {
      const ident = identArg(name);
      if (arg === undefined)
        throw new UsageError(`max-attempts needs N (1 to ${MAX_ATTEMPTS_LIMIT}) or off`);
      const max =
        arg === 'off' ? 0 : intOption('max-attempts', arg, 0, { min: 0, max: MAX_ATTEMPTS_LIMIT });
      const set = await withAdmin(values, io, (a) => a.setMaxAttempts(ident, max, reason), true);
      if (values.json) io.out(JSON.stringify({ ident, max_attempts: set }));
      else
        io.out(
          set === 0
            ? `${ident}: parks nothing; delivery waits on an event its receiver fails on`
            : `${ident}: an event its receiver fails on ${set} times in a row is parked`,
        );
      return 0;
    }
    case 'parked': {
      const ident = name === undefined ? null : identArg(name);
      const limit = intOption('--limit', values.limit, 100, { min: 1, max: 1000 });
      const all = values.all ?? false;
      const parked = await withAdmin(values, io, (a) => a.listParked(ident, all, limit), true);
      if (values.json) {
        for (const p of parked) io.out(JSON.stringify(p));
      } else if (parked.length === 0) {
        io.out(all ? 'No parked events' : 'No parked events to resolve');
      } else {
        for (const line of table(
          ['CONSUMER', 'EVENT', 'TYPE', 'STATE', 'ATTEMPTS', 'LAST FAILURE', 'ERROR'],
          parked.map((p) => [
            p.ident,
            p.event.id,
            p.event.type,
            p.state,
            String(p.attempts),
            p.last_failure,
            `${p.error_code}: ${p.error_info}`.replace(/\s+/g, ' ').slice(0, 120),
          ]),
        ))
          io.out(line);
      }
      return 0;
    }
    case 'replay':
    case 'skip': {
      const ident = identArg(name);
      const id = eventArg(arg);
      if (action === 'skip' && !values.reason)
        throw new UsageError('skip needs --reason TEXT (it is recorded)');
      const count = await withAdmin(
        values,
        io,
        (a) =>
          action === 'replay' ? a.replayParked(ident, id, reason) : a.skipParked(ident, id, reason),
        true,
      );
      if (values.json) io.out(JSON.stringify({ ident, action, count }));
      else if (action === 'replay')
        io.out(`${ident}: ${count} parked event(s) to be delivered again at its next push session`);
      else io.out(`${ident}: ${count} parked event(s) skipped`);
      return 0;
    }
    case 'drop': {
      const ident = identArg(name);
      const dropped = await withAdmin(values, io, (a) => a.dropConsumer(ident, reason), true);
      if (values.json) io.out(JSON.stringify({ ident, dropped }));
      else io.out(dropped ? `${ident}: dropped` : `${ident}: not registered`);
      return dropped ? 0 : 1;
    }
    case 'moves': {
      const ident = name === undefined ? null : identArg(name);
      const limit = intOption('--limit', values.limit, 100, LIMIT_RANGE);
      const moves = await withAdmin(values, io, (a) => a.listMoves(ident, limit), true);
      if (values.json) {
        for (const m of moves) io.out(JSON.stringify(m));
      } else if (moves.length === 0) {
        io.out('No recorded moves');
      } else {
        for (const line of table(
          ['AT', 'CONSUMER', 'ACTION', 'FROM', 'TO', 'BY', 'REASON'],
          moves.map((m) => [
            m.at,
            m.ident,
            m.action,
            m.from,
            m.to ??
              (m.event_id !== undefined
                ? `event ${m.event_id}`
                : m.max_attempts !== undefined
                  ? `max ${m.max_attempts || 'off'}`
                  : '-'),
            m.by,
            m.reason,
          ]),
        ))
          io.out(line);
      }
      return 0;
    }
    case undefined:
      throw new UsageError(`consumer needs an action: ${ACTIONS}`);
    default:
      throw new UsageError(`Unknown consumer action "${action}" (${ACTIONS})`);
  }
}

/** A count as stats shows it: with its age when it was not counted for this call. */
const counted = (n: number, ageS: number | null | undefined): string =>
  (ageS ?? 0) > 0 ? `${n} (counted ${ageS}s ago)` : String(n);

export async function statsCommand(argv: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    io.out(STATS_HELP);
    return 0;
  }
  if (positionals.length) throw new UsageError(`Unexpected argument "${positionals[0]}"`);
  const s = await withAdmin(values, io, (a) => a.stats());
  if (values.json) {
    io.out(JSON.stringify(s));
    return 0;
  }
  const rows: [string, string][] = [
    ['newest event', s.newest_id],
    ['oldest event', s.oldest_id],
    ['delivery horizon', s.horizon],
    ['active events', counted(s.active_events, s.active_events_age_s)],
    ...(s.warehouse_events === undefined
      ? []
      : [
          ['warehouse events', counted(s.warehouse_events, s.warehouse_events_age_s)] as [
            string,
            string,
          ],
        ]),
    ['events/s', `${s.events_per_sec} (over ${s.rate_window_s}s)`],
    ['consumers', String(s.consumers)],
    ['push sessions', String(s.push_sessions)],
  ];
  for (const [k, v] of rows) io.out(`${k.padEnd(17)} ${v}`);
  return 0;
}

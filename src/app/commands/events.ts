import { parseArgs, type ParseArgsConfig } from 'util';
import { isEventType } from '../../common/event';
import { isEventId } from '../../common/ids';
import { parseDbUrl } from '../../storage/config';
import { sqlTime } from '../../common/time';
import { ACTIVE_TABLE, HISTORY_TABLE } from '../../storage/list';
import { EventStore, type ListQuery, type StoredEvent } from '../../storage/store';
import {
  COMMON_OPTIONS,
  DB_HELP,
  dbConfig,
  intOption,
  cliLogger,
  UsageError,
  type CliIO,
} from './common';

export const EVENTS_HELP = `Usage: evtstream events [options]

Lists events of the active store (evt_queue), or with --dwh of the warehouse (evt_history),
oldest first, as a table or as JSON lines (one event per line, data as JSON).

Options:
${DB_HELP}
  --dwh URL          read the warehouse at URL (same forms as --db) instead
  --from ID          events from this ID on
  --to ID            events up to this ID
  --type T[,T...]    only these types (the option may also repeat)
  --since TIME       events at or after TIME: ISO 8601 (2026-11-23T10:00:00Z, 2026-11-23;
                     UTC when no zone is given) or an age (90s, 15m, 2h, 7d ago)
  --until TIME       events at or before TIME (same forms; README, "Durations and times")
  --limit N          at most N events (default 100, at most 100000)
  --last             the newest events, newest first
  --json             JSON lines instead of a table
`;

const EVENTS_OPTIONS = {
  ...COMMON_OPTIONS,
  dwh: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string' },
  type: { type: 'string', multiple: true },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  last: { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

function idOption(name: string, value: string | undefined): string | undefined {
  if (value !== undefined && !isEventId(value))
    throw new UsageError(`--${name} must be an event ID`);
  return value;
}

function timeOption(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const t = sqlTime(value);
  if (t === null) throw new UsageError(`--${name} must be an ISO 8601 time or an age such as 15m`);
  return t;
}

/** A table for people: data cut to what fits a line. */
function formatTable(events: readonly StoredEvent[]): string[] {
  const idWidth = Math.max(2, ...events.map((e) => e.id.length));
  const typeWidth = Math.max(4, ...events.map((e) => e.type.length));
  const cut = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
  const lines = [
    `${'ID'.padStart(idWidth)}  ${'TYPE'.padEnd(typeWidth)}  ${'TS'.padEnd(20)}  DATA`,
  ];
  for (const e of events) {
    lines.push(
      `${e.id.padStart(idWidth)}  ${e.type.padEnd(typeWidth)}  ${e.ts.padEnd(20)}  ${cut(e.data, 80)}`,
    );
  }
  return lines;
}

export async function eventsCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: EVENTS_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(EVENTS_HELP);
    return 0;
  }
  const types = (values.type ?? []).flatMap((t) => t.split(',')).filter((t) => t !== '');
  const bad = types.find((t) => !isEventType(t));
  if (bad !== undefined) throw new UsageError(`--type ${bad}: event types are 1-16 of A-Z and _`);
  const query: ListQuery = {
    table: values.dwh ? HISTORY_TABLE : ACTIVE_TABLE,
    limit: intOption('--limit', values.limit, 100, { min: 1, max: 100_000 }),
    descending: values.last ?? false,
  };
  const fromId = idOption('from', values.from);
  const toId = idOption('to', values.to);
  const since = timeOption('since', values.since);
  const until = timeOption('until', values.until);
  if (fromId) query.fromId = fromId;
  if (toId) query.toId = toId;
  if (types.length > 0) query.types = types;
  if (since) query.since = since;
  if (until) query.until = until;

  let config;
  try {
    config = values.dwh ? parseDbUrl(values.dwh) : dbConfig(values.db, io.env);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const store = await EventStore.open(config, {
    log: cliLogger(values, io.env),
  });
  try {
    const events = await store.listEvents(query);
    if (values.json) {
      for (const e of events)
        io.out(`{"id":"${e.id}","type":"${e.type}","ts":"${e.ts}","data":${e.data}}`);
    } else {
      for (const line of formatTable(events)) io.out(line);
    }
  } finally {
    await store.close();
  }
  return 0;
}

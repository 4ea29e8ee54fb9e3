/**
 * Example: a push consumer whose effects happen exactly once (TransactionalReceiver).
 *
 *   EVTSTREAM_CREDENTIALS=alice:alice-secret EVTSTREAM_CONSUMER_DB=sqlite:consumer.sqlite \
 *     npx tsx examples/exactly-once-consumer.ts
 *
 * Settings (environment):
 *   EVTSTREAM_URL          the service (default secure+ws://127.0.0.1:8080/)
 *   EVTSTREAM_CREDENTIALS  "user:secret" of a user the service knows (required)
 *   EVTSTREAM_COMPONENT    the consumer's component name (default directory)
 *   EVTSTREAM_CONSUMER_DB  this consumer's own database: sqlite:FILE (default
 *                          sqlite:consumer.sqlite), postgres://user:pass@host/db or
 *                          mysql://user:pass@host/db
 *   EVTSTREAM_MAX_EVENTS   stop after this many events (default: run until Ctrl+C)
 *
 * It keeps a user directory in its own database: a row per USER_CREATED event. Each pushed batch
 * is applied in one transaction there, together with the consumer's position (the last event
 * applied, in the table evt_consumer_state, created when missing). Events at or below that
 * position are not applied again: when the process dies after its commit and before its answer,
 * the service sends the batch again, and it only gets acknowledged. Only the driver of the
 * database used is loaded.
 */
import { AdvancedCCM } from 'futoin-invoker';
import type { PoolConnection } from 'mysql2/promise';
import type { PoolClient } from 'pg';
import type { Database } from 'sqlite3';
import type { Event } from '../src/common/event';
import type { EventId } from '../src/common/ids';
// In your project: import { TransactionalReceiver, pgDatabase, ... } from 'ftn18-eventstream/receiver';
import {
  mysqlDatabase,
  pgDatabase,
  sqliteDatabase,
  TransactionalReceiver,
  type ConsumerStateStore,
} from '../src/receiving';

const url = process.env['EVTSTREAM_URL'] || 'secure+ws://127.0.0.1:8080/';
const credentials = process.env['EVTSTREAM_CREDENTIALS'];
if (!credentials) {
  console.error('Set EVTSTREAM_CREDENTIALS to "user:secret" of a user of the event stream service');
  process.exit(1);
}
const component = process.env['EVTSTREAM_COMPONENT'] || 'directory';
const database = process.env['EVTSTREAM_CONSUMER_DB'] || 'sqlite:consumer.sqlite';
const maxEvents = Number(process.env['EVTSTREAM_MAX_EVENTS'] || Infinity);

/** The user directory, in the consumer's database. */
const DIRECTORY_DDL =
  'CREATE TABLE IF NOT EXISTS directory (login VARCHAR(64) NOT NULL PRIMARY KEY, ' +
  'name VARCHAR(200) NOT NULL, event_id VARCHAR(20) NOT NULL)';
const ADD_USER = 'INSERT INTO directory (login, name, event_id) VALUES (?, ?, ?)';

/** A USER_CREATED event's row: its login, name and ID. */
const userRow = (e: Event): [string, string, EventId] => {
  const data = (e.data ?? {}) as { login?: unknown; name?: unknown };
  const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? ''));
  return [text(data.login), text(data.name), e.id];
};
const users = (events: readonly Event[]): Event[] =>
  events.filter((e) => e.type === 'USER_CREATED');

/** The consumer's database, and the handler that applies a batch with its driver's handle. */
interface Consumer<H> {
  store: ConsumerStateStore<H>;
  apply: (events: Event[], tx: H) => Promise<void>;
  exec: (sql: string) => Promise<unknown>;
  close: () => Promise<void>;
}

async function postgres(): Promise<Consumer<PoolClient>> {
  const { Pool } = await import('pg');
  const pool = new Pool({ connectionString: database, max: 2 });
  return {
    store: pgDatabase(pool),
    apply: async (events, client) => {
      for (const e of users(events)) {
        await client.query(
          'INSERT INTO directory (login, name, event_id) VALUES ($1, $2, $3)',
          userRow(e),
        );
      }
    },
    exec: (sql) => pool.query(sql),
    close: () => pool.end(),
  };
}

async function mysql(): Promise<Consumer<PoolConnection>> {
  const { createPool } = await import('mysql2/promise');
  const pool = createPool({ uri: database, connectionLimit: 2 });
  return {
    store: mysqlDatabase(pool),
    apply: async (events, conn) => {
      for (const e of users(events)) await conn.query(ADD_USER, userRow(e));
    },
    exec: (sql) => pool.query(sql),
    close: () => pool.end(),
  };
}

async function sqlite(): Promise<Consumer<Database>> {
  const sqlite3 = (await import('sqlite3')).default;
  const file = database.slice('sqlite:'.length);
  const db = await new Promise<Database>((resolve, reject) => {
    const d = new sqlite3.Database(file, (err) => (err ? reject(err) : resolve(d)));
  });
  const run = (sql: string, params: unknown[] = []): Promise<void> =>
    new Promise((resolve, reject) => db.run(sql, params, (err) => (err ? reject(err) : resolve())));
  return {
    store: sqliteDatabase(db),
    apply: async (events) => {
      for (const e of users(events)) await run(ADD_USER, userRow(e));
    },
    exec: (sql) => run(sql),
    close: () => new Promise((resolve) => db.close(() => resolve())),
  };
}

async function main(): Promise<void> {
  const consumer: Consumer<unknown> = (await (database.startsWith('postgres')
    ? postgres()
    : database.startsWith('mysql')
      ? mysql()
      : sqlite())) as Consumer<unknown>;
  await consumer.exec(DIRECTORY_DDL);

  class Directory extends TransactionalReceiver<unknown> {
    /** Called after each commit, before the service gets its answer. */
    protected override _committed(events: Event[], position: EventId): void {
      for (const e of events) console.log(`applied ${e.id} ${e.type}`);
      console.log(`position ${position}`);
    }
  }

  const ccm = new AdvancedCCM();
  const receiver = new Directory(ccm, { database: consumer.store, handler: consumer.apply });
  let received = 0;
  const stop = (why: string): void => {
    console.log(`stopped (${why}): ${received} events received`);
    ccm.close();
    void consumer.close();
  };
  receiver.on('ready', () => console.log(`consumer "${component}" receiving from ${url}`));
  // Every event delivered, applied now or before.
  receiver.on('processedEvents', (count) => {
    received += count;
    if (received >= maxEvents) stop(`received ${received} events`);
  });
  receiver.on('receiverError', (code, info) =>
    console.error(`applying failed: ${code}${info ? `: ${info}` : ''}; the batch comes again`),
  );
  receiver.on('workerError', (code, info) =>
    console.error(`connection: ${code}${info ? `: ${info}` : ''}; retrying`),
  );
  receiver.start(url, credentials, { component });
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(String(err));
  process.exit(1);
});

/**
 * SQL fragments per database for tests that write or read rows by hand (backdating events,
 * moving a pointer behind the store's back). The services' own statements are written out
 * whole in src/storage/queries/ and are not built from pieces like these.
 */
import type { Dialect } from '../../src/storage/sql';
import type { EventStore } from '../../src/storage/store';

export interface TestSql {
  /** Quotes a table or column name. */
  quote(name: string): string;
  /** A `?` read as a 64-bit integer (IDs are decimal strings). */
  readonly idParam: string;
  /** A column read back as a decimal string. */
  idText(column: string): string;
  /** A `?` for a UTC time given as 'YYYY-MM-DD HH:MM:SS'. */
  readonly tsParam: string;
  /** The current UTC time, as stored in TIMESTAMP columns. */
  readonly nowUtc: string;
  /** The UTC time `ms` milliseconds ago, as stored in TIMESTAMP columns. */
  utcBeforeMs(ms: number): string;
}

const SQL: Record<Dialect, TestSql> = {
  sqlite: {
    quote: (name) => `"${name}"`,
    idParam: 'CAST(? AS INTEGER)',
    idText: (column) => `CAST(${column} AS TEXT)`,
    tsParam: '?',
    nowUtc: "datetime('now')",
    utcBeforeMs: (ms) => `datetime('now', '-${ms / 1000} seconds')`,
  },
  postgresql: {
    quote: (name) => `"${name}"`,
    idParam: 'CAST(? AS BIGINT)',
    idText: (column) => `CAST(${column} AS TEXT)`,
    tsParam: 'CAST(? AS TIMESTAMP)',
    nowUtc: "(now() AT TIME ZONE 'UTC')",
    utcBeforeMs: (ms) => `((now() AT TIME ZONE 'UTC') - INTERVAL '${ms} milliseconds')`,
  },
  mysql: {
    quote: (name) => `\`${name}\``,
    idParam: 'CAST(? AS UNSIGNED)',
    idText: (column) => `CAST(${column} AS CHAR)`,
    tsParam: 'CAST(? AS DATETIME)',
    nowUtc: 'UTC_TIMESTAMP()',
    utcBeforeMs: (ms) => `(UTC_TIMESTAMP() - INTERVAL ${ms * 1000} MICROSECOND)`,
  },
};

/** The fragments of a database kind (a store's is `store.dialect.name`). */
export const sqlFor = (dialect: Dialect): TestSql => SQL[dialect];

/** Makes the next event ID `next`, directly in the database. */
export async function moveIdSequence(store: EventStore, next: bigint): Promise<void> {
  const last = next - 1n;
  // The number goes into the SQL text: drivers would bind a JS number as a double.
  switch (store.dialect.name) {
    case 'sqlite':
      await store.db.execute("DELETE FROM sqlite_sequence WHERE name = 'evt_queue'");
      await store.db.execute(
        `INSERT INTO sqlite_sequence (name, seq) VALUES ('evt_queue', ${last})`,
      );
      break;
    case 'postgresql':
      await store.db.query(`SELECT setval('evt_queue_id_seq', ${last})`);
      break;
    case 'mysql':
      await store.db.execute(`ALTER TABLE evt_queue AUTO_INCREMENT = ${next}`);
      break;
  }
}

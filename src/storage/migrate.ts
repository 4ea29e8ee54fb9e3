import fs from 'fs';
import path from 'path';
import type { Logger } from '../common/log';
import type { SqlDialect } from './dialects';
import type { SqlClient, SqlRunner } from './sql';

/** The migration sets: the active store (events, consumers) and the warehouse (history). */
export type SchemaKind = 'active' | 'dwh';

export const SQL_DIR = path.resolve(__dirname, '..', '..', 'sql');

/** Records applied migrations, one table per database, names prefixed by their set. */
const MIGRATIONS_TABLE = 'evtstream_migrations';

/** Thrown inside a migration's transaction when another process applied it meanwhile. */
class AlreadyApplied extends Error {}

export class MigrationError extends Error {
  constructor(
    readonly migration: string,
    override readonly cause: unknown,
    partial: boolean,
  ) {
    super(
      `Migration ${migration} failed: ${(cause as Error)?.message ?? String(cause)}. ` +
        (partial
          ? 'MySQL commits DDL statement by statement, so statements before the failing one stay applied; ' +
            'the migration is not recorded and is written to be run again once the cause is fixed.'
          : 'It was rolled back as a whole and is not recorded; fix the cause and run again.'),
    );
    this.name = 'MigrationError';
  }
}

export interface MigrateOptions {
  kind: SchemaKind;
  /** Folder of the set's per-dialect folders (default: the package's sql/<kind>). */
  dir?: string;
  log?: Logger;
}

function migrationFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) throw new Error(`No migrations folder: ${dir}`);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
}

async function ensureTable(db: SqlClient, dialect: SqlDialect): Promise<void> {
  // Under the migration lock: PostgreSQL's IF NOT EXISTS is not atomic, two connections creating
  // the table at once can fail on the catalog ('type "..." already exists').
  // A script, as migrations run: one transaction (where DDL is transactional) holding the lock,
  // which MySQL's named lock needs released from its pooled session afterwards.
  await db.script(
    `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (name VARCHAR(191) NOT NULL PRIMARY KEY, applied_at VARCHAR(32) NOT NULL);`,
    { before: (tx) => dialect.lockForMigration(tx) },
  );
}

async function isApplied(tx: SqlRunner, name: string): Promise<boolean> {
  const rows = await tx.query(`SELECT name FROM ${MIGRATIONS_TABLE} WHERE name = ?`, [name]);
  return rows.length > 0;
}

/**
 * Applies the pending migrations of a set, in name order, each in its own transaction together
 * with its record, under a cross-process lock; a migration another process applied meanwhile is
 * skipped. Resolves with the names applied now (empty when the schema was up to date).
 */
export async function migrate(
  db: SqlClient,
  dialect: SqlDialect,
  options: MigrateOptions,
): Promise<string[]> {
  const dir = path.join(options.dir ?? path.join(SQL_DIR, options.kind), dialect.name);
  const pending = await pendingMigrations(db, dialect, options);
  const applied: string[] = [];
  // In name order, each in its own transaction with its record, under the cross-process lock.
  // (A loop of our own: umzug did no more here, and loading it cost a fresh service ~16 MiB.)
  for (const name of pending) {
    const file = name.slice(options.kind.length + 1);
    const sql = fs.readFileSync(path.join(dir, file), 'utf8');
    try {
      await db.script(sql, {
        before: async (tx) => {
          await dialect.lockForMigration(tx);
          if (await isApplied(tx, name)) throw new AlreadyApplied(name);
        },
        after: async (tx) => {
          await tx.execute(`INSERT INTO ${MIGRATIONS_TABLE} (name, applied_at) VALUES (?, ?)`, [
            name,
            new Date().toISOString(),
          ]);
        },
      });
      applied.push(name);
      options.log?.info(`Applied migration ${name}`);
    } catch (err) {
      if (err instanceof AlreadyApplied) continue;
      throw new MigrationError(name, err, dialect.name === 'mysql');
    }
  }
  return applied;
}

/** Migration files per folder, read once: they do not change while a process runs. */
const filesOf = new Map<string, string[]>();

/**
 * The names of the set's migrations the database has not recorded, read with one query and
 * nothing written (for readiness probes: see ops/health). Fails when the database does not
 * answer or has no record table yet.
 */
export async function unappliedMigrations(
  db: SqlClient,
  dialect: SqlDialect,
  kind: SchemaKind,
): Promise<string[]> {
  const dir = path.join(SQL_DIR, kind, dialect.name);
  let files = filesOf.get(dir);
  if (!files) {
    files = migrationFiles(dir);
    filesOf.set(dir, files);
  }
  const rows = await db.query<{ name: string }>(
    `SELECT name FROM ${MIGRATIONS_TABLE} WHERE name LIKE ?`,
    [`${kind}/%`],
  );
  const done = new Set(rows.map((r) => r.name));
  return files.map((f) => `${kind}/${f}`).filter((n) => !done.has(n));
}

/** The names of the set's migrations not applied yet. */
export async function pendingMigrations(
  db: SqlClient,
  dialect: SqlDialect,
  options: MigrateOptions,
): Promise<string[]> {
  const dir = path.join(options.dir ?? path.join(SQL_DIR, options.kind), dialect.name);
  await ensureTable(db, dialect);
  const rows = await db.query<{ name: string }>(
    `SELECT name FROM ${MIGRATIONS_TABLE} WHERE name LIKE ?`,
    [`${options.kind}/%`],
  );
  const done = new Set(rows.map((r) => r.name));
  return migrationFiles(dir)
    .map((f) => `${options.kind}/${f}`)
    .filter((n) => !done.has(n));
}

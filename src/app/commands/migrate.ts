import { parseArgs, type ParseArgsConfig } from 'util';
import { describeConnection } from '../../storage/config';
import { migrate, type SchemaKind } from '../../storage/migrate';
import { EventStore } from '../../storage/store';
import { cliLogger, COMMON_OPTIONS, DB_HELP, dbConfig, type CliIO } from './common';

export const MIGRATE_HELP = `Usage: evtstream migrate [options]

Applies pending migrations of the active store (evt_queue, evt_consumers), or with --dwh of
the warehouse (evt_history), and prints their names. Running it again applies nothing.
Each migration runs in one transaction with its record (on MySQL/MariaDB, DDL commits
statement by statement; our MySQL migrations are written to be re-run after a failure).

Options:
${DB_HELP}
  --dwh              migrate the warehouse schema instead of the active one
`;

const MIGRATE_OPTIONS = {
  ...COMMON_OPTIONS,
  dwh: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export async function migrateCommand(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: MIGRATE_OPTIONS,
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    io.out(MIGRATE_HELP);
    return 0;
  }
  const log = cliLogger(values, io.env);
  const db = dbConfig(values.db, io.env);
  const kind: SchemaKind = values.dwh ? 'dwh' : 'active';
  const store = await EventStore.open(db, { log });
  try {
    const applied = await migrate(store.db, store.dialect, { kind, log });
    if (applied.length === 0) io.out(`${describeConnection(db)}: ${kind} schema is up to date`);
    for (const name of applied) io.out(`applied ${name}`);
  } finally {
    await store.close();
  }
  return 0;
}

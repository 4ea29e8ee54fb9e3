import type { Dialect } from '../sql';
import type { SqlDialect } from './dialect';
import { mysqlDialect } from './mysql';
import { postgresqlDialect } from './postgresql';
import { sqliteDialect } from './sqlite';

export { advanceHeld } from './dialect';

export type {
  Listener,
  NewEvent,
  PointerAdvance,
  PointerCondition,
  SqlDialect,
  WriterProbe,
} from './dialect';

/** A fresh dialect object for a database kind (some keep per-connection server settings). */
export function createDialect(name: Dialect): SqlDialect {
  switch (name) {
    case 'sqlite':
      return sqliteDialect;
    case 'postgresql':
      return postgresqlDialect;
    case 'mysql':
      return mysqlDialect();
  }
}

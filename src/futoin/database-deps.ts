/**
 * Imported (for its effect) before anything of futoin-database: its query drivers (1.9.12:
 * MySQLDriver, PostgreSQLDriver, SQLiteDriver) load moment, which cannot load once
 * Object.prototype is frozen (see common/frozen-prototype). Loading it here first lets our
 * modules, and futoin-database through them, load before or after a NodeExecutor exists.
 */
import { loadDespiteFrozenPrototype } from '../common/frozen-prototype';

loadDespiteFrozenPrototype('moment', require.resolve('futoin-database/SQLiteDriver'));

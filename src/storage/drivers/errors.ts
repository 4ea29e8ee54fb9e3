import type { ErrorKind } from '../sql';

/*
 * What each driver's errors mean (see ErrorKind). Kept apart from the adapters so that the
 * dialects can classify errors without loading a driver the process does not use.
 */

/** Connection-level messages of node-postgres, by what they mean for the statement. */
const PG_NOT_CONNECTED =
  /ECONNREFUSED|timeout exceeded when trying to connect|Connection terminated due to connection timeout|connect ETIMEDOUT/i;
const PG_LOST = /Connection terminated|ECONNRESET|EPIPE|Client has encountered a connection error/i;

/**
 * SQLSTATE: 23505 unique violation; 40001 serialization failure and 40P01 deadlock (rolled back,
 * safe to run again); 57P03 and 08001/08004 (no connection made: nothing ran); 57P01/57P02
 * (server shutting down) and other 08xxx (the connection broke mid-statement: unknown outcome).
 */
export function pgErrorKind(err: unknown): ErrorKind {
  const code = (err as { code?: unknown }).code;
  const msg = (err as Error).message ?? '';
  if (code === '23505') return 'duplicate';
  if (
    code === '40001' ||
    code === '40P01' ||
    code === '57P03' ||
    code === '08001' ||
    code === '08004'
  ) {
    return 'transient';
  }
  if (code === 'ECONNREFUSED' || PG_NOT_CONNECTED.test(msg)) return 'transient';
  if (typeof code === 'string' && (code.startsWith('08') || code === '57P01' || code === '57P02'))
    return 'lost';
  if (code === 'ECONNRESET' || code === 'EPIPE' || PG_LOST.test(msg)) return 'lost';
  return 'other';
}

/**
 * ER_DUP_ENTRY (1062) is a duplicate; deadlock (1213) and lock wait timeout (1205) rolled back,
 * as did a refused connection: safe to run again. A connection lost mid-statement (fatal
 * errors, 2006/2013, server shutdown 1053/1927) leaves the outcome unknown.
 */
export function mysqlErrorKind(err: unknown): ErrorKind {
  const e = err as { errno?: number; code?: string; fatal?: boolean };
  if (e.errno === 1062) return 'duplicate';
  if (e.errno === 1213 || e.errno === 1205) return 'transient';
  if (e.code === 'ECONNREFUSED' || e.code === 'ETIMEDOUT' || e.errno === 1040) return 'transient';
  if (
    e.fatal ||
    e.code === 'PROTOCOL_CONNECTION_LOST' ||
    e.code === 'ECONNRESET' ||
    e.code === 'EPIPE'
  )
    return 'lost';
  if (e.errno === 2006 || e.errno === 2013 || e.errno === 1927 || e.errno === 1053) return 'lost';
  return 'other';
}

/** SQLITE_CONSTRAINT (unique) is a duplicate; BUSY/LOCKED retry. */
export function sqliteErrorKind(err: unknown): ErrorKind {
  const code = (err as { code?: unknown }).code;
  const msg = (err as Error).message ?? '';
  if (code === 'SQLITE_CONSTRAINT' && /UNIQUE/.test(msg)) return 'duplicate';
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return 'transient';
  return 'other';
}

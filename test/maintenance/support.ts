/**
 * Helpers for the archiver suites: a TCP proxy that can take a database server away and give it
 * back (without touching the shared server), and an SqlClient wrapper that records transactions
 * and can fail one in the middle.
 */
import net from 'net';
import type {
  Dialect,
  Row,
  ScriptHooks,
  SqlClient,
  SqlRunner,
  SqlValue,
} from '../../src/storage/sql';
import { sqlFor } from '../support/sql';

/**
 * Forwards 127.0.0.1:port to a database server. close() refuses new connections and cuts the
 * open ones, as a server that went away; open() again listens on the same port.
 */
export class TcpProxy {
  port = 0;
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      const end = (): void => {
        client.destroy();
        upstream.destroy();
      };
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once('close', () => {
          this.sockets.delete(s);
          end();
        });
        s.on('error', end);
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Every fourth parameter of our history INSERTs is an event ID. */
const idsOf = (params: readonly SqlValue[] = []): string[] =>
  params.filter((_p, i) => i % 4 === 0).map(String);

/**
 * An SqlClient around another that records the INSERT statements of each committed transaction
 * and can make transactions fail right after their first INSERT (when they have a second one).
 * After such a failure (the rollback done) it counts how many rows of that first INSERT are in
 * evt_history anyway: none may be.
 */
export class RecordingClient implements SqlClient {
  readonly dialect: Dialect;
  /** INSERT statements per committed transaction. */
  readonly committed: number[] = [];
  /** How many more transactions to fail after their first INSERT. */
  failAfterFirstInsert = 0;
  failures = 0;
  leaked = 0;
  /** Called inside each transaction after its statements, before COMMIT. */
  beforeCommit: (() => void) | null = null;

  constructor(readonly inner: SqlClient) {
    this.dialect = inner.dialect;
  }

  query<R extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]> {
    return this.inner.query<R>(sql, params);
  }

  execute(
    sql: string,
    params?: readonly SqlValue[],
  ): Promise<{ affected: number; insertId?: string }> {
    return this.inner.execute(sql, params);
  }

  script(sql: string, hooks?: ScriptHooks): Promise<void> {
    return this.inner.script(sql, hooks);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  async transaction<T>(work: (tx: SqlRunner) => Promise<T>): Promise<T> {
    let inserts = 0;
    let firstIds: string[] = [];
    let injected = false;
    try {
      const result = await this.inner.transaction(async (tx) => {
        const value = await work({
          query: (sql, params) => tx.query(sql, params),
          execute: async (sql, params) => {
            if (/^\s*INSERT/i.test(sql)) {
              if (inserts === 1 && this.failAfterFirstInsert > 0) {
                this.failAfterFirstInsert--;
                injected = true;
                throw new Error('Injected failure after the first INSERT');
              }
              if (inserts === 0) firstIds = idsOf(params);
              inserts++;
            }
            return tx.execute(sql, params);
          },
        });
        this.beforeCommit?.();
        return value;
      });
      this.committed.push(inserts);
      return result;
    } catch (err) {
      if (injected) {
        this.failures++;
        const d = sqlFor(this.dialect);
        const rows = await this.inner.query<{ n: unknown }>(
          `SELECT COUNT(*) AS n FROM evt_history WHERE id IN (${firstIds.map(() => d.idParam).join(', ')})`,
          firstIds,
        );
        this.leaked += Number(rows[0]?.n);
      }
      throw err;
    }
  }
}

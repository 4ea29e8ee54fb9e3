/**
 * /livez and /readyz of a running service on every database: ready when the database answers
 * within the bound and has this version's migrations; 503 with the reason when it does not.
 * (Draining at shutdown: test/cli/shutdown.e2e.spec.ts, with a real `evtstream serve`.)
 */
import { expect } from 'chai';
import mysql from 'mysql2/promise';
import { Client } from 'pg';
import type { StreamService } from '../../src/app/service';
import type { EventStore } from '../../src/storage/store';
import path from 'path';
import { ROOT, run } from '../support/cli';
import { describeDatabases } from '../support/db';
import { startService } from '../support/service';
import { waitForValue } from '../support/wait';

const READY_TIMEOUT_MS = 500;

interface Probe {
  status: number;
  body: unknown;
}

async function probe(service: StreamService, path: string, method = 'GET'): Promise<Probe> {
  const rsp = await fetch(`${service.url}${path.slice(1)}`, {
    method,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await rsp.text();
  return { status: rsp.status, body: text ? (JSON.parse(text) as unknown) : null };
}

const READY: Probe = { status: 200, body: { status: 'ready' } };

/** The container image's HEALTHCHECK against `service`: its exit code. */
async function containerHealthCheck(service: StreamService): Promise<number | null> {
  const r = await run(process.execPath, [path.join(ROOT, 'container', 'healthcheck.js')], {
    env: { EVTSTREAM_PORT: new URL(service.url).port },
  });
  return r.code;
}

describeDatabases('health probes', (fx) => {
  let service: StreamService;
  let store: EventStore;
  before(async () => {
    service = await startService(fx, { readyTimeoutMs: READY_TIMEOUT_MS });
    store = await fx.openStore();
  });
  after(async () => {
    await service?.close();
  });

  it('/livez and /readyz answer 200 with a small JSON body; HEAD too; other methods 405, paths below 404', async () => {
    expect(await probe(service, '/livez')).to.deep.equal({ status: 200, body: { status: 'live' } });
    expect(await probe(service, '/readyz')).to.deep.equal(READY);
    expect(await probe(service, '/readyz', 'HEAD')).to.deep.equal({ status: 200, body: null });
    const rsp = await fetch(`${service.url}readyz`);
    expect(rsp.headers.get('cache-control')).to.equal('no-store');
    expect(rsp.headers.get('content-type')).to.equal('application/json');
    expect((await probe(service, '/readyz', 'POST')).status).to.equal(405);
    expect((await probe(service, '/livez', 'DELETE')).status).to.equal(405);
    expect((await fetch(`${service.url}readyz/x`)).status).to.equal(404);
  });

  // Breaking change it catches: a node whose coordination with the other nodes is down (fenced:
  // it may not push) counted as ready, so the load balancer keeps sending receivers to it.
  // Losing the coordination connection for real is tested with HAProxy in test/cluster/; here
  // the node's coordinator says it is down.
  it('/readyz and /ready: 503 while the node has no coordination with the database', async () => {
    expect(await probe(service, '/ready')).to.deep.equal(READY);
    const coordinator = service.store.coordinator();
    const stats = coordinator.stats.bind(coordinator);
    coordinator.stats = () => ({ ...stats(), up: false });
    const down: Probe = {
      status: 503,
      body: {
        status: 'not ready',
        reason: 'no coordination with the database (not connected, or no recent heartbeat)',
      },
    };
    try {
      expect(await probe(service, '/readyz')).to.deep.equal(down);
      expect(await probe(service, '/ready')).to.deep.equal(down);
      expect((await probe(service, '/livez')).status).to.equal(200);
    } finally {
      coordinator.stats = stats;
    }
    expect(await probe(service, '/readyz')).to.deep.equal(READY);
    expect((await fetch(`${service.url}ready/x`)).status).to.equal(404);
  });

  // Breaking change it catches: a probe that only pings the database.
  it('/readyz: 503 while a migration of this version is not applied, 200 once it is', async () => {
    const rows = await store.db.query<{ name: string; applied_at: string }>(
      "SELECT name, applied_at FROM evtstream_migrations WHERE name LIKE 'active/%' ORDER BY name",
    );
    const last = rows.at(-1)!;
    await store.db.execute('DELETE FROM evtstream_migrations WHERE name = ?', [last.name]);
    try {
      expect(await probe(service, '/readyz')).to.deep.equal({
        status: 503,
        body: { status: 'not ready', reason: `migrations not applied: ${last.name}` },
      });
      expect((await probe(service, '/livez')).status, 'still live').to.equal(200);
    } finally {
      await store.db.execute('INSERT INTO evtstream_migrations (name, applied_at) VALUES (?, ?)', [
        last.name,
        last.applied_at,
      ]);
    }
    expect(await probe(service, '/readyz')).to.deep.equal(READY);
  });

  it('/readyz: 503 while the database check fails, 200 once it works again', async () => {
    await store.db.execute('ALTER TABLE evtstream_migrations RENAME TO evtstream_migrations_away');
    try {
      expect(await probe(service, '/readyz')).to.deep.equal({
        status: 503,
        body: { status: 'not ready', reason: 'the database check failed' },
      });
    } finally {
      await store.db.execute(
        'ALTER TABLE evtstream_migrations_away RENAME TO evtstream_migrations',
      );
    }
    // PostgreSQL may answer once more from a plan made before the rename: wait for the next.
    await waitForValue(
      'ready again',
      () => probe(service, '/readyz'),
      (p) => p.status === 200,
    );
  });
});

describeDatabases(
  'health probes: a database that does not answer',
  (fx) => {
    let service: StreamService;
    before(async () => {
      service = await startService(fx, { readyTimeoutMs: READY_TIMEOUT_MS });
    });
    after(async () => {
      await service?.close();
    });

    /** Holds a lock that blocks reading the migrations table, until the returned function. */
    async function blockReads(): Promise<() => Promise<void>> {
      if (fx.dialect === 'postgresql') {
        const c = new Client({ connectionString: fx.url });
        await c.connect();
        await c.query('BEGIN');
        await c.query('LOCK TABLE evtstream_migrations IN ACCESS EXCLUSIVE MODE');
        return async () => {
          await c.query('ROLLBACK');
          await c.end();
        };
      }
      const c = await mysql.createConnection(fx.url);
      await c.query('LOCK TABLES evtstream_migrations WRITE');
      return async () => {
        await c.query('UNLOCK TABLES');
        await c.end();
      };
    }

    // Breaking change it catches: a check without a bound (the probe hangs with the database).
    it('/readyz: 503 when the database does not answer within the bound, 200 once it does', async () => {
      expect(await probe(service, '/readyz')).to.deep.equal(READY);
      const unblock = await blockReads();
      try {
        for (let i = 0; i < 2; i++) {
          expect(await probe(service, '/readyz'), `probe ${i + 1}`).to.deep.equal({
            status: 503,
            body: {
              status: 'not ready',
              reason: `the database did not answer within ${READY_TIMEOUT_MS} ms`,
            },
          });
        }
        expect((await probe(service, '/livez')).status).to.equal(200);
        expect(await containerHealthCheck(service), "the image's health check").to.equal(1);
      } finally {
        await unblock();
      }
      await waitForValue(
        'ready again',
        () => probe(service, '/readyz'),
        (p) => p.status === 200,
      );
    });
  },
  ['postgresql', 'mysql'],
);

/**
 * Database TLS against the test servers (.ci/databases.sh starts them with a throw-away CA; see
 * support/tls.ts): each sslmode / ssl-mode does what libpq and the mysql client say, a wrong CA
 * or host fails with an error that names TLS, a client certificate signs in, and every
 * connection a store or futoin-database opens uses TLS (the user `evt_tls` may not connect
 * without it).
 */
import { expect } from 'chai';
import type { L2Face } from 'futoin-database';
import { AdvancedCCM } from 'futoin-invoker';
import net from 'net';
import path from 'path';
import { DBGenFace } from '../../src/generation/DBGenFace';
import { parseDbUrl } from '../../src/storage/config';
import { configFromFutoinDb } from '../../src/storage/ccm';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { migrate } from '../../src/storage/migrate';
import type { Dialect } from '../../src/storage/sql';
import { EventStore } from '../../src/storage/store';
import { describeDatabases, testLog, type DbFixture } from '../support/db';
import { steps } from '../support/service';
import { requireServerTls, tlsUrl, type TlsUrlOptions } from '../support/tls';

/** A CA that signed nothing of the servers': the test HTTPS certificate (self-signed). */
const WRONG_CA = path.join(__dirname, '..', 'fixtures', 'tls', 'cert.pem');

/** Whether this session of `store` is encrypted, as the server sees it. */
async function encrypted(store: EventStore): Promise<boolean> {
  if (store.db.dialect === 'postgresql') {
    const rows = await store.db.query<{ ssl: boolean }>(
      'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
    );
    return rows[0]?.ssl === true;
  }
  const rows = await store.db.query<{ Value: string }>("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
  return (rows[0]?.Value ?? '') !== '';
}

/** What opening a store (and migrating it) on `url` ends with: the store, or the error. */
async function open(url: string): Promise<EventStore | Error> {
  let store: EventStore | undefined;
  try {
    store = await EventStore.open(parseDbUrl(url), { log: testLog });
    await migrate(store.db, store.dialect, { kind: 'active' });
    return store;
  } catch (err) {
    await store?.close();
    return err as Error;
  }
}

function expectStore(result: EventStore | Error, what: string): EventStore {
  if (result instanceof Error) expect.fail(`${what}: ${result.message}`);
  return result;
}

function expectError(result: EventStore | Error, what: string): Error {
  if (!(result instanceof Error)) {
    void result.close();
    expect.fail(`${what}: connected`);
  }
  return result;
}

describeDatabases(
  'database TLS',
  (fx: DbFixture) => {
    const tls = requireServerTls();
    const stores: EventStore[] = [];
    after(() => Promise.all(stores.splice(0).map((s) => s.close())));

    const url = (options: TlsUrlOptions): string => tlsUrl(fx.url, fx.dialect, options);
    const keep = (s: EventStore): EventStore => {
      stores.push(s);
      return s;
    };
    const dialect: Dialect = fx.dialect;
    const mode = (pg: string): string =>
      dialect === 'mysql'
        ? ({ require: 'REQUIRED', 'verify-ca': 'VERIFY_CA', 'verify-full': 'VERIFY_IDENTITY' }[
            pg
          ] ?? pg)
        : pg;

    it('verify-full by the name in the certificate: every connection encrypted, events stored', async () => {
      const u = url({ params: { sslmode: 'verify-full', sslrootcert: tls.files.ca } });
      const store = keep(expectStore(await open(u), u));
      expect(await encrypted(store)).to.equal(true);
      const [id] = await store.addEvents([{ type: 'TLS', data: '{"n":1}' }]);
      const read = await store.readEvents({
        after: '0',
        upTo: await store.horizon(),
        limit: 10,
        want: null,
      });
      expect(read.map((e) => e.id)).to.deep.equal([id]);
      // Connections of their own (LISTEN, the coordination connection that holds the locks)
      // are made apart from the pool: encrypted too.
      const session = await store.db.openSession!();
      try {
        if (dialect === 'postgresql') {
          const rows = await session.query<{ ssl: boolean }>(
            'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
          );
          expect(rows[0]?.ssl, 'the session connection is encrypted').to.equal(true);
        } else {
          const rows = await session.query<{ Value: string }>(
            "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
          );
          expect(rows[0]?.Value ?? '', 'the session connection is encrypted').to.not.equal('');
        }
      } finally {
        await session.close();
      }
    });

    it('verify-full by an address the certificate does not hold fails, naming TLS and the host', async () => {
      const u = url({
        host: '127.0.0.1',
        params: { sslmode: 'verify-full', sslrootcert: tls.files.ca },
      });
      const err = expectError(await open(u), u);
      if (dialect === 'postgresql') {
        expect(err.message).to.match(/^TLS connection to postgres:\/\/evt_tls@127\.0\.0\.1:\d+\//);
        expect(err.message).to.include('does not name the host of the URL');
      } else {
        // mysql2 would check an address as "localhost": refused before connecting.
        expect(err.message).to.include('ssl-mode=VERIFY_IDENTITY needs the server');
      }
    });

    it('verify-ca checks the CA only: the address connects', async () => {
      const u = url({
        host: '127.0.0.1',
        params: { sslmode: 'verify-ca', sslrootcert: tls.files.ca },
      });
      expect(await encrypted(keep(expectStore(await open(u), u)))).to.equal(true);
    });

    for (const m of ['verify-ca', 'verify-full', 'require']) {
      it(`a wrong CA fails with ${mode(m)}, with an error that names TLS and the CA`, async () => {
        const u = url({ params: { sslmode: m, sslrootcert: WRONG_CA } });
        const err = expectError(await open(u), u);
        expect(err.message).to.match(/^TLS connection to (postgres|mysql):\/\/evt_tls@localhost:/);
        expect(err.message).to.include(
          `not signed by the CA of ${dialect === 'mysql' ? 'ssl-ca' : 'sslrootcert'}`,
        );
        expect(err.message).to.not.include('evt_tls:evt_tls');
      });
    }

    it('require without a CA encrypts without checking the certificate', async () => {
      const u = url({ host: '127.0.0.1', params: { sslmode: 'require' } });
      expect(await encrypted(keep(expectStore(await open(u), u)))).to.equal(true);
    });

    it('disable connects in plain text, which a TLS-only user is refused', async () => {
      const plain = keep(
        expectStore(
          await open(url({ user: 'admin', host: '127.0.0.1', params: { sslmode: 'disable' } })),
          'admin',
        ),
      );
      expect(await encrypted(plain)).to.equal(false);
      const u = url({ host: '127.0.0.1', params: { sslmode: 'disable' } });
      const err = expectError(await open(u), u);
      expect(err.message).to.match(
        dialect === 'postgresql' ? /no encryption/ : /Access denied for user 'evt_tls'/,
      );
    });

    it('a client certificate signs in the user it names; without it the user is refused', async () => {
      const params = { sslmode: 'verify-full', sslrootcert: tls.files.ca };
      const u = url({
        user: 'evt_cert',
        params: { ...params, sslcert: tls.files.clientCert, sslkey: tls.files.clientKey },
      });
      const store = keep(expectStore(await open(u), u));
      expect(await encrypted(store)).to.equal(true);
      const who = await store.db.query<{ u: string }>(
        dialect === 'postgresql' ? 'SELECT current_user AS u' : 'SELECT CURRENT_USER() AS u',
      );
      expect(who[0]?.u).to.match(/^evt_cert\b/);
      const without = url({ user: 'evt_cert', params });
      expectError(await open(without), without);
    });

    it('futoin-database connections (#db.evt) use the TLS of the URL, and read back the same', async () => {
      // mysqljs, futoin-database's MySQL driver, takes "localhost" as a socket path.
      const u = url({
        host: '127.0.0.1',
        params: { sslmode: 'verify-ca', sslrootcert: tls.files.ca },
      });
      const config = parseDbUrl(u);
      const ccm = new AdvancedCCM();
      try {
        await steps((as) => {
          registerFutoinDb(as, ccm, 'evt', config, testLog);
          DBGenFace.register(as, ccm, 'xgen', 'secure+ws://127.0.0.1:9/', 'u:p');
        });
        const db = ccm.iface<L2Face>('#db.evt');
        const face = ccm.iface<DBGenFace>('xgen');
        await steps((as) => {
          const xfer = db.newXfer();
          face.addXferEvent(xfer, 'XFER_TLS', { ok: true });
          xfer.execute(as);
        });
        expect(configFromFutoinDb(ccm, 'evt').tls).to.deep.equal(config.tls);
        const store = keep(expectStore(await open(u), u));
        const read = await store.readEvents({
          after: '0',
          upTo: await store.horizon(),
          limit: 10,
          want: null,
        });
        expect(read.map((e) => e.type)).to.include('XFER_TLS');
      } finally {
        ccm.close();
      }
    });

    if (dialect === 'postgresql') {
      it('a server that does not speak TLS: the error says so', async () => {
        // Answers PostgreSQL's SSLRequest with "N", as a server without TLS does.
        const server = net.createServer((socket) => {
          socket.on('error', () => undefined);
          socket.once('data', () => socket.write('N'));
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as net.AddressInfo;
        try {
          const u = `postgres://evt@127.0.0.1:${port}/db?sslmode=require`;
          const err = expectError(await open(u), u);
          expect(err.message).to.equal(
            `TLS connection to postgres://evt@127.0.0.1:${port}/db?sslmode=require failed: ` +
              'The server does not support SSL connections (the server does not accept TLS connections)',
          );
        } finally {
          await new Promise((resolve) => server.close(resolve));
        }
      });
    }
  },
  ['postgresql', 'mysql'],
);

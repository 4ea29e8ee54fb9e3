/**
 * Database URLs: what parseDbUrl reads of each kind (PostgreSQL through pg-connection-string),
 * the TLS settings each driver gets from them, the errors for what cannot work, and how a
 * connection is described in logs (never with its password).
 */
import { expect } from 'chai';
import fs from 'fs';
import { AdvancedCCM } from 'futoin-invoker';
import path from 'path';
import { consoleLogger } from '../../src/common/log';
import { configFromFutoinDb } from '../../src/storage/ccm';
import {
  describeConnection,
  parseDbUrl,
  type ConnectionConfig,
  type DbTls,
} from '../../src/storage/config';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { mysqlTlsOptions, nodeTlsOptions, tlsFailure } from '../../src/storage/tls';
import { steps } from '../support/service';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'tls');
const CERT = path.join(FIXTURES, 'cert.pem');
const KEY = path.join(FIXTURES, 'key.pem');
const CERT_PEM = fs.readFileSync(CERT, 'utf8');
const KEY_PEM = fs.readFileSync(KEY, 'utf8');

function parseError(url: string): string {
  try {
    parseDbUrl(url);
  } catch (err) {
    return (err as Error).message;
  }
  return expect.fail(`${url} parsed`);
}

describe('database URLs', function () {
  describe('PostgreSQL', function () {
    it('reads host, port, user, an encoded password, database and pool size', function () {
      expect(parseDbUrl('postgres://ev%20t:p%40ss%3Aw@db.example:6543/my_db?max=7')).to.deep.equal({
        dialect: 'postgresql',
        host: 'db.example',
        port: 6543,
        user: 'ev t',
        password: 'p@ss:w',
        database: 'my_db',
        maxConnections: 7,
      });
      expect(parseDbUrl('postgresql://localhost')).to.deep.equal({
        dialect: 'postgresql',
        host: 'localhost',
      });
    });

    it('without sslmode, or with sslmode=disable, connects in plain text', function () {
      expect(parseDbUrl('postgres://u@h/db').tls).to.equal(undefined);
      // The files of a disabled mode are not read.
      expect(parseDbUrl('postgres://u@h/db?sslmode=disable&sslrootcert=/nonexistent').tls).to.equal(
        undefined,
      );
    });

    it('reads sslmode with the certificate files', function () {
      const tls = (q: string): DbTls | undefined => parseDbUrl(`postgres://u@h/db?${q}`).tls;
      expect(tls('sslmode=require')).to.deep.equal({ mode: 'require' });
      expect(tls(`sslmode=verify-ca&sslrootcert=${CERT}`)).to.deep.equal({
        mode: 'verify-ca',
        ca: CERT_PEM,
      });
      expect(
        tls(`sslmode=verify-full&sslrootcert=${CERT}&sslcert=${CERT}&sslkey=${KEY}`),
      ).to.deep.equal({
        mode: 'verify-full',
        ca: CERT_PEM,
        cert: CERT_PEM,
        key: KEY_PEM,
      });
      // libpq's "system": the CAs Node.js trusts.
      expect(tls('sslmode=verify-full&sslrootcert=system')).to.deep.equal({ mode: 'verify-full' });
    });

    it('refuses what cannot work, saying what would', function () {
      expect(parseError('postgres://u@h/db?sslmode=prefer')).to.equal(
        'sslmode=prefer is not supported: use disable, require, verify-ca, verify-full ' +
          '(the driver cannot fall back between TLS and a plain connection)',
      );
      expect(parseError('postgres://u@h/db?sslmode=verify-ca')).to.match(
        /^sslrootcert must name the CA that signed the server's certificate for sslmode=verify-ca/,
      );
      expect(parseError(`postgres://u@h/db?sslrootcert=${CERT}`)).to.equal(
        'sslrootcert without sslmode: say sslmode=verify-full (or verify-ca, require)',
      );
      expect(parseError(`postgres://u@h/db?sslmode=require&sslcert=${CERT}`)).to.match(
        /^A client certificate and its key go together/,
      );
      expect(parseError('postgres://u@h/db?sslmode=require&sslrootcert=system')).to.equal(
        'sslrootcert=system goes with sslmode=verify-full only',
      );
      expect(
        parseError('postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem'),
      ).to.match(/^Cannot read the CA file of sslrootcert: ENOENT.*\/nonexistent\/ca\.pem/);
      // A misspelt parameter would silently leave the connection in plain text.
      expect(parseError('postgres://u:secret@h/db?sslmod=verify-full')).to.equal(
        'Unknown parameter "sslmod" in database URL postgres://u:***@h/db?sslmod=verify-full: ' +
          'a PostgreSQL URL takes max, sslmode, sslrootcert, sslcert, sslkey, host, pool_mode',
      );
      expect(parseError('postgres://u@h/db?max=0')).to.equal(
        'Invalid pool size in database URL: 0',
      );
    });
  });

  describe('MySQL', function () {
    it('reads host, port, user, password, database and pool size', function () {
      expect(parseDbUrl('mariadb://evt:p%40ss@127.0.0.1:3307/evt?max=3')).to.deep.equal({
        dialect: 'mysql',
        host: '127.0.0.1',
        port: 3307,
        user: 'evt',
        password: 'p@ss',
        database: 'evt',
        maxConnections: 3,
      });
    });

    it("reads ssl-mode (any case, also as ssl_mode) with the mysql client's file options", function () {
      const tls = (q: string): DbTls | undefined => parseDbUrl(`mysql://u@h/db?${q}`).tls;
      expect(tls('ssl-mode=DISABLED')).to.equal(undefined);
      expect(tls('ssl-mode=required')).to.deep.equal({ mode: 'require' });
      expect(tls(`ssl_mode=VERIFY_CA&ssl_ca=${CERT}`)).to.deep.equal({
        mode: 'verify-ca',
        ca: CERT_PEM,
      });
      expect(
        tls(`ssl-mode=VERIFY_IDENTITY&ssl-ca=${CERT}&ssl-cert=${CERT}&ssl-key=${KEY}`),
      ).to.deep.equal({
        mode: 'verify-full',
        ca: CERT_PEM,
        cert: CERT_PEM,
        key: KEY_PEM,
      });
    });

    it('refuses what cannot work, saying what would', function () {
      expect(parseError('mysql://u@h/db?ssl-mode=PREFERRED')).to.equal(
        'ssl-mode=PREFERRED is not supported: use DISABLED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY ' +
          '(the driver cannot fall back to a plain connection)',
      );
      expect(parseError('mysql://u@h/db?ssl-mode=VERIFY_CA')).to.match(
        /^ssl-ca must name the CA that signed the server's certificate for ssl-mode=VERIFY_CA/,
      );
      expect(parseError(`mysql://u@h/db?ssl-ca=${CERT}`)).to.equal(
        'ssl-ca without ssl-mode: say ssl-mode=VERIFY_IDENTITY (or VERIFY_CA, REQUIRED)',
      );
      expect(parseError('mysql://u@h/db?ssl-mode=REQUIRED&ssl-key=/nonexistent/k.pem')).to.match(
        /^Cannot read the client key file of ssl-key: ENOENT/,
      );
      expect(parseError('mysql://u@h/db?sslmode=require')).to.match(
        /^Unknown parameter "sslmode" .*: a MySQL URL takes max, ssl-mode, ssl-ca, ssl-cert, ssl-key$/,
      );
    });
  });

  it('SQLite takes its file and synchronous only', function () {
    expect(parseDbUrl('sqlite:x.sqlite?synchronous=normal')).to.deep.equal({
      dialect: 'sqlite',
      file: path.resolve('x.sqlite'),
      synchronous: 'NORMAL',
    });
    expect(parseError('sqlite:x.sqlite?max=2')).to.match(/^Unknown parameter "max"/);
  });

  it('describes a connection with its TLS mode and without its password', function () {
    const d = (url: string): string => describeConnection(parseDbUrl(url));
    expect(d('postgres://u:secret@h:5/db?sslmode=require')).to.equal(
      'postgres://u@h:5/db?sslmode=require',
    );
    expect(d(`mysql://u:secret@h/db?ssl-mode=verify_identity&ssl-ca=${CERT}`)).to.equal(
      'mysql://u@h/db?ssl-mode=VERIFY_IDENTITY',
    );
    expect(d('mysql://u:secret@h/db')).to.equal('mysql://u@h/db');
  });
});

describe('database TLS options per driver', function () {
  const modes: DbTls['mode'][] = ['require', 'verify-ca', 'verify-full'];

  it('checks the chain from verify-ca up (and in require once a CA is given), the host in verify-full only', function () {
    const rows = modes.flatMap((mode) =>
      [undefined, 'CA'].map((ca) => {
        const t: DbTls = ca ? { mode, ca } : { mode };
        const node = nodeTlsOptions(t);
        const my = mysqlTlsOptions(t);
        return {
          mode,
          ca: !!ca,
          chain: node.rejectUnauthorized,
          host: node.checkServerIdentity === undefined,
          myChain: my.rejectUnauthorized,
          myHost: my.verifyIdentity,
        };
      }),
    );
    const expected = (mode: string, ca: boolean, chain: boolean, host: boolean) => ({
      mode,
      ca,
      chain,
      host,
      myChain: chain,
      myHost: host,
    });
    expect(rows).to.deep.equal([
      expected('require', false, false, false),
      expected('require', true, true, false),
      expected('verify-ca', false, true, false),
      expected('verify-ca', true, true, false),
      expected('verify-full', false, true, true),
      expected('verify-full', true, true, true),
    ]);
  });

  it('passes the CA and the client certificate on', function () {
    const t: DbTls = { mode: 'verify-full', ca: 'A', cert: 'C', key: 'K' };
    expect(nodeTlsOptions(t)).to.include({ ca: 'A', cert: 'C', key: 'K' });
    expect(mysqlTlsOptions(t)).to.include({ ca: 'A', cert: 'C', key: 'K' });
  });

  it("says a driver's TLS failure as one, with the connection and what to check", function () {
    const pg = parseDbUrl('postgres://u:secret@h/db?sslmode=verify-full');
    const my = parseDbUrl('mysql://u:secret@h/db?ssl-mode=VERIFY_IDENTITY');
    const failure = (err: object, config: ConnectionConfig): string | undefined =>
      tlsFailure(Object.assign(new Error('x'), err), config)?.message;
    expect(
      failure(
        {
          code: 'SELF_SIGNED_CERT_IN_CHAIN',
          message: 'self-signed certificate in certificate chain',
        },
        pg,
      ),
    ).to.equal(
      'TLS connection to postgres://u@h/db?sslmode=verify-full failed: self-signed certificate in ' +
        "certificate chain (the server's certificate is not signed by the CA of sslrootcert)",
    );
    expect(
      failure(
        { code: 'HANDSHAKE_SSL_ERROR', message: 'unable to verify the first certificate' },
        my,
      ),
    ).to.include('is not signed by the CA of ssl-ca');
    expect(
      failure(
        {
          code: 'ERR_TLS_CERT_ALTNAME_INVALID',
          message: "Hostname/IP does not match certificate's altnames",
        },
        pg,
      ),
    ).to.include('does not name the host of the URL');
    expect(
      failure(
        { code: 'HANDSHAKE_NO_SSL_SUPPORT', message: 'Server does not support secure connection' },
        my,
      ),
    ).to.include('(the server does not accept TLS connections)');
    expect(
      failure({ code: 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', message: 'tlsv1 alert unknown ca' }, pg),
    ).to.include('refused the TLS handshake');
    // Not TLS, or no TLS asked for: left as it is.
    expect(failure({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, pg)).to.equal(
      undefined,
    );
    expect(
      failure(
        { code: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'self-signed' },
        parseDbUrl('postgres://u@h/db'),
      ),
    ).to.equal(undefined);
    const wrapped = tlsFailure(Object.assign(new Error('m'), { code: 'CERT_HAS_EXPIRED' }), pg);
    expect(wrapped).to.have.property('code', 'CERT_HAS_EXPIRED');
    expect(wrapped?.cause).to.be.an('error');
  });

  it('futoin-database services get the same TLS, and it reads back from them', async function () {
    const log = consoleLogger('silent');
    for (const url of [
      `postgres://u@127.0.0.1:9/db?sslmode=verify-ca&sslrootcert=${CERT}`,
      `postgres://u@127.0.0.1:9/db?sslmode=verify-full&sslrootcert=${CERT}&sslcert=${CERT}&sslkey=${KEY}`,
      'postgres://u@127.0.0.1:9/db?sslmode=require',
      `mysql://u@127.0.0.1:9/db?ssl-mode=VERIFY_CA&ssl-ca=${CERT}`,
      'mysql://u@127.0.0.1:9/db?ssl-mode=REQUIRED',
      'mysql://u@127.0.0.1:9/db',
    ]) {
      const config = parseDbUrl(url);
      const ccm = new AdvancedCCM();
      try {
        // Pools connect on first use: nothing connects here.
        await steps((as) => registerFutoinDb(as, ccm, 'evt', config, log));
        expect(configFromFutoinDb(ccm, 'evt').tls, url).to.deep.equal(config.tls);
      } finally {
        ccm.close();
      }
    }
  });
});

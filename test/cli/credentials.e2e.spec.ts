/**
 * `evtstream serve` and its credentials, fail-closed: users and admins that were given but
 * cannot be used stop it, the demo user exists only on loopback with nothing configured,
 * secrets never reach its output, and guessing secrets over the wire is limited per address.
 */
import { expect } from 'chai';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import {
  killChildren,
  requireFreshDist,
  runCli,
  startCliServer,
  type CliServer,
} from '../support/cli';
import { waitFor } from '../support/wait';

const REGISTER = 'futoin.evt.poll:1.1:registerConsumer';

/** A FutoIn call over HTTP from the local address `from` (127.0.0.x: all of them are loopback). */
function callFrom(
  from: string,
  server: CliServer,
  f: string,
  p: Record<string, unknown>,
  sec: string,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: server.port,
        localAddress: from,
        method: 'POST',
        path: '/',
        headers: { 'Content-Type': 'application/futoin+json' },
        timeout: 10_000,
      },
      (rsp) => {
        let body = '';
        rsp.setEncoding('utf8');
        rsp.on('data', (d: string) => (body += d));
        rsp.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ f, p, rid: 'C1', sec }));
  });
}

/** GET `urlPath` from the local address `from`, with HTTP Basic credentials. */
function getFrom(
  from: string,
  server: CliServer,
  urlPath: string,
  basic?: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: '127.0.0.1',
        port: server.port,
        localAddress: from,
        path: urlPath,
        headers: basic ? { Authorization: `Basic ${Buffer.from(basic).toString('base64')}` } : {},
        timeout: 10_000,
      },
      (rsp) => {
        let body = '';
        rsp.setEncoding('utf8');
        rsp.on('data', (d: string) => (body += d));
        rsp.on('end', () => resolve({ status: rsp.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}

describe('evtstream serve: credentials, fail-closed [sqlite]', function () {
  this.timeout(120_000);
  let tmp = '';
  before(() => {
    requireFreshDist();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-cred-'));
  });
  after(async () => {
    await killChildren();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const file = (name: string, text: string): string => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, text);
    return f;
  };
  const db = (): string[] => ['--db', `sqlite:${path.join(tmp, 'cred.sqlite')}`];

  // Breaking change it catches: an empty --users file falling back to the demo user.
  it('a users or admins file or variable that is missing, unreadable, empty or malformed stops it: exit 2, naming it', async () => {
    const good = file('good', 'alice:alice-secret\n');
    const cases: { args: string[]; env?: Record<string, string>; says: RegExp }[] = [
      {
        args: ['--users', path.join(tmp, 'missing')],
        says: /--users \S+missing: cannot read it \(ENOENT\)/,
      },
      { args: ['--users', tmp], says: /--users \S+: cannot read it \(EISDIR\)/ },
      { args: ['--users', file('empty', '')], says: /--users \S+empty: holds no users/ },
      { args: ['--users', '/dev/null'], says: /--users \/dev\/null: holds no users/ },
      { args: ['--users', file('comments', '# none yet\n\n')], says: /comments: holds no users/ },
      {
        args: ['--users', file('malformed', 'alice:ok\nTOPSECRET-no-colon\n')],
        says: /--users \S+malformed: line 2: expected name:secret/,
      },
      {
        args: ['--users', good, '--admins', file('admins-empty', '')],
        says: /--admins \S+admins-empty: holds no users/,
      },
      {
        args: ['--users', good, '--admins', path.join(tmp, 'nope')],
        says: /--admins \S+nope: cannot read it/,
      },
      { args: [], env: { EVTSTREAM_USERS: '' }, says: /EVTSTREAM_USERS: holds no users/ },
      { args: [], env: { EVTSTREAM_USERS: ' , ' }, says: /EVTSTREAM_USERS: holds no users/ },
      {
        args: [],
        env: { EVTSTREAM_ADMINS: 'TOPSECRET-no-name' },
        says: /EVTSTREAM_ADMINS: entry 1: expected name:secret/,
      },
    ];
    for (const c of cases) {
      const r = await runCli(['serve', '--port', '0', ...db(), ...c.args], { env: c.env ?? {} });
      const what = `${c.args.join(' ')} ${JSON.stringify(c.env ?? {})}: ${r.child.describe()}`;
      expect(r.code, what).to.equal(2);
      expect(r.stderr, what).to.match(c.says);
      expect(r.stderr, what).not.to.include('TOPSECRET');
      expect(r.stdout, what).not.to.include('listening');
      expect(r.stdout, what).not.to.include('demo');
    }
  });

  it('without users on an address that is not loopback, refuses to start (exit 2)', async () => {
    for (const host of ['0.0.0.0', '::']) {
      const r = await runCli(['serve', '--host', host, '--port', '0', ...db()]);
      expect(r.code, r.child.describe()).to.equal(2);
      expect(r.stderr).to.include(`refusing to serve on ${host} without them`);
      expect(r.stdout).to.equal('');
    }
  });

  // Breaking change it catches: a secret in a log line (the failed login's or the user's own).
  it('never writes a secret to its output, also with failed logins and debug logs', async () => {
    const secrets = [
      'KNOWN-USER-SECRET-1',
      'KNOWN-ADMIN-SECRET-2',
      'GUESSED-SECRET-3',
      'GUESSED-SECRET-4',
      'GUESSED-SECRET-5',
    ];
    const users = file('users-secrets', `alice:${secrets[0]}\n`);
    const server = await startCliServer(
      [...db(), '--users', users, '--log-level', 'debug', '--auth-failure-limit', '3'],
      { env: { EVTSTREAM_ADMINS: `root:${secrets[1]}` } },
    );
    const ok = await callFrom(
      '127.0.0.1',
      server,
      REGISTER,
      { component: 'C' },
      `alice:${secrets[0]}`,
    );
    expect(ok).to.include({ r: true });
    const stats = await callFrom(
      '127.0.0.1',
      server,
      'ftn18es.admin:1.0:stats',
      {},
      `root:${secrets[1]}`,
    );
    expect(stats).to.have.property('r');
    const wrong = await callFrom(
      '127.0.0.1',
      server,
      REGISTER,
      { component: 'C' },
      `alice:${secrets[2]}`,
    );
    expect(wrong).to.include({ e: 'SecurityError' });
    const unknown = await callFrom(
      '127.0.0.1',
      server,
      REGISTER,
      { component: 'C' },
      `mallory:${secrets[3]}`,
    );
    expect(unknown).to.include({ e: 'SecurityError' });
    const hmac = await callFrom(
      '127.0.0.1',
      server,
      REGISTER,
      { component: 'C' },
      '-hmac:alice:SHA256:AAAA',
    );
    expect(hmac).to.include({ e: 'SecurityError' });
    const limited = await callFrom(
      '127.0.0.1',
      server,
      REGISTER,
      { component: 'C' },
      `alice:${secrets[0]}`,
    );
    expect(limited).to.include({ e: 'DefenseRejected' });
    const metrics = await getFrom('127.0.0.2', server, '/metrics', `root:${secrets[4]}`);
    expect(metrics.status).to.equal(401);
    const status = await server.child.stop('SIGTERM');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });

    const output = server.child.stdout + server.child.stderr;
    for (const secret of secrets) expect(output, secret).not.to.include(secret);
    // What is logged instead: the address, the user when it exists, never an unknown name.
    expect(server.child.stderr).to.match(
      /WARN .*Failed authentication from 127\.0\.0\.1 as user "alice" \(1 within 1m\)/,
    );
    expect(server.child.stderr).to.match(/as an unknown user \(2 within 1m\)/);
    expect(server.child.stderr).to.match(
      /3 within 1m, the limit; authentications from 127\.0\.0\.1 are refused/,
    );
    expect(server.child.stderr).to.match(/Failed authentication from 127\.0\.0\.2 as user "root"/);
    expect(output).not.to.include('mallory');
  });

  // Breaking changes it catches: no limit; a limit keyed on something other than the address;
  // a block that never ends.
  it('guessing gets DefenseRejected; a correct login from another address works; the limit expires', async () => {
    const users = file('users-limit', 'alice:alice-secret\n');
    const server = await startCliServer(
      [...db(), '--users', users, '--auth-failure-limit', '3', '--auth-failure-window', '2s'],
      { env: { EVTSTREAM_ADMINS: 'root:root-secret', EVTSTREAM_LOG: 'warn' } },
    );
    try {
      const call = (from: string, sec: string): Promise<Record<string, unknown>> =>
        callFrom(from, server, REGISTER, { component: 'C' }, sec);
      const firstFailure = performance.now();
      for (let i = 0; i < 3; i++)
        expect(await call('127.0.0.1', `alice:guess-${i}`)).to.include({ e: 'SecurityError' });
      const over = await call('127.0.0.1', 'alice:guess-3');
      expect(over).to.include({ e: 'DefenseRejected' });
      expect(String(over['edesc'])).to.match(/Too many failed authentications/);
      expect(await call('127.0.0.1', 'alice:alice-secret'), 'even the right secret').to.include({
        e: 'DefenseRejected',
      });
      expect(await call('127.0.0.2', 'alice:alice-secret'), 'another address').to.include({
        r: true,
      });

      // /metrics' Basic auth counts in the same limit; 429 once over it.
      for (let i = 0; i < 3; i++)
        expect((await getFrom('127.0.0.3', server, '/metrics', `root:guess-${i}`)).status).to.equal(
          401,
        );
      expect((await getFrom('127.0.0.3', server, '/metrics', 'root:root-secret')).status).to.equal(
        429,
      );
      const scrape = await getFrom('127.0.0.4', server, '/metrics', 'root:root-secret');
      expect(scrape.status).to.equal(200);
      expect(scrape.body).to.match(/^evtstream_auth_failures_total\{reason="invalid"\} 6$/m);
      const limited = Number(
        /^evtstream_auth_failures_total\{reason="limited"\} (\d+)$/m.exec(scrape.body)?.[1],
      );
      expect(limited).to.equal(3);

      // The window ends 2 s after the first failure: the right secret works again then.
      await waitFor('a login from 127.0.0.1 after the window', async () => {
        const r = await call('127.0.0.1', 'alice:alice-secret');
        return r['r'] === true;
      });
      expect(performance.now() - firstFailure, 'ms until it worked again').to.be.at.least(2_000);
    } finally {
      await server.child.stop('SIGTERM');
    }
  });
});

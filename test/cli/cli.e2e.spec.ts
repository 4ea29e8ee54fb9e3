/**
 * The `evtstream` command line as users run it: bin/evtstream.js in a child process (built
 * dist/), its help, usage errors and exit codes, migrations on every database, and `serve` with
 * its sources of users and database settings.
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { describeDatabases, hangingUpServer } from '../support/db';
import {
  BIN,
  Child,
  requireFreshDist,
  killChildren,
  rawCall,
  ROOT,
  runCli,
  startCliServer,
  waitForListening,
} from '../support/cli';

const VERSION = (
  JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

const SERVE_OPTIONS = [
  '--host',
  '--port',
  '--db',
  '--users',
  '--tls-cert',
  '--tls-key',
  '--trust-proxy',
  '--no-secure-loopback',
  '--max-event-bytes',
  '--log-level',
  '--shutdown-timeout',
  '--auth-failure-limit',
  '--auth-failure-window',
];

const REGISTER = 'futoin.evt.poll:1.1:registerConsumer';

/** A temporary folder, removed after the suite. */
function tempDir(): { readonly path: string } {
  const dir = { path: '' };
  before(() => {
    dir.path = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-cli-'));
  });
  after(() => {
    if (dir.path) fs.rmSync(dir.path, { recursive: true, force: true });
  });
  return dir;
}

describe('evtstream CLI: help and usage errors', function () {
  this.timeout(60_000);
  before(requireFreshDist);
  after(killChildren);

  it('--help prints the commands and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code, r.child.describe()).to.equal(0);
    expect(r.stdout).to.include('Usage: evtstream <command> [options]');
    for (const cmd of ['serve', 'migrate', 'help'])
      expect(r.stdout).to.match(new RegExp(`^  ${cmd} `, 'm'));
    expect(r.stderr).to.equal('');
  });

  it('serve --help documents every serve option and exits 0', async () => {
    const r = await runCli(['serve', '--help']);
    expect(r.code, r.child.describe()).to.equal(0);
    expect(r.stdout).to.include('Usage: evtstream serve [options]');
    for (const opt of SERVE_OPTIONS) {
      // Each option starts a line of the option list (two spaces in).
      expect(r.stdout, opt).to.match(new RegExp(`^  ${opt}\\b`, 'm'));
    }
    const viaHelp = await runCli(['help', 'serve']);
    expect(viaHelp.code).to.equal(0);
    expect(viaHelp.stdout).to.equal(r.stdout);
  });

  it('migrate --help documents --db, --dwh and --log-level', async () => {
    const r = await runCli(['migrate', '--help']);
    expect(r.code, r.child.describe()).to.equal(0);
    for (const opt of ['--db', '--dwh', '--log-level']) {
      expect(r.stdout, opt).to.match(new RegExp(`^  ${opt}\\b`, 'm'));
    }
  });

  it('--version prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).to.equal(0);
    expect(r.stdout.trim()).to.equal(VERSION);
  });

  it('an unknown option exits 2 with a message and a hint', async () => {
    const r = await runCli(['serve', '--bogus']);
    expect(r.code, r.child.describe()).to.equal(2);
    expect(r.stderr).to.match(/^evtstream: .*'--bogus'/m);
    expect(r.stderr).to.include('Run "evtstream serve --help" for usage.');
    expect(r.stdout).to.equal('');
  });

  it('an unknown command exits 2 with a message', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('evtstream: Unknown command "frobnicate"');
  });

  it('no command at all prints the help on stderr and exits 2', async () => {
    const r = await runCli([]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('Usage: evtstream <command> [options]');
    expect(r.stdout).to.equal('');
  });

  it('help for an unknown command exits 2 with a message', async () => {
    const r = await runCli(['help', 'bogus']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('evtstream: Unknown command "bogus"');
  });

  for (const [args, message] of [
    [['serve', '--port', '70000'], '--port must be an integer from 0 to 65535'],
    [['serve', '--max-event-bytes', '0'], '--max-event-bytes must be an integer'],
    [['serve', '--tls-cert', 'cert.pem'], '--tls-cert and --tls-key go together'],
    [['serve', '--log-level', 'loud'], '--log-level must be debug, info, warn, error or silent'],
    [['serve', '--db', 'oracle://x/y'], 'Unknown database scheme "oracle"'],
    [['migrate', '--db', 'sqlite:'], 'No file in SQLite URL'],
    [['serve', '--dwh', 'oracle://x/y'], '--dwh: Unknown database scheme "oracle"'],
    [['serve', '--keep-for', '7d'], '--keep-for goes with --discard (EVTSTREAM_DISCARD=1)'],
    [['serve', '--discard', '--keep-for', 'a week'], 'Invalid --keep-for: "a week"'],
    [['serve', '--discard', '--discard-every', 'often'], 'Invalid --discard-every: "often"'],
    [['serve', '--discard', '--discard-every', '0'], '--discard-every must be above 0'],
    [['serve', '--shutdown-timeout', 'soon'], 'Invalid --shutdown-timeout: "soon"'],
    [['serve', '--auth-failure-limit', '0'], '--auth-failure-limit must be an integer ≥ 1'],
    [['serve', '--auth-failure-window', '0'], '--auth-failure-window must be above 0'],
  ] as const) {
    it(`${args.join(' ')}: exits 2 with "${message}"`, async () => {
      const r = await runCli(args);
      expect(r.code, r.child.describe()).to.equal(2);
      expect(r.stderr).to.include(message);
    });
  }
});

describeDatabases('evtstream migrate', (fx) => {
  before(requireFreshDist);
  after(killChildren);

  it('applies the active schema, then reports it up to date', async function () {
    this.timeout(60_000);
    const first = await runCli(['migrate', '--db', fx.url]);
    expect(first.code, first.child.describe()).to.equal(0);
    const lines = first.stdout.trim().split('\n');
    expect(lines.length).to.be.greaterThan(0);
    for (const line of lines) expect(line).to.match(/^applied \S+/);
    expect(first.stdout).to.match(/^applied active\/0001-tables\.sql$/m);

    const again = await runCli(['migrate', '--db', fx.url]);
    expect(again.code, again.child.describe()).to.equal(0);
    expect(again.stdout.trim()).to.match(/: active schema is up to date$/);
    expect(again.stdout).not.to.include('applied');
  });

  it('--dwh migrates the warehouse schema the same way', async function () {
    this.timeout(60_000);
    const first = await runCli(['migrate', '--dwh', '--db', fx.url]);
    expect(first.code, first.child.describe()).to.equal(0);
    expect(first.stdout).to.match(/^applied \S+/m);
    const again = await runCli(['migrate', '--dwh', '--db', fx.url]);
    expect(again.code, again.child.describe()).to.equal(0);
    expect(again.stdout.trim()).to.match(/: dwh schema is up to date$/);
  });

  it('serve on the migrated database starts and stops cleanly', async function () {
    this.timeout(60_000);
    const server = await startCliServer(['--db', fx.url], {
      env: { EVTSTREAM_USERS: 'alice:alice-secret', EVTSTREAM_LOG: 'warn' },
    });
    const ok = await rawCall(server.url, REGISTER, { component: 'C' }, 'alice:alice-secret');
    expect(ok).to.include({ r: true });
    const status = await server.child.stop('SIGTERM');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    expect(server.child.stderr).not.to.include('ERROR');
  });
});

describe('evtstream serve: users, database settings, signals [sqlite]', function () {
  this.timeout(60_000);
  const tmp = tempDir();
  before(requireFreshDist);
  after(killChildren);

  it('a database that fails at start: exits 1 at once, saying why', async () => {
    // The warehouse is set up after the failing store, so it never connects: the exit once
    // waited for it until the event loop ran dry ("stopped before the command finished").
    const server = await hangingUpServer(300);
    try {
      const startedAt = Date.now();
      const r = await runCli([
        'serve',
        '--port',
        '0',
        '--db',
        `postgres://u@127.0.0.1:${server.port}/d`,
        '--dwh',
        `sqlite:${path.join(tmp.path, 'failed-start-dwh.sqlite')}`,
      ]);
      const ms = Date.now() - startedAt;
      expect(r.code, r.child.describe()).to.equal(1);
      expect(r.stderr, r.child.describe()).to.match(/^evtstream: .*Connection terminated/m);
      expect(r.stderr).not.to.include('stopped before the command finished');
      // Node's start-up included; the failure itself comes 0.3 s in.
      expect(ms, 'ms to the exit').to.be.below(5_000);
    } finally {
      await server.close();
    }
  });

  it('--users FILE authenticates its users; a wrong secret is a SecurityError', async () => {
    const users = path.join(tmp.path, 'users');
    fs.writeFileSync(users, '# client users\ncarol:carol-secret\n\ndave:s3:cr:et\n');
    const server = await startCliServer(
      ['--users', users, '--db', `sqlite:${path.join(tmp.path, 'users.sqlite')}`],
      { env: { EVTSTREAM_LOG: 'warn' } },
    );
    try {
      // Users from a file: no demo user.
      expect(server.child.stdout).not.to.include('No users configured');
      const ok = await rawCall(server.url, REGISTER, { component: 'C' }, 'carol:carol-secret');
      expect(ok).to.include({ r: true });
      // A secret may contain ':'.
      const colon = await rawCall(server.url, REGISTER, { component: 'C' }, 'dave:s3:cr:et');
      expect(colon).to.include({ r: true });
      const wrong = await rawCall(server.url, REGISTER, { component: 'C' }, 'carol:nope');
      expect(wrong).to.include({ e: 'SecurityError' });
      expect(wrong).not.to.have.property('r');
      const unknown = await rawCall(server.url, REGISTER, { component: 'C' }, 'mallory:x');
      expect(unknown).to.include({ e: 'SecurityError' });
    } finally {
      const status = await server.child.stop('SIGTERM');
      expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    }
    expect(server.child.stderr).not.to.include('ERROR');
  });

  for (const variable of ['DB_EVT_PORT', 'DB_EVT_SOCKET']) {
    it(`without --db, DB_EVT_TYPE=sqlite ${variable}=FILE selects the database file`, async () => {
      const file = path.join(tmp.path, `from-${variable}.sqlite`);
      const server = await startCliServer([], {
        cwd: tmp.path,
        env: {
          DB_EVT_TYPE: 'sqlite',
          [variable]: file,
          EVTSTREAM_USERS: 'alice:alice-secret',
          EVTSTREAM_LOG: 'warn',
        },
      });
      try {
        expect(server.line.endsWith(`database sqlite:${file}`), server.line).to.equal(true);
        expect(fs.existsSync(file), file).to.equal(true);
        // Not the default file in the working folder.
        expect(fs.existsSync(path.join(tmp.path, 'evtstream.sqlite'))).to.equal(false);
        const ok = await rawCall(server.url, REGISTER, { component: 'C' }, 'alice:alice-secret');
        expect(ok).to.include({ r: true });
      } finally {
        await server.child.stop('SIGTERM');
      }
      expect(server.child.status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    });
  }

  // Breaking change it catches: a demo user without the admin right (the console refuses it).
  it('with no users at all, on loopback: a one-run demo user, also the admin, and the console URL', async () => {
    const server = await startCliServer(
      ['--db', `sqlite:${path.join(tmp.path, 'demo.sqlite')}`],
      // EVTSTREAM_LOG stays at its default (info) here.
      {},
    );
    try {
      const m =
        /^No users configured: created user "demo" with secret "([^"]+)" for this run, also an admin: console at (\S+)$/m.exec(
          server.child.stdout,
        );
      expect(m, server.child.describe()).to.not.equal(null);
      const secret = m?.[1] ?? '';
      expect(secret.length).to.be.greaterThan(10);
      expect(m?.[2]).to.equal(`${server.url}console/`);
      // The demo line comes before the "listening" line.
      expect(server.child.stdout.indexOf('No users configured')).to.be.lessThan(
        server.child.stdout.indexOf('evtstream listening on'),
      );
      expect(server.child.stderr).to.match(/WARN .*one-run demo user \(also an admin\)/);
      const ok = await rawCall(server.url, REGISTER, { component: 'C' }, `demo:${secret}`);
      expect(ok).to.include({ r: true });
      const admin = await rawCall(server.url, 'ftn18es.admin:1.0:stats', {}, `demo:${secret}`);
      expect(admin, 'the admin interface (what the console calls)').to.have.property('r');
      expect((await fetch(m?.[2] ?? '')).status).to.equal(200);
      const wrong = await rawCall(server.url, REGISTER, { component: 'C' }, 'demo:guess');
      expect(wrong).to.include({ e: 'SecurityError' });
    } finally {
      await server.child.stop('SIGTERM');
    }
  });

  it('SIGINT stops the server with exit code 0', async () => {
    const server = await startCliServer(['--db', `sqlite:${path.join(tmp.path, 'int.sqlite')}`], {
      env: { EVTSTREAM_USERS: 'alice:alice-secret' },
    });
    const status = await server.child.stop('SIGINT');
    expect(status, server.child.describe()).to.deep.equal({ code: 0, signal: null });
    expect(server.child.stderr).to.match(/INFO .*SIGINT: stopping/);
    expect(server.child.stderr).to.match(/INFO .*Stopped/);
    expect(server.child.stderr).not.to.include('ERROR');
  });

  // Breaking change it catches: serve installing its SIGINT/SIGTERM handlers after it prints the
  // "listening" line (a supervisor's signal sent at once would kill it about half of the time).
  it('SIGINT sent the moment the "listening" line appears still stops cleanly', async function () {
    // Ten starts and stops of a real server: the bound is for a hang, not for speed.
    this.timeout(300_000);
    for (let i = 0; i < 10; i++) {
      const child = new Child(
        process.execPath,
        [BIN, 'serve', '--port', '0', '--db', `sqlite:${path.join(tmp.path, 'race.sqlite')}`],
        { env: { EVTSTREAM_USERS: 'alice:alice-secret', EVTSTREAM_LOG: 'warn' } },
      );
      await waitForListening(child);
      const status = await child.stop('SIGINT');
      expect(status, child.describe()).to.deep.equal({ code: 0, signal: null });
    }
  });
});

/**
 * `serve`'s options and their environment twins, from one table: the README's table lists
 * exactly what `serve --help` says (option, variables, default), the defaults are what serve
 * runs with, every variable stands in for its option, and an option given wins over it.
 */
import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import { main, type CliIO } from '../../src/app/cli';
import { COMMON_FLAGS, COMMON_OPTIONS, logFormat, logLevel } from '../../src/app/commands/common';
import { UsageError } from '../../src/app/commands/errors';
import { argsConfig, readFlags, type Flag } from '../../src/app/commands/flags';
import { SERVE_FLAGS, serveOptions, type ServeOptions } from '../../src/app/commands/serve';
import { parseDuration } from '../../src/common/time';
import { parseDbUrl } from '../../src/storage/config';

const ROOT = path.join(__dirname, '..', '..');
const TLS = path.join(ROOT, 'test', 'fixtures', 'tls');

interface Row {
  option: string;
  variables: string[];
  default: string;
  meaning?: string;
}

const unquote = (cell: string): string => cell.trim().replace(/^`|`$/g, '');

/** The README's table of serve's options (the one headed `| option | variable | default |`). */
function readmeRows(): Row[] {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const head = lines.findIndex((l) =>
    /^\| option +\| variable +\| default +\| meaning +\|$/.test(l),
  );
  expect(head, 'the options table in README.md').to.be.above(-1);
  const rows: Row[] = [];
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const [option = '', variables = '', dflt = '', meaning = ''] = line.split('|').slice(1, -1);
    rows.push({
      option: unquote(option),
      variables: variables.trim() ? variables.split(',').map(unquote) : [],
      default: unquote(dflt),
      meaning: meaning.trim(),
    });
  }
  return rows;
}

/** serve --help, as the CLI prints it. */
async function serveHelp(): Promise<string> {
  let out = '';
  const io: CliIO = {
    out: (l) => (out += `${l}\n`),
    err: (l) => (out += `${l}\n`),
    env: {},
    stopSignal: () => new Promise(() => undefined),
  };
  expect(await main(['serve', '--help'], io)).to.equal(0);
  return out;
}

/** The entries of --help: each option's first line, and its `[VARIABLES; default X]` line. */
function helpRows(help: string): Row[] {
  const rows: Row[] = [];
  let current: Row | null = null;
  for (const line of help.split('\n')) {
    const head = /^ {2}(?:-\w, )?(--[a-z-]+(?: \S+)?)(?: {2,}|$)/.exec(line);
    if (head) {
      current = { option: head[1]!, variables: [], default: '' };
      rows.push(current);
      continue;
    }
    const facts = /^ {21}\[([^\]]*)\]$/.exec(line);
    if (facts && current) {
      for (const part of facts[1]!.split('; ')) {
        if (part.startsWith('default ')) current.default = part.slice('default '.length);
        else current.variables = part.split(', ');
      }
    }
  }
  return rows;
}

const documented = SERVE_FLAGS.filter((f) => f.name !== 'help');
const options = (argv: string[], env: Record<string, string> = {}): ServeOptions =>
  serveOptions(readFlags(SERVE_FLAGS, argv, env), env);

function usageError(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).to.be.instanceOf(UsageError);
    return (err as Error).message;
  }
  return expect.fail('no usage error');
}

describe('serve options and their environment variables', function () {
  it('the README table lists each option of the table, its variables, default and meaning', function () {
    expect(readmeRows()).to.deep.equal(
      documented.map((f) => ({
        option: `--${f.name}${f.arg ? ` ${f.arg}` : ''}`,
        variables: [...(f.env ?? [])],
        default: f.default ?? '',
        meaning: f.summary,
      })),
    );
  });

  it('serve --help says what the README table says', async function () {
    const help = helpRows(await serveHelp()).filter((r) => r.option !== '--help');
    const readme = readmeRows().map(({ meaning: _, ...r }) => r);
    expect(help).to.deep.equal(readme);
    // Every option has a variable.
    for (const r of readme) expect(r.variables, r.option).to.not.be.empty;
  });

  it('with nothing given, serve runs with the documented defaults', function () {
    const doc = new Map(readmeRows().map((r) => [r.option.split(' ')[0]!, r.default]));
    const o = options([]);
    expect(o.host).to.equal(doc.get('--host'));
    expect(o.port).to.equal(Number(doc.get('--port')));
    expect(o.db).to.deep.equal(parseDbUrl(doc.get('--db')!));
    expect(o.maxEventBytes).to.equal(Number(doc.get('--max-event-bytes')));
    expect(o.push).to.deep.equal({
      live_calls_per_s: Number(doc.get('--live-calls-per-s')),
      reliable_calls_per_s: Number(doc.get('--reliable-calls-per-s')),
    });
    for (const name of ['--metrics-open', '--no-console', '--trust-proxy', '--no-secure-loopback'])
      expect(doc.get(name), name).to.equal('off');
    expect(o).to.deep.include({
      metrics: 'admins',
      console: true,
      trustProxy: false,
      secureLoopback: true,
    });
    expect(doc.get('--discard')).to.equal('off');
    expect(o).to.not.have.any.keys('discard', 'warehouse', 'tls');
    expect(options(['--discard']).discard).to.deep.equal({
      keep_for: parseDuration(doc.get('--keep-for')!),
      poll_period_ms: parseDuration(doc.get('--discard-every')!),
    });
    expect(o.shutdownTimeoutMs).to.equal(parseDuration(doc.get('--shutdown-timeout')!));
    expect(o.auth).to.deep.equal({
      failure_limit: Number(doc.get('--auth-failure-limit')),
      failure_window_ms: parseDuration(doc.get('--auth-failure-window')!),
    });
    expect(logLevel(undefined, {})).to.equal(doc.get('--log-level'));
    expect(logFormat(undefined, {})).to.equal(doc.get('--log-format'));
  });

  describe('every variable stands in for its option, and the option wins over it', function () {
    const samples: Record<string, [string, string]> = {
      host: ['0.0.0.0', '::1'],
      port: ['9000', '9001'],
      db: ['sqlite:env.sqlite', 'sqlite:flag.sqlite'],
      'max-event-bytes': ['1000', '2000'],
      'live-calls-per-s': ['500', '0'],
      'reliable-calls-per-s': ['2000', '0'],
      'keep-for': ['1h', '2h'],
      'discard-every': ['1m', '2m'],
      'log-level': ['debug', 'warn'],
      'log-format': ['json', 'text'],
    };
    const sample = (f: Flag): [string, string] => samples[f.name] ?? ['env-value', 'flag-value'];

    for (const f of documented) {
      it(`--${f.name}`, function () {
        for (const variable of f.env ?? []) {
          if (f.multiple) {
            const v = readFlags(SERVE_FLAGS, [], {
              [variable]: 'https://a.example, https://b.example',
            });
            expect(v.strings(f.name), variable).to.deep.equal([
              'https://a.example',
              'https://b.example',
            ]);
            expect(v.from(f.name)).to.equal(variable);
            const both = readFlags(
              SERVE_FLAGS,
              [`--${f.name}`, 'https://c.example', `--${f.name}`, 'https://d.example'],
              { [variable]: 'https://a.example' },
            );
            expect(both.strings(f.name), `--${f.name} over ${variable}`).to.deep.equal([
              'https://c.example',
              'https://d.example',
            ]);
            expect(both.from(f.name)).to.equal(`--${f.name}`);
          } else if (f.arg) {
            const [fromEnv, fromFlag] = sample(f);
            const v = readFlags(SERVE_FLAGS, [], { [variable]: fromEnv });
            expect(v.string(f.name), variable).to.equal(fromEnv);
            expect(v.from(f.name)).to.equal(variable);
            const both = readFlags(SERVE_FLAGS, [`--${f.name}`, fromFlag], { [variable]: fromEnv });
            expect(both.string(f.name), `--${f.name} over ${variable}`).to.equal(fromFlag);
            expect(both.from(f.name)).to.equal(`--${f.name}`);
          } else {
            for (const on of ['1', 'true', 'YES', 'on'])
              expect(readFlags(SERVE_FLAGS, [], { [variable]: on }).on(f.name), on).to.equal(true);
            for (const off of ['0', 'false', 'no', 'off', ''])
              expect(readFlags(SERVE_FLAGS, [], { [variable]: off }).on(f.name), off).to.equal(
                false,
              );
            const both = readFlags(SERVE_FLAGS, [`--${f.name}`], { [variable]: '0' });
            expect(both.on(f.name), `--${f.name} over ${variable}=0`).to.equal(true);
          }
        }
      });
    }

    it('the first variable set wins over the next', function () {
      const v = readFlags(SERVE_FLAGS, [], { EVTSTREAM_LOG_LEVEL: 'warn', EVTSTREAM_LOG: 'debug' });
      expect(v.string('log-level')).to.equal('warn');
      expect(v.from('log-level')).to.equal('EVTSTREAM_LOG_LEVEL');
      const db = options([], {
        EVTSTREAM_DB: 'sqlite:first.sqlite',
        DATABASE_URL: 'sqlite:second.sqlite',
      }).db;
      expect(db.file).to.equal(path.resolve('first.sqlite'));
    });

    it('and take effect: a service set up by variables alone', function () {
      const o = options([], {
        EVTSTREAM_HOST: '0.0.0.0',
        EVTSTREAM_PORT: '9000',
        DATABASE_URL: 'postgres://evt@db.example:5433/evt?sslmode=require',
        EVTSTREAM_DWH: 'mysql://evt@dwh.example/hist?ssl-mode=REQUIRED',
        EVTSTREAM_TLS_CERT: path.join(TLS, 'cert.pem'),
        EVTSTREAM_TLS_KEY: path.join(TLS, 'key.pem'),
        EVTSTREAM_TRUST_PROXY: '1',
        EVTSTREAM_METRICS_OPEN: 'true',
        EVTSTREAM_NO_CONSOLE: 'yes',
        EVTSTREAM_MAX_EVENT_BYTES: '1000',
        EVTSTREAM_DISCARD: '1',
        EVTSTREAM_KEEP_FOR: '7d',
        EVTSTREAM_DISCARD_EVERY: '30s',
        EVTSTREAM_SHUTDOWN_TIMEOUT: '25s',
        EVTSTREAM_AUTH_FAILURE_LIMIT: '5',
        EVTSTREAM_AUTH_FAILURE_WINDOW: '10m',
        EVTSTREAM_LIVE_CALLS_PER_S: '0',
        EVTSTREAM_RELIABLE_CALLS_PER_S: '2500',
      });
      expect(o).to.deep.include({
        host: '0.0.0.0',
        port: 9000,
        metrics: 'open',
        console: false,
        trustProxy: true,
        secureLoopback: false,
        maxEventBytes: 1000,
        discard: { keep_for: 7 * 86_400_000, poll_period_ms: 30_000 },
        shutdownTimeoutMs: 25_000,
        auth: { failure_limit: 5, failure_window_ms: 600_000 },
        push: { live_calls_per_s: 0, reliable_calls_per_s: 2500 },
      });
      expect(o.db).to.deep.include({ dialect: 'postgresql', host: 'db.example', port: 5433 });
      expect(o.db.tls).to.deep.equal({ mode: 'require' });
      expect(o.warehouse).to.deep.include({ dialect: 'mysql', tls: { mode: 'require' } });
      expect(o.tls?.cert.toString()).to.equal(fs.readFileSync(path.join(TLS, 'cert.pem'), 'utf8'));
      expect(
        options([], { EVTSTREAM_NO_SECURE_LOOPBACK: '1' }).secureLoopback,
        'EVTSTREAM_NO_SECURE_LOOPBACK',
      ).to.equal(false);
      expect(logLevel(undefined, { EVTSTREAM_LOG: 'warn' })).to.equal('warn');
      expect(logFormat(undefined, { EVTSTREAM_LOG_FORMAT: 'json' })).to.equal('json');
    });
  });

  it('a bad value names the variable it came from', function () {
    expect(usageError(() => options([], { EVTSTREAM_PORT: 'abc' }))).to.equal(
      'EVTSTREAM_PORT must be an integer from 0 to 65535',
    );
    expect(usageError(() => options(['--port=-1'], { EVTSTREAM_PORT: '80' }))).to.equal(
      '--port must be an integer from 0 to 65535',
    );
    expect(usageError(() => options([], { EVTSTREAM_DISCARD: 'maybe' }))).to.equal(
      'EVTSTREAM_DISCARD must be 1 or 0 (true/false, yes/no, on/off), not "maybe"',
    );
    expect(usageError(() => options([], { EVTSTREAM_KEEP_FOR: '1h' }))).to.equal(
      'EVTSTREAM_KEEP_FOR goes with --discard (EVTSTREAM_DISCARD=1)',
    );
    expect(
      usageError(() => options([], { EVTSTREAM_DISCARD: '1', EVTSTREAM_DISCARD_EVERY: 'soon' })),
    ).to.match(/^Invalid EVTSTREAM_DISCARD_EVERY: "soon"/);
    expect(usageError(() => options([], { EVTSTREAM_DB: 'redis://x' }))).to.equal(
      'EVTSTREAM_DB: Unknown database scheme "redis": use sqlite:, postgres:// or mysql://',
    );
    expect(
      usageError(() => options([], { EVTSTREAM_DWH: 'postgres://h/db?sslmode=prefer' })),
    ).to.match(/^EVTSTREAM_DWH: sslmode=prefer is not supported/);
    expect(usageError(() => options([], { EVTSTREAM_AUTH_FAILURE_LIMIT: '0' }))).to.equal(
      'EVTSTREAM_AUTH_FAILURE_LIMIT must be an integer ≥ 1',
    );
    expect(usageError(() => options([], { EVTSTREAM_AUTH_FAILURE_WINDOW: '0' }))).to.equal(
      'EVTSTREAM_AUTH_FAILURE_WINDOW must be above 0',
    );
    expect(usageError(() => options(['--live-calls-per-s=-5']))).to.equal(
      '--live-calls-per-s must be an integer ≥ 0',
    );
    expect(usageError(() => options([], { EVTSTREAM_RELIABLE_CALLS_PER_S: '1.5' }))).to.equal(
      'EVTSTREAM_RELIABLE_CALLS_PER_S must be an integer ≥ 0',
    );
    expect(usageError(() => options([], { EVTSTREAM_SHUTDOWN_TIMEOUT: 'soon' }))).to.match(
      /^Invalid EVTSTREAM_SHUTDOWN_TIMEOUT: "soon"/,
    );
    expect(usageError(() => logFormat(undefined, { EVTSTREAM_LOG_FORMAT: 'xml' }))).to.equal(
      'EVTSTREAM_LOG_FORMAT must be text or json',
    );
    expect(usageError(() => logLevel(undefined, { EVTSTREAM_LOG_LEVEL: 'loud' }))).to.equal(
      'EVTSTREAM_LOG_LEVEL must be debug, info, warn, error or silent',
    );
  });

  it('the database: a URL variable, else AutoConfig DB_EVT_*, but not DATABASE_URL with DB_EVT_*', function () {
    const autoconfig = { DB_EVT_TYPE: 'sqlite', DB_EVT_SOCKET: 'auto.sqlite' };
    expect(options([], autoconfig).db.file).to.equal(path.resolve('auto.sqlite'));
    expect(options([], { ...autoconfig, EVTSTREAM_DB: 'sqlite:url.sqlite' }).db.file).to.equal(
      path.resolve('url.sqlite'),
    );
    expect(
      usageError(() => options([], { ...autoconfig, DATABASE_URL: 'sqlite:platform.sqlite' })),
    ).to.equal(
      'Both DATABASE_URL and DB_EVT_TYPE are set: say which database with --db or EVTSTREAM_DB',
    );
    expect(
      options(['--db', 'sqlite:flag.sqlite'], { ...autoconfig, DATABASE_URL: 'sqlite:p.sqlite' }).db
        .file,
    ).to.equal(path.resolve('flag.sqlite'));
  });

  it("every command's common options are those of the table", function () {
    expect(argsConfig(Object.values(COMMON_FLAGS))).to.deep.equal(COMMON_OPTIONS);
  });
});

/**
 * Test helpers around real child processes: the `evtstream` CLI (bin/evtstream.js, which runs the
 * compiled dist/) and the TypeScript examples. Every wait is bounded; children that are still
 * running are killed by killChildren() (call it in an after hook).
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import net from 'net';
import path from 'path';
import type { ConnectionConfig } from '../../src/storage/config';
import { Notifier } from './wait';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BIN = path.join(ROOT, 'bin', 'evtstream.js');

/** How long a child may run before it is killed and the wait fails (ms). */
export const CHILD_TIMEOUT_MS = 30_000;

/** Source files (under src/) whose compiled file in dist/ is missing or older than they are. */
export function staleDistFiles(root = ROOT): string[] {
  const stale: string[] = [];
  const walk = (rel: string): void => {
    for (const entry of fs.readdirSync(path.join(root, 'src', rel), { withFileTypes: true })) {
      const file = path.join(rel, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        const built = path.join(root, 'dist', file.replace(/\.ts$/, '.js'));
        const source = fs.statSync(path.join(root, 'src', file)).mtimeMs;
        if (!fs.existsSync(built) || fs.statSync(built).mtimeMs < source) stale.push(file);
      }
    }
  };
  walk('');
  return stale;
}

/**
 * Fails unless dist/ was built from the src/ there is now: the CLI runs the compiled code, so a
 * stale dist/ would be tested in its place. Tests never build it themselves (npm test and the
 * test:quick and test:e2e scripts build first).
 */
export function requireFreshDist(): void {
  const stale = staleDistFiles();
  if (stale.length === 0) return;
  const shown = stale.slice(0, 3).map((f) => `src/${f}`);
  throw new Error(
    `dist/ is older than src/ or missing (${shown.join(', ')}${stale.length > 3 ? ', ...' : ''}): ` +
      'run "npm run build" first; the CLI tests run the compiled dist/',
  );
}

/**
 * The environment for a child: ours without any EVTSTREAM_* or DB_* settings (so the developer's
 * own environment cannot change what a test runs), plus `extra` (undefined values are left out).
 */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(EVTSTREAM_|DB_)/.test(k)) env[k] = v;
  }
  for (const [k, v] of Object.entries(extra)) {
    if (v !== undefined) env[k] = v;
  }
  return env;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildOptions {
  /** Added to childEnv(). */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

const running = new Set<Child>();

/** A child process with its output collected and bounded waits on it. */
export class Child {
  stdout = '';
  stderr = '';
  /** Set once the process has exited and its output is closed. */
  status: ExitStatus | null = null;
  readonly exited: Promise<ExitStatus>;
  private readonly proc: ChildProcess;
  /** Waits re-checked at each output and at the exit. */
  private readonly changes = new Notifier();

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    options: ChildOptions = {},
  ) {
    this.proc = spawn(command, args, {
      cwd: options.cwd ?? ROOT,
      env: childEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(this);
    this.proc.stdout?.setEncoding('utf8').on('data', (d: string) => {
      this.stdout += d;
      this.changes.notify();
    });
    this.proc.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.changes.notify();
    });
    this.exited = new Promise<ExitStatus>((resolve) => {
      const done = (status: ExitStatus): void => {
        if (this.status) return;
        this.status = status;
        running.delete(this);
        this.changes.notify();
        resolve(status);
      };
      this.proc.on('close', (code, signal) => done({ code, signal }));
      this.proc.on('error', (err) => {
        this.stderr += `\n[spawn error] ${err.message}\n`;
        done({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** A short description with the output, for assertion messages. */
  describe(): string {
    const tail = (s: string): string => (s.length > 4000 ? `...${s.slice(-4000)}` : s);
    return (
      `${path.basename(this.command)} ${this.args.join(' ')} ` +
      `(exit ${JSON.stringify(this.status)})\n--- stdout:\n${tail(this.stdout)}\n--- stderr:\n${tail(this.stderr)}`
    );
  }

  /**
   * Resolves when `check()` returns a value (checked now and after every output and the exit);
   * rejects after `timeoutMs`, or once the process has exited without `check()` succeeding.
   */
  until<T>(what: string, check: () => T | null | undefined | false, timeoutMs: number): Promise<T> {
    return this.changes.until(
      () => `${what}: ${this.describe()}`,
      () => {
        const value = check();
        if ((value === null || value === undefined || value === false) && this.status) {
          throw new Error(`Exited before ${what}: ${this.describe()}`);
        }
        return value;
      },
      timeoutMs,
    );
  }

  /** Waits for a match of `pattern` in the output of `stream`. */
  waitForOutput(
    pattern: RegExp,
    timeoutMs = CHILD_TIMEOUT_MS,
    stream: 'stdout' | 'stderr' = 'stdout',
  ): Promise<RegExpExecArray> {
    return this.until(
      `${stream} to match ${String(pattern)}`,
      () => pattern.exec(this[stream]),
      timeoutMs,
    );
  }

  /** Waits for the exit; after `timeoutMs` kills the process and rejects. */
  async wait(timeoutMs = CHILD_TIMEOUT_MS): Promise<ExitStatus> {
    try {
      return await this.until('the exit', () => this.status, timeoutMs);
    } catch (err) {
      this.kill();
      throw err;
    }
  }

  /** Sends `signal` and waits for the exit (killed after `timeoutMs`). */
  stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<ExitStatus> {
    if (!this.status) this.proc.kill(signal);
    return this.wait(timeoutMs);
  }

  /** Sends `signal` if still running, without waiting. */
  signal(signal: NodeJS.Signals): void {
    if (!this.status) this.proc.kill(signal);
  }

  /** SIGKILL if still running. */
  kill(): void {
    if (!this.status) this.proc.kill('SIGKILL');
  }
}

/** Kills every child of these helpers that still runs and waits for them to go. */
export async function killChildren(): Promise<void> {
  const left = [...running];
  for (const c of left) c.kill();
  await Promise.all(left.map((c) => c.exited));
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
  child: Child;
}

export interface RunOptions extends ChildOptions {
  timeoutMs?: number;
}

/** Runs a command to its end (killed and rejected after the timeout). */
export async function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const child = new Child(command, args, options);
  const status = await child.wait(options.timeoutMs ?? CHILD_TIMEOUT_MS);
  return { ...status, stdout: child.stdout, stderr: child.stderr, child };
}

/** Runs `evtstream ARGS` (bin/evtstream.js on this Node.js). */
export const runCli = (args: readonly string[], options: RunOptions = {}): Promise<RunResult> =>
  run(process.execPath, [BIN, ...args], options);

/** Runs `examples/NAME.ts` with tsx. */
export const runExample = (name: string, options: RunOptions = {}): Promise<RunResult> =>
  run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'examples', `${name}.ts`)], options);

/** A running `evtstream serve`. */
export interface CliServer {
  child: Child;
  /** The HTTP URL from the "listening on" line. */
  url: string;
  /** The WebSocket URL from the same line. */
  wsUrl: string;
  port: number;
  /** The whole "evtstream listening on ..." line. */
  line: string;
}

const LISTENING_RE = /^evtstream listening on (\S+) \(WebSocket (\S+)\), database (.*)$/m;

/**
 * Starts `evtstream serve --port 0 ARGS`, waits for its "listening on" line and then for one
 * answered call (rejects, with the output, if it exits first or takes longer than `timeoutMs`).
 *
 * The answered call is there because the CLI prints the line before it installs its SIGINT and
 * SIGTERM handlers: a signal sent the moment the line appears can kill it (see the pending test in
 * cli.e2e.spec.ts). Once the server has answered a request, the handlers are in place.
 */
export async function startCliServer(
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliServer> {
  return startCliServerWith(['--port', '0', ...args], options);
}

/**
 * Like startCliServer, but runs `evtstream serve ARGS` with exactly these arguments (no
 * `--port 0`): for a server that must come back on the same port after it was killed.
 */
export async function startCliServerWith(
  args: readonly string[],
  options: RunOptions = {},
): Promise<CliServer> {
  const child = new Child(process.execPath, [BIN, 'serve', ...args], options);
  try {
    const server = await waitForListening(child, options.timeoutMs);
    // Anonymous ping: any FutoIn answer (even SecurityError) shows the server is serving.
    await rawCall(server.url, 'futoin.evt.poll:1.1:ping', { echo: 1 });
    return server;
  } catch (err) {
    child.kill();
    throw err;
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1 (listened on, then closed). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Waits for the "listening on" line of a `serve` child and parses it. */
export async function waitForListening(
  child: Child,
  timeoutMs = CHILD_TIMEOUT_MS,
): Promise<CliServer> {
  const m = await child.waitForOutput(LISTENING_RE, timeoutMs);
  const url = m[1] ?? '';
  return { child, url, wsUrl: m[2] ?? '', port: Number(new URL(url).port), line: m[0] };
}

/** A raw FutoIn call over HTTP POST (FTN7 JSON message); resolves with the parsed response. */
export async function rawCall(
  url: string,
  f: string,
  p: Record<string, unknown>,
  sec?: string,
): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { f, p, rid: 'C1' };
  if (sec !== undefined) body['sec'] = sec;
  const rsp = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/futoin+json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return (await rsp.json()) as Record<string, unknown>;
}

/** The DB_EVT_* variables futoin-database AutoConfig (and the examples) read for `config`. */
export function dbEvtEnv(config: ConnectionConfig): Record<string, string | undefined> {
  if (config.dialect === 'sqlite') return { DB_EVT_TYPE: 'sqlite', DB_EVT_PORT: config.file };
  return {
    DB_EVT_TYPE: config.dialect,
    DB_EVT_HOST: config.host,
    DB_EVT_PORT: config.port === undefined ? undefined : String(config.port),
    DB_EVT_USER: config.user,
    DB_EVT_PASS: config.password,
    DB_EVT_DB: config.database,
  };
}

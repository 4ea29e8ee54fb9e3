/**
 * npm test's runner: the whole suite in three mocha processes at once, one per database server,
 * since most of a test's time is spent waiting (on timers, child processes, commits) and not on
 * the CPU. The specs of one server must not all run at once: the delivery horizon reads
 * server-wide state (PostgreSQL's snapshot xmin, MariaDB's INNODB_TRX), so one spec's open
 * transaction would hold back another's. Hence the split by the database a test's title names
 * (describeDatabases puts `[postgresql]` or `[mysql]` in it):
 *
 * - `postgresql`: every test whose title names PostgreSQL, one after the other;
 * - `mysql`: every test whose title names MySQL/MariaDB, one after the other;
 * - `sqlite`: everything else (SQLite and the tests of no database).
 *
 * A few suites also open a database of another kind, an archive warehouse (replay, lifecycle
 * examples, deploy): their writes there run beside the other server's own shard. They are short
 * transactions that may delay its horizon by a moment; the tests wait for what they expect (a
 * suite that fails for it belongs in a serial phase of its own). A title naming both servers
 * would put its test in two shards, which the count below catches.
 *
 * A test that restarts a server (its title tagged `#alone`, ALONE_TAG) would fail the tests of
 * other shards that use that server meanwhile (a warehouse of another kind): those run after the
 * shards, on their own.
 *
 * The database servers are started here, once, before the shards (the shards find their URLs in
 * the environment). EVT_TEST_SHARDS=1 runs one mocha for everything, as `npm run test:serial`
 * does; so do arguments that pick tests (a --grep, spec files). Other arguments go to each mocha
 * (e.g. `npm test -- --bail`). The exit code is non-zero when a shard failed or, in a run
 * without arguments, when the shards together did not run every test of the suite (counted by a
 * dry run first). A failed shard's report (its failures, errors and stacks) is repeated beside the
 * closing summary.
 */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'child_process';
import fs from 'fs';
import path from 'path';
import type { Readable } from 'stream';
import { ALONE_TAG, needServers, startNeededServers, stopStartedServers } from './support/servers';

interface Shard {
  name: string;
  /** Where in the list of spec files it starts (see specFiles). */
  offset: number;
  /** mocha's --grep (with --invert when `invert`). */
  grep?: string;
  invert?: boolean;
}

/** Not in a shard: see ALONE. */
const NOT_ALONE = `^(?!.*${ALONE_TAG})`;

const SHARDS: readonly Shard[] = [
  { name: 'sqlite', offset: 0, grep: `\\[(postgresql|mysql)\\]|${ALONE_TAG}`, invert: true },
  { name: 'postgresql', offset: 1 / 3, grep: `${NOT_ALONE}.*\\[postgresql\\]` },
  { name: 'mysql', offset: 2 / 3, grep: `${NOT_ALONE}.*\\[mysql\\]` },
];

/** The tests tagged ALONE_TAG, after the shards, one mocha for them all. */
const ALONE: Shard = { name: 'alone', offset: 0, grep: ALONE_TAG };

const MOCHA = path.join(__dirname, '..', 'node_modules', 'mocha', 'bin', 'mocha.js');

/**
 * The mocha processes running, stopped with the runner (a Ctrl-C reaches them anyway, a kill
 * does not). Each gets SIGINT: bin/mocha.js runs the tests in a child of its own (for
 * node-option) and passes SIGINT on to it, not SIGTERM.
 */
const running = new Set<ChildProcess>();
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true;
    for (const child of running) child.kill('SIGINT');
  });
}

/** Whether the arguments name spec files: then mocha runs those, not the whole suite. */
const namesFiles = (args: readonly string[]): boolean =>
  args.some((a) => !a.startsWith('-') && /\.[cm]?[jt]s$/.test(a));

/** Whether the arguments pick tests or files themselves: then one mocha runs them. */
const picksTests = (args: readonly string[]): boolean =>
  namesFiles(args) || args.some((a) => /^(-g|--grep|-f|--fgrep)(=|$)/.test(a));

/**
 * The spec files, sorted, each shard starting at its own place in the list (`offset` of 1 = a
 * whole list): the shards would otherwise reach the heavy files (three Chromiums, the stress
 * tests) at the same time, as they go through the same files at about the same pace.
 */
function specFiles(offset: number): string[] {
  const files = fs
    .readdirSync(__dirname, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.spec.ts'))
    .map((f) => path.join('test', f))
    .sort();
  const at = Math.floor(files.length * offset);
  return [...files.slice(at), ...files.slice(0, at)];
}

/** Starts mocha from the project's folder, among the processes a signal stops. */
function mocha(argv: readonly string[]): ChildProcessByStdio<null, Readable, Readable> {
  const child = spawn(process.execPath, [MOCHA, ...argv], {
    cwd: path.join(__dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.on('close', () => running.delete(child));
  return child;
}

/** How many tests mocha finds in the whole suite (a dry run: nothing runs). */
function countTests(): Promise<number> {
  const child = mocha([...specFiles(0), '--dry-run', '--reporter', 'json']);
  child.stderr.pipe(process.stderr);
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      try {
        const { stats } = JSON.parse(out.slice(out.indexOf('{'))) as { stats: { tests: number } };
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(stats.tests);
      } catch (err) {
        reject(new Error(`Counting the tests failed: ${(err as Error).message}`));
      }
    });
  });
}

interface Outcome {
  shard: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  /** The spec reporter's closing counts (passing, failing, pending). */
  counts: string;
  /** Their sum: the tests the shard ran. */
  tests: number;
  /** mocha's report from its closing counts on: the failures, each with its error and stack. */
  epilogue: string[];
}

/** How many lines of a shard's failure report the closing summary repeats. */
const EPILOGUE_LINES = 80;

/** Runs one shard, its lines prefixed with its name (whole lines, so shards do not mix mid-line). */
function run(shard: Shard, args: readonly string[], prefix: boolean): Promise<Outcome> {
  const grep = shard.grep ? ['--grep', shard.grep, ...(shard.invert ? ['--invert'] : [])] : [];
  const files = namesFiles(args) ? [] : specFiles(shard.offset);
  const child = mocha([...files, ...grep, ...args]);
  const label = `${shard.name.padEnd(10)}| `;
  const counts: string[] = [];
  const epilogue: string[] = [];
  let tests = 0;
  const pipe = (from: NodeJS.ReadableStream, to: NodeJS.WriteStream): void => {
    let rest = '';
    from.setEncoding('utf8');
    from.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const count = /^ {2}(\d+) (passing|failing|pending)/.exec(line);
        if (count) {
          counts.push(line.trim());
          tests += Number(count[1]);
        }
        if (to === process.stdout && counts.length > 0) epilogue.push(line);
        to.write(prefix ? `${label}${line}\n` : `${line}\n`);
      }
    });
    from.on('end', () => {
      if (rest) to.write(prefix ? `${label}${rest}\n` : `${rest}\n`);
    });
  };
  pipe(child.stdout, process.stdout);
  pipe(child.stderr, process.stderr);
  const t0 = Date.now();
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      resolve({
        shard: shard.name,
        code,
        signal,
        seconds: Math.round((Date.now() - t0) / 1000),
        counts: counts.join(', ') || 'no counts reported',
        tests,
        epilogue,
      });
    });
  });
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  // A --grep of the caller's would replace each shard's, and files given would add to each.
  const serial = process.env['EVT_TEST_SHARDS'] === '1' || picksTests(args);
  try {
    // The shards find the servers' URLs in the environment and start none of their own.
    needServers();
    startNeededServers();
    if (serial) return (await run({ name: 'all', offset: 0 }, args, false)).code === 0 ? 0 : 1;
    // With arguments (--bail, say) fewer tests may run on purpose.
    const expected = args.length === 0 ? await countTests() : null;
    if (stopping) return 1;
    const outcomes = await Promise.all(SHARDS.map((s) => run(s, args, true)));
    if (!stopping) outcomes.push(await run(ALONE, args, true));
    // The failures again, next to the summary: the shards' reports are far up in a long log,
    // often cut off where a CI log keeps only its end.
    for (const o of outcomes.filter((o) => o.code !== 0 && o.epilogue.length > 0)) {
      while (o.epilogue.at(-1)?.trim() === '') o.epilogue.pop();
      const shown = o.epilogue.slice(0, EPILOGUE_LINES);
      process.stdout.write(`\n${o.shard}: failures\n${shown.join('\n')}\n`);
      if (o.epilogue.length > shown.length) {
        process.stdout.write(
          `(${o.epilogue.length - shown.length} more lines in the shard's report above)\n`,
        );
      }
    }
    process.stdout.write('\nShards:\n');
    for (const o of outcomes) {
      const end = o.signal ? `killed by ${o.signal}` : `exit ${o.code}`;
      process.stdout.write(`  ${o.shard.padEnd(10)} ${o.counts} (${o.seconds} s, ${end})\n`);
    }
    // Every test once: a shard that stopped early, or a title in no shard, shows here.
    const ran = outcomes.reduce((n, o) => n + o.tests, 0);
    process.stdout.write(`  ${ran} tests of ${expected ?? '(not counted)'} in the suite\n`);
    if (expected !== null && ran !== expected) {
      process.stderr.write(`The shards ran ${ran} tests; the suite has ${expected}.\n`);
      return 1;
    }
    return outcomes.every((o) => o.code === 0) && !stopping ? 0 : 1;
  } finally {
    stopStartedServers();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);

/**
 * The machine's floor under a trickle: what a bare WebSocket echo server (the `ws` package and
 * JSON, nothing of FutoIn, no database) costs in CPU per message when messages come one at a
 * time, `--intervals` ms apart. Whatever a server does per event (an RPC in, a write, an RPC
 * out), it pays at least this per wake-up: on a virtual machine, a process woken from idle runs
 * with cold caches, and the wake itself is not free.
 *
 *   npx tsx bench/wake-floor.ts [--count 2000] [--intervals 0,1,10]
 *
 * The server runs in its own `node` process; its CPU (every thread, user + system) comes from
 * /proc over each phase. Prints a markdown table: interval, CPU ms per message, sleeps per
 * message (voluntary context switches of its threads).
 */
import { spawn } from 'child_process';
import { parseArgs } from 'util';
import WebSocket from 'ws';
import { delay } from './client';
import { paced } from './rates';
import { cpuSeconds, sleeps } from './servers/process';

/** The echo server: answers each `{rid, p}` with `{rid, r: p}`; prints its port when ready. */
const SERVER = `
const { WebSocketServer } = require(process.argv[1]);
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => console.log(wss.address().port));
wss.on('connection', (s) =>
  s.on('message', (m) => {
    const req = JSON.parse(m);
    s.send(JSON.stringify({ rid: req.rid, r: req.p }));
  }),
);
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      count: { type: 'string', default: '2000' },
      intervals: { type: 'string', default: '0,1,10' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('npx tsx bench/wake-floor.ts [--count 2000] [--intervals 0,1,10]');
    return;
  }
  const count = Number(values.count);
  const intervals = values.intervals.split(',').map(Number);
  if (!(count > 0) || intervals.some((i) => !(i >= 0))) {
    throw new Error('--count must be positive and --intervals a list of ms >= 0');
  }

  const child = spawn(process.execPath, ['-e', SERVER, require.resolve('ws')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      child.once('exit', (code) => reject(new Error(`the echo server exited (${code})`)));
    });
    const ws = new WebSocket(`ws://127.0.0.1:${port}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const pid = child.pid!;

    console.log(`${count} messages per phase, one at a time; the server's CPU per message\n`);
    console.log('| interval, ms | CPU per message, ms | sleeps per message |');
    console.log('| ---: | ---: | ---: |');
    let rid = 0;
    for (const interval of intervals) {
      await delay(1_000);
      const c0 = cpuSeconds(pid);
      const s0 = sleeps(pid);
      // 0 ms apart: one at a time, each sent once the one before was answered.
      await paced(count, interval > 0 ? 1000 / interval : Infinity, async () => {
        const sent = ++rid;
        const echoed = await new Promise<unknown>((resolve) => {
          ws.once('message', (m: Buffer) =>
            resolve((JSON.parse(m.toString('utf8')) as { r?: unknown }).r),
          );
          ws.send(JSON.stringify({ rid: sent, p: sent }));
        });
        if (echoed !== sent) throw new Error(`message ${sent} echoed ${String(echoed)}`);
      });
      const ms = ((cpuSeconds(pid) - c0) * 1000) / count;
      const sl = (sleeps(pid) - s0) / count;
      console.log(`| ${interval} | ${ms.toFixed(3)} | ${sl.toFixed(2)} |`);
    }
    ws.close();
  } finally {
    child.kill();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

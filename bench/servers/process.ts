/**
 * A server under test in its own child process: started with plain `node` (so its VmHWM is its
 * own, and its CPU is not the client's), ready when it prints
 * `... listening on <HTTP URL> (WebSocket <WS URL>) ...` on stdout, stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'child_process';
import fs from 'fs';
import type { Endpoint } from '../client';

export type Side = 'ours' | 'reference';

const READY_RE = /listening on (\S+) \(WebSocket (\S+)\)/;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Lines of the server's stderr kept for error messages. */
const TAIL_LINES = 40;

/** Environment for a child: the parent's, without futoin-database's DB_* settings. */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('DB_')) env[k] = v;
  return { ...env, ...extra };
}

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux). */
const CLK_TCK = 100;

/**
 * CPU seconds (user + system) process `pid` has used so far, from /proc/PID/stat: fields 14 and
 * 15 (utime, stime), counted after the parenthesised command name. Ticks of 10 ms: measure over
 * seconds, not milliseconds.
 */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/**
 * Times a thread of process `pid` went to sleep and was woken again, summed over its threads
 * (voluntary context switches): what a trickle costs apart from the work itself, and a count
 * the machine's load does not change.
 */
export function sleeps(pid: number): number {
  let n = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    } catch {
      // the thread ended meanwhile
    }
  }
  return n;
}

export class ServerProcess implements Endpoint {
  private readonly tail: string[] = [];
  private exit: string | null = null;

  private constructor(
    readonly side: Side,
    private readonly child: ChildProcess,
    readonly pid: number,
    readonly url: string,
    readonly wsUrl: string,
  ) {}

  /** Starts `node nodeArgs... args...` and waits for its ready line. */
  static start(
    side: Side,
    args: string[],
    env: NodeJS.ProcessEnv,
    nodeArgs: readonly string[] = [],
  ): Promise<ServerProcess> {
    const child = spawn(process.execPath, [...nodeArgs, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const keep = (chunk: Buffer): void => {
      tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      tail.splice(0, Math.max(0, tail.length - TAIL_LINES));
    };
    child.stderr?.on('data', keep);
    return new Promise<ServerProcess>((resolve, reject) => {
      let out = '';
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`${side} server ${why}\n${tail.join('\n')}`));
      };
      const timer = setTimeout(() => fail('did not get ready in time'), READY_TIMEOUT_MS);
      const onExit = (code: number | null, signal: string | null): void =>
        fail(`exited before it was ready (${signal ?? `code ${code}`})`);
      child.once('exit', onExit);
      const onData = (chunk: Buffer): void => {
        out += chunk.toString('utf8');
        const m = READY_RE.exec(out);
        if (!m || child.pid === undefined) return;
        clearTimeout(timer);
        child.off('exit', onExit);
        child.stdout?.off('data', onData);
        child.stdout?.resume(); // keep draining
        const server = new ServerProcess(side, child, child.pid, m[1]!, m[2]!);
        server.tail.push(...tail);
        child.stderr?.off('data', keep);
        child.stderr?.on('data', (c: Buffer) => server.keep(c));
        child.once('exit', (code, signal) => {
          server.exit = signal ?? `code ${code}`;
        });
        resolve(server);
      };
      child.stdout?.on('data', onData);
    });
  }

  /** Bytes the process wrote to stderr since it was ready. */
  stderrBytes = 0;

  private keep(chunk: Buffer): void {
    this.stderrBytes += chunk.length;
    this.tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    this.tail.splice(0, Math.max(0, this.tail.length - TAIL_LINES));
  }

  /** How the process ended, or null while it runs. */
  get exited(): string | null {
    return this.exit;
  }

  /** The last lines it wrote to stderr. */
  stderrTail(): string {
    return this.tail.join('\n');
  }

  /** Peak resident set size so far (VmHWM), in KiB; null once the process has gone. */
  peakRssKiB(): number | null {
    try {
      const status = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
      return m ? Number(m[1]) : null;
    } catch {
      return null;
    }
  }

  /** CPU seconds (user + system, every thread) the process has used so far. */
  cpuSeconds(): number {
    return cpuSeconds(this.pid);
  }

  /** See sleeps(pid). */
  sleeps(): number {
    return sleeps(this.pid);
  }

  /** SIGTERM, then SIGKILL if it has not ended within 10 s. */
  async stop(): Promise<void> {
    if (this.exit !== null) return;
    const ended = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await ended;
    clearTimeout(timer);
  }
}

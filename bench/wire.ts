/**
 * A push consumer at the wire level, for the scenarios with hundreds of sessions: one WebSocket,
 * FutoIn messages (FTN7 JSON) written and read by hand, as any FTN18 client sends them: calls
 * `futoin.evt.push:1.1:<fn>` with `sec` = "user:secret", and answers the server's
 * `futoin.evt.receiver:1.1:onEvents` calls with `true`.
 *
 * Hundreds of futoin-invoker CCMs and futoin-executor Executors in one client process would cost
 * that process more CPU than the server under test spends (on a 2-core machine they share), and
 * its delays would count as the server's latency; in a deployment, consumers run elsewhere. This
 * one does what a consumer cannot skip: it parses each message and answers each call.
 */
import { performance } from 'perf_hooks';
import WebSocket from 'ws';
import { CREDENTIALS, type Receiver } from './client';

const PUSH = 'futoin.evt.push:1.1';
/** Giving up on a call of ours after this long. */
const CALL_TIMEOUT_MS = 60_000;
/** Giving up when events stop arriving for this long. */
const NO_PROGRESS_MS = 30_000;

interface Message {
  rid?: string;
  f?: string;
  p?: { seq?: number; events?: { id: string }[] };
  r?: unknown;
  e?: string;
  edesc?: string;
}

/** A consumer on its own WebSocket: see the module comment. */
export class WireReceiver implements Receiver {
  readonly ids: string[] = [];
  readonly at: number[] = [];
  calls = 0;
  private nextRid = 1;
  private readonly pending = new Map<string, (m: Message) => void>();
  private closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', () => {
      this.closed = true;
      for (const reply of this.pending.values()) reply({ e: 'CommError', edesc: 'closed' });
      this.pending.clear();
    });
  }

  /** Connects to the server's WebSocket URL. */
  static connect(wsUrl: string): Promise<WireReceiver> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
      ws.once('open', () => resolve(new WireReceiver(ws)));
      ws.once('error', reject);
    });
  }

  /** Calls `fn` of futoin.evt.push 1.1 with `params`; resolves with its result. */
  call(fn: string, params: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('closed'));
    const rid = `C${this.nextRid++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new Error(`${fn}: no answer within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(rid, (m) => {
        clearTimeout(timer);
        if (m.e !== undefined) reject(new Error(`${fn}: ${m.e}: ${m.edesc ?? ''}`));
        else resolve(m.r);
      });
      this.ws.send(JSON.stringify({ f: `${PUSH}:${fn}`, p: params, rid, sec: CREDENTIALS }));
    });
  }

  /**
   * Registers `component` (unless LIVE), acknowledges every event up to `ackUpTo` (a pollEvents
   * with it as last_id), then readyToReceive.
   */
  async start(component: string, ackUpTo?: string): Promise<void> {
    if (component !== 'LIVE') {
      await this.call('registerConsumer', { component });
      if (ackUpTo && ackUpTo !== '0')
        await this.call('pollEvents', { component, last_id: ackUpTo });
    }
    await this.call('readyToReceive', { component });
  }

  async until(count: number): Promise<void> {
    let seen = this.ids.length;
    let progressAt = performance.now();
    while (this.ids.length < count) {
      await new Promise((r) => setTimeout(r, 20));
      if (this.ids.length > seen) {
        seen = this.ids.length;
        progressAt = performance.now();
      } else if (performance.now() - progressAt > NO_PROGRESS_MS) {
        throw new Error(`push stalled: ${this.ids.length} of ${count} events received`);
      }
    }
  }

  close(): void {
    this.ws.close();
  }

  private onMessage(data: Buffer): void {
    const now = performance.now();
    let m: Message;
    try {
      m = JSON.parse(data.toString('utf8')) as Message;
    } catch {
      return;
    }
    const rid = m.rid ?? '';
    if (rid.startsWith('S')) {
      // A call of the server: onEvents.
      this.calls++;
      for (const e of m.p?.events ?? []) {
        this.ids.push(e.id);
        this.at.push(now);
      }
      this.ws.send(`{"rid":${JSON.stringify(rid)},"r":true}`);
      return;
    }
    const reply = this.pending.get(rid);
    if (reply) {
      this.pending.delete(rid);
      reply(m);
    }
  }
}

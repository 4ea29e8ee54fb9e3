/**
 * LiveSession's pacing (the push option live_calls_per_s) against a host whose interval the test
 * sets: calls start that far apart unless a whole batch waits, a timer set for a longer interval
 * is set again when the interval shrinks, and nothing is sent after close.
 */
import { expect } from 'chai';
import { performance } from 'perf_hooks';
import { consoleLogger } from '../../src/common/log';
import type { Delivery } from '../../src/delivery/push/queue';
import {
  LiveSession,
  type PushTarget,
  type Session,
  type SessionHost,
  type SessionOptions,
  type TailChannel,
} from '../../src/delivery/push/session';

const OPTIONS: SessionOptions = {
  maxInFlight: 2,
  queueMaxEvents: 10_000,
  queueMaxBytes: 16 * 1024 * 1024,
  retryMinMs: 100,
  retryMaxMs: 1000,
  skipStoreMs: 1000,
  parkMaxStreak: 10,
  limits: { maxEvents: 10, maxBytes: 64 * 1024, version: '1.1' },
};

let nextId = 1;
const deliveries = (n: number): Delivery[] =>
  Array.from({ length: n }, () => {
    const id = String(nextId++);
    return { event: { id, type: 'T', data: null, ts: '2026-12-03 00:00:00' }, bytes: 50 };
  });

interface Sent {
  seq: number;
  ids: string[];
  at: number;
}

/** A LiveSession over a target that answers at once, with `intervalMs` as the host's pace. */
function session(intervalMs: number): {
  live: LiveSession;
  sent: Sent[];
  host: { liveCallIntervalMs: number };
} {
  const sent: Sent[] = [];
  const host = {
    liveCallIntervalMs: intervalMs,
    log: consoleLogger('silent', 'test'),
    pushed: () => undefined,
    pushError: () => undefined,
    queueOverflow: () => undefined,
    eventTooLarge: () => undefined,
    closed: () => undefined,
  };
  const target: PushTarget = {
    send: (seq, items) => {
      sent.push({ seq, ids: items.map((d) => d.event.id), at: performance.now() });
      return Promise.resolve();
    },
    onClose: () => undefined,
  };
  const channel: TailChannel = {
    tailId: '0',
    join: (_m: Session) => undefined,
    leave: (_m: Session) => undefined,
  };
  const live = new LiveSession(host as unknown as SessionHost, channel, target, OPTIONS);
  return { live, sent, host };
}

const settle = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('LiveSession pacing', () => {
  it('without a pace, sends each event as it comes', async () => {
    const { live, sent } = session(0);
    for (let i = 0; i < 5; i++) {
      live.offer(deliveries(1));
      await settle();
    }
    expect(sent.map((s) => s.ids.length)).to.deep.equal([1, 1, 1, 1, 1]);
    expect(sent.map((s) => s.seq)).to.deep.equal([0, 1, 2, 3, 4]);
    live.close();
  });

  it('starts calls a pace apart, with what came meanwhile in the next call', async () => {
    const { live, sent } = session(200);
    const first = deliveries(1);
    const rest = deliveries(4);
    live.offer(first);
    for (const d of rest) {
      await settle(5);
      live.offer([d]);
    }
    await settle();
    expect(sent, 'the first call goes at once; the rest wait').to.have.length(1);
    await new Promise<void>((resolve) => {
      const check = (): void => (sent.length >= 2 ? resolve() : void setTimeout(check, 10));
      check();
    });
    expect(sent.map((s) => s.ids)).to.deep.equal([
      first.map((d) => d.event.id),
      rest.map((d) => d.event.id),
    ]);
    expect(sent[1]!.at - sent[0]!.at).to.be.at.least(199);
    live.close();
  });

  it('sends a whole batch at once, however short the time since the last call', async () => {
    const { live, sent } = session(60_000);
    live.offer(deliveries(1));
    await settle();
    live.offer(deliveries(25)); // two whole batches of 10 and 5 more
    await settle();
    expect(sent.map((s) => s.ids.length)).to.deep.equal([1, 10, 10]);
    live.close();
  });

  it('sets its timer again when the pace shrinks while it waits', async () => {
    const { live, sent, host } = session(60_000);
    live.offer(deliveries(1));
    await settle();
    live.offer(deliveries(1)); // waits for a timer a minute away
    host.liveCallIntervalMs = 50; // sessions left
    live.offer(deliveries(1));
    await settle(300);
    expect(sent.map((s) => s.ids.length)).to.deep.equal([1, 2]);
    live.close();
  });

  it('sends nothing after close, though events waited for their pace', async () => {
    const { live, sent } = session(100);
    live.offer(deliveries(1));
    await settle();
    live.offer(deliveries(1));
    live.close();
    await settle(250);
    expect(sent).to.have.length(1);
  });
});

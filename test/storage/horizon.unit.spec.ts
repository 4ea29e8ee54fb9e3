/**
 * HorizonTracker on its own: a fake probe that says which writers are open, and a fake clock.
 * The horizon is the highest ID below which nothing can still commit; these tests pin down when
 * it moves, when it waits, and what it says when it waits too long.
 */
import { expect } from 'chai';
import type { EventId } from '../../src/common/ids';
import type { Logger } from '../../src/common/log';
import type { WriterProbe } from '../../src/storage/dialects';
import {
  HorizonTracker,
  MAX_WAITING_PROBES,
  SingleWriterHorizon,
  type HorizonOptions,
} from '../../src/storage/horizon';

const OPTIONS: HorizonOptions = { stallWarnMs: 10_000, settleMs: 3_000 };

interface ProbeCall {
  since: EventId;
  answer(p: WriterProbe): Promise<void>;
  fail(err: Error): Promise<void>;
}

/** Lets the tracker take an answer. */
const settled = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(options: Partial<HorizonOptions> = {}) {
  let t = 1_000_000;
  const warnings: string[] = [];
  const log: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (m) => warnings.push(m),
    error: (m) => warnings.push(`ERROR ${m}`),
  };
  const calls: ProbeCall[] = [];
  const probe = (since: EventId): Promise<WriterProbe> =>
    new Promise<WriterProbe>((resolve, reject) => {
      calls.push({
        since,
        answer: (p) => (resolve(p), settled()),
        fail: (e) => (reject(e), settled()),
      });
    });
  const tracker = new HorizonTracker(
    probe,
    { ...OPTIONS, ...options },
    log,
    'horizon of evt_queue',
    () => t,
  );
  /** One refresh answered with `newest` and `writers`; resolves with the horizon. */
  const step = async (newest: EventId, writers: string[] | null): Promise<EventId> => {
    const h = tracker.current();
    await calls[calls.length - 1]!.answer({ newest, writers });
    return h;
  };
  const clock = {
    advance: (ms: number) => {
      t += ms;
    },
  };
  return { tracker, calls, step, clock, warnings };
}

describe('HorizonTracker', function () {
  // Breaking change it catches: resolving a probe once any one of its writers ended.
  it('moves to the newest ID of a probe once every writer seen at that probe has ended', async function () {
    const { tracker, step } = setup();
    expect(await step('10', ['a', 'b'])).to.equal('0');
    expect(tracker.waiting).to.equal(true);
    expect(await step('10', ['b', 'c']), 'b is still open').to.equal('0');
    expect(await step('12', ['c']), 'a and b ended: 10 is final').to.equal('10');
    expect(await step('12', []), 'no writer: the newest is final').to.equal('12');
    expect(tracker.waiting).to.equal(false);
    expect(tracker.known).to.equal('12');
  });

  // Breaking change it catches: remembering only the first waiting probe (a later, higher one
  // never resolves on its own).
  it('remembers each higher probe, and moves probe by probe as their writers end', async function () {
    const { tracker, step } = setup();
    expect(await step('10', ['a'])).to.equal('0');
    expect(await step('12', ['a', 'b'])).to.equal('0');
    expect(await step('14', ['b', 'c']), 'a ended: 10 is final').to.equal('10');
    expect(await step('14', ['c']), 'b ended: 12 is final').to.equal('12');
    expect(tracker.waiting).to.equal(true);
    expect(await step('14', []), 'nothing open').to.equal('14');
  });

  // Breaking change it catches: a probe with the same newest ID as the last waiting one added
  // again (it would wait for writers that came later, and hold the stall figures).
  it('does not wait twice for the same newest ID', async function () {
    const { tracker, step } = setup();
    expect(await step('10', ['a'])).to.equal('0');
    expect(await step('10', ['a', 'b'])).to.equal('0');
    expect(await step('10', ['b']), 'a ended').to.equal('10');
    expect(tracker.waiting, 'nothing waits: b began after 10 was read').to.equal(false);
    expect(tracker.heldForMs()).to.equal(0);
  });

  // Breaking change it catches: waiting on a probe whose newest ID is final already.
  it('waits for nothing when the newest ID is not above the horizon', async function () {
    const { tracker, step } = setup();
    expect(await step('5', [])).to.equal('5');
    expect(await step('5', ['x']), 'x drew no ID up to 5').to.equal('5');
    expect(tracker.waiting).to.equal(false);
    expect(await step('4', ['x'])).to.equal('5');
    expect(tracker.waiting).to.equal(false);
  });

  it('moves at once when no writer is open, and never back', async function () {
    const { calls, step } = setup();
    expect(await step('5', [])).to.equal('5');
    expect(await step('3', []), 'a lower newest does not move it back').to.equal('5');
    expect(
      calls.map((c) => c.since),
      'each probe starts from the horizon known',
    ).to.deep.equal(['0', '5']);
  });

  // Breaking change it catches: settling a gap before settleMs (<= for <), or by a real clock.
  it('waits settleMs on an ID gap when the database cannot list its writers', async function () {
    const { clock, step } = setup({ settleMs: 3_000 });
    expect(await step('5', null)).to.equal('0');
    clock.advance(2_999);
    expect(await step('5', null)).to.equal('0');
    clock.advance(1);
    expect(await step('5', null)).to.equal('5');
  });

  it('gives every caller a horizon from a probe that began after its call', async function () {
    const { tracker, calls } = setup();
    const first = tracker.current();
    const second = tracker.current();
    const third = tracker.current();
    expect(calls, 'one probe at a time').to.have.length(1);
    await calls[0]!.answer({ newest: '4', writers: [] });
    expect(await first).to.equal('4');
    // The callers that came during the first probe share the next one.
    expect(calls).to.have.length(2);
    await calls[1]!.answer({ newest: '9', writers: [] });
    expect(await second).to.equal('9');
    expect(await third).to.equal('9');
    expect(calls).to.have.length(2);
  });

  // Breaking change it catches: a waiter that finds a newer probe running when its turn comes
  // queues behind that one too, and so on, for as long as another caller keeps probing. Push
  // sessions on PostgreSQL and MariaDB call again the moment they get a horizon; a waiter (an
  // admin call, a scrape, a new session) then waited for ever.
  it('gives a waiting caller the next probe, even while another caller probes back to back', async function () {
    const { tracker, calls } = setup();
    let looping = true;
    let loops = 0;
    const loop = (async () => {
      while (looping) {
        await tracker.current();
        loops++;
      }
    })();
    const waiter = tracker.current(); // during the loop's first probe: it waits for the next
    let got: EventId | null = null;
    void waiter.then((h) => (got = h));
    for (let i = 0; i < 10 && got === null; i++) {
      await calls[calls.length - 1]!.answer({ newest: String(i + 1), writers: [] });
      await settled();
    }
    expect(got, 'the waiter got an answer').to.not.equal(null);
    expect(calls.length, 'probes until then').to.be.at.most(3);
    expect(got).to.equal('2');
    looping = false;
    await calls[calls.length - 1]!.answer({ newest: '99', writers: [] });
    await loop;
    expect(loops).to.be.at.least(2);
  });

  it('fails the callers of a failed probe, and probes again for the next ones', async function () {
    const { tracker, calls } = setup();
    const first = tracker.current().catch((e: Error) => e.message);
    const second = tracker.current();
    await calls[0]!.fail(new Error('connection lost'));
    expect(await first).to.equal('connection lost');
    await calls[1]!.answer({ newest: '2', writers: [] });
    expect(await second).to.equal('2');
  });

  // Breaking change it catches: a warning at every probe once stalled.
  it('warns once per stallWarnMs while open writers hold it back, naming them', async function () {
    const { clock, step, tracker, warnings } = setup({ stallWarnMs: 10_000 });
    const writers = ['t1', 't2', 't3', 't4', 't5', 't6'];
    expect(await step('7', [])).to.equal('7');
    let newest = 8;
    // Probes every second for 25 s, while the same writers stay open.
    for (let s = 0; s <= 25; s++) {
      await step(String(newest++), writers);
      if (s < 10) expect(warnings, `after ${s} s`).to.deep.equal([]);
      if (s === 10) expect(warnings, 'at 10 s').to.have.length(1);
      if (s < 25) clock.advance(1_000);
    }
    expect(tracker.heldForMs()).to.equal(25_000);
    expect(warnings, 'at 10 s and 20 s').to.have.length(2);
    expect(warnings[0]).to.equal(
      'horizon of evt_queue: delivery is held at event 7 for 10 s by open transactions' +
        ' t1, t2, t3, t4, t5; events after it wait until they commit or roll back',
    );
    expect(warnings[1]).to.contain('for 20 s');
  });

  // Breaking change it catches: counting each warning (or each probe) past stallWarnMs as a stall.
  it('counts a stall once per stuck transaction, however long it lasts', async function () {
    const { clock, step, tracker } = setup({ stallWarnMs: 10_000 });
    expect(await step('1', [])).to.equal('1');
    let newest = 2;
    // T stays open 35 s (three warnings' worth), probed every second.
    for (let s = 0; s <= 35; s++) {
      await step(String(newest++), ['T']);
      if (s === 9) expect(tracker.stalls, 'before 10 s').to.equal(0);
      if (s === 10) expect(tracker.stalls, 'at 10 s').to.equal(1);
      clock.advance(1_000);
    }
    expect(tracker.stalls).to.equal(1);
    expect(tracker.heldForMs()).to.equal(36_000);
    // T ends: nothing waits; a short wait on U is no stall; a long one on V is the second.
    expect(await step(String(newest), [])).to.equal(String(newest));
    expect(tracker.heldForMs()).to.equal(0);
    await step(String(++newest), ['U']);
    clock.advance(9_000);
    await step(String(++newest), ['U']);
    await step(String(++newest), []);
    expect(tracker.stalls, 'U was no stall').to.equal(1);
    await step(String(++newest), ['V']);
    clock.advance(10_000);
    await step(String(++newest), ['V']);
    expect(tracker.stalls).to.equal(2);
  });

  it('warns of an unfilled ID gap when it cannot list writers', async function () {
    const { clock, step, warnings } = setup({ stallWarnMs: 1_000, settleMs: 60_000 });
    await step('3', null);
    clock.advance(1_000);
    await step('3', null);
    expect(warnings).to.deep.equal([
      'horizon of evt_queue: delivery is held at event 0 for 1 s by an unfilled ID gap;' +
        ' events after it wait until they commit or roll back',
    ]);
  });

  // Breaking change it catches: no trimming, or trimming the oldest probe (which holds the horizon).
  it(`keeps at most ${MAX_WAITING_PROBES} probes waiting: the oldest stays, those after it go first`, async function () {
    const { step, tracker } = setup();
    // A long writer L open through every probe; M opens after probe 45.
    const probes = MAX_WAITING_PROBES + 44;
    for (let k = 1; k <= probes; k++) {
      expect(await step(String(k), k <= 45 ? ['L'] : ['L', 'M'])).to.equal('0');
    }
    expect(tracker.waiting).to.equal(true);
    // L ends. Probes 2..45 saw only L, but they were dropped to bound memory: the horizon moves
    // only to probe 1 (had they been kept, to 45). Late, never early: probes 46.. wait for M.
    expect(await step(String(probes), ['M'])).to.equal('1');
    expect(await step(String(probes), [])).to.equal(String(probes));
    expect(tracker.waiting).to.equal(false);
  });

  // Breaking change it catches: trimming at MAX_WAITING_PROBES already (>= for >), or always.
  it(`keeps all of ${MAX_WAITING_PROBES} waiting probes`, async function () {
    const { step } = setup();
    // Probes 1 and 2 see only L; probes 3.. see L and M. Dropping probe 2 would keep the
    // horizon at 1 when L ends.
    for (let k = 1; k <= MAX_WAITING_PROBES; k++) {
      expect(await step(String(k), k <= 2 ? ['L'] : ['L', 'M'])).to.equal('0');
    }
    expect(await step(String(MAX_WAITING_PROBES), ['M'])).to.equal('2');
  });
});

describe('SingleWriterHorizon', function () {
  it('takes the newest committed ID as final, from the last one known, and never moves back', async function () {
    const asked: EventId[] = [];
    const answers = ['4', '9', '7'];
    const h = new SingleWriterHorizon((since) => {
      asked.push(since);
      return Promise.resolve({ newest: answers.shift()!, writers: null });
    });
    expect(h.known).to.equal('0');
    expect(h.waiting).to.equal(false);
    expect(await h.current()).to.equal('4');
    expect(await h.current()).to.equal('9');
    expect(await h.current()).to.equal('9');
    expect(h.known).to.equal('9');
    expect(asked).to.deep.equal(['0', '4', '9']);
    expect(h.waiting, 'it never waits for writers').to.equal(false);
    expect(h.heldForMs()).to.equal(0);
    expect(h.stalls).to.equal(0);
  });
});

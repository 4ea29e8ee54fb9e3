/**
 * Grouped pointer writes on each database: many consumers' compare-and-sets in one statement and
 * commit, each with its own outcome, and push sessions' writes queued meanwhile sharing the next
 * commit (acknowledgement group commit).
 */
import { expect } from 'chai';
import type { EventId } from '../../src/common/ids';
import type { PointerAdvance } from '../../src/storage/dialects';
import type { EventStore } from '../../src/storage/store';
import { describeDatabases } from '../support/db';

describeDatabases('grouped pointer writes', (fx) => {
  let store: EventStore;

  before(async () => {
    store = await fx.openStore();
  });

  /** Registers consumers `prefix`0.. with the given pointers. */
  async function consumers(prefix: string, pointers: EventId[]): Promise<string[]> {
    const idents = pointers.map((_p, i) => `u:${prefix}${i}`);
    for (const [i, ident] of idents.entries()) {
      await store.registerConsumer(ident);
      if (pointers[i] !== '0') await store.advanceConsumer(ident, pointers[i]!);
    }
    return idents;
  }

  const pointersOf = (idents: string[]): Promise<(EventId | null)[]> =>
    Promise.all(idents.map((i) => store.consumerPointer(i)));

  const move = (ident: string, to: EventId, from: EventId): PointerAdvance => ({
    ident,
    to,
    condition: { from },
  });

  /*
   * Breaking change this test catches: drop `c.last_evt_id = v.from_id` from advanceMany (of
   * any dialect); the pointers moved by someone else are then moved again, and answered true.
   */
  it('moves each pointer whose condition holds, in one commit, and tells each outcome', async () => {
    const [a, b, c, d, e] = await consumers('G', ['10', '10', '10', '30', '10']);
    const commits = store.counters.pointerCommits;
    const held = await store.advanceConsumers([
      move(a!, '20', '10'), // holds
      move(b!, '20', '15'), // someone moved it: 10 is not 15
      move(c!, '25', '10'), // holds
      move(d!, '20', '30'), // never backwards
      move('u:NOBODY', '20', '0'), // not registered
      move(e!, '10', '10'), // already there: nothing to move, but it is at its target
    ]);
    expect(held).to.deep.equal([true, false, true, false, false, true]);
    expect(await pointersOf([a!, b!, c!, d!, e!])).to.deep.equal(['20', '10', '25', '30', '10']);
    expect(store.counters.pointerCommits - commits, 'one commit').to.equal(1);
  });

  /*
   * Breaking change this test catches: answer only from the rows the statement moved (no
   * read-back of the others); a write that is run again after its first run applied (a lost
   * answer) then reports the pointer moved elsewhere, and its session would end.
   */
  it('answers true for a write already applied (run again after a lost answer)', async () => {
    const [a, b] = await consumers('R', ['5', '5']);
    expect(await store.advanceConsumers([move(a!, '9', '5'), move(b!, '9', '5')])).to.deep.equal([
      true,
      true,
    ]);
    expect(await store.advanceConsumers([move(a!, '9', '5'), move(b!, '8', '5')])).to.deep.equal([
      true,
      false,
    ]);
    expect(await pointersOf([a!, b!])).to.deep.equal(['9', '9']);
  });

  /*
   * Breaking change this test catches: write each storePointer at once, one commit each (no
   * queue in PointerGroupCommit); 40 writes then take 40 commits, not a few.
   */
  /*
   * Breaking change this test catches: drop the owner_epoch condition from advanceMany (of any
   * dialect), or leave the epoch out of the read-back; a session of a node that lost the
   * consumer to another then moves its pointer (or is told its write held).
   */
  it('fences each write by its owner epoch: a stale acquisition moves nothing', async () => {
    const [a, b, c] = await consumers('F', ['10', '10', '10']);
    const old = await store.claimConsumer(a!, 'node-1');
    const now = await store.claimConsumer(a!, 'node-2');
    const onB = await store.claimConsumer(b!, 'node-1');
    expect(old!.epoch).to.not.equal(now!.epoch);
    const fenced = (ident: string, to: EventId, from: EventId, epoch: string): PointerAdvance => ({
      ident,
      to,
      condition: { from, epoch },
    });
    expect(
      await store.advanceConsumers([
        fenced(a!, '20', '10', old!.epoch), // taken over since: nothing moves
        fenced(b!, '20', '10', onB!.epoch), // still its epoch
        move(c!, '20', '10'), // no epoch: the pointer condition alone
      ]),
    ).to.deep.equal([false, true, true]);
    expect(await pointersOf([a!, b!, c!])).to.deep.equal(['10', '20', '20']);
    // The current acquisition moves it; the stale one, run again, is not told it holds.
    expect(await store.advanceConsumers([fenced(a!, '20', '10', now!.epoch)])).to.deep.equal([
      true,
    ]);
    expect(await store.advanceConsumers([fenced(a!, '20', '10', old!.epoch)])).to.deep.equal([
      false,
    ]);
    expect(await store.storePointer(a!, '30', { from: '20', epoch: old!.epoch })).to.equal(false);
    expect(await store.storePointer(a!, '30', { from: '20', epoch: now!.epoch })).to.equal(true);
    expect(await pointersOf([a!])).to.deep.equal(['30']);
  });

  it('groups the writes queued while one is written into few commits, each with its outcome', async () => {
    const idents = await consumers(
      'Q',
      Array.from({ length: 40 }, () => '100'),
    );
    const commits = store.counters.pointerCommits;
    // One of them was moved by someone else: its write must fail, the others not.
    await store.advanceConsumer(idents[7]!, '150');
    const results = await Promise.all(
      idents.map((ident, i) => store.storePointer(ident, String(200 + i), { from: '100' })),
    );
    expect(results.filter((ok) => !ok)).to.have.length(1);
    expect(results[7]).to.equal(false);
    const used = store.counters.pointerCommits - commits - 1;
    expect(used, 'commits for 40 writes').to.be.at.most(2);
    const pointers = await pointersOf(idents);
    pointers.forEach((p, i) => expect(p, idents[i]).to.equal(i === 7 ? '150' : String(200 + i)));
  });

  /*
   * Breaking change this test catches: let PointerGroupCommit put two writes of one consumer
   * into one statement; the second one's condition (the pointer the first one stores) then
   * fails, or on PostgreSQL the UPDATE joins the row twice.
   */
  it('writes two moves of one consumer one after the other, the second from the first', async () => {
    const [a, b] = await consumers('T', ['1', '1']);
    // b's write runs at once; a's two queue behind it, together.
    const results = await Promise.all([
      store.storePointer(b!, '2', { from: '1' }),
      store.storePointer(a!, '2', { from: '1' }),
      store.storePointer(a!, '3', { from: '2' }),
    ]);
    expect(results).to.deep.equal([true, true, true]);
    expect(await pointersOf([a!, b!])).to.deep.equal(['3', '2']);
  });

  it('leaves out a write no longer wanted when its group is written', async () => {
    const [a, b] = await consumers('W', ['1', '1']);
    // The first write runs at once; the two after it queue, and one of them is withdrawn.
    let wanted = true;
    const writes = [
      store.storePointer(a!, '2', { from: '1' }),
      store.storePointer(b!, '2', { from: '1' }, () => wanted),
      store.storePointer(a!, '3', { from: '2' }),
    ];
    wanted = false;
    expect(await Promise.all(writes)).to.deep.equal([true, false, true]);
    expect(await pointersOf([a!, b!])).to.deep.equal(['3', '1']);
  });
});

/**
 * The store routines of poison-event parking (migration 0004): a consumer's rule and streak, a
 * park with its copy of the event, replay and skip with their records, replays read in ID order.
 */
import { expect } from 'chai';
import type { EventStore, ParkRecord } from '../../src/storage/store';
import { describeDatabases } from '../support/db';

describeDatabases('EventStore parking', (fx) => {
  let store: EventStore;
  let ids: string[];

  const park = (id: string, attempts = 3, code = 'InternalError'): ParkRecord => ({
    event: {
      id,
      type: 'PARK_T',
      data: JSON.stringify({ id, s: 'é✓' }),
      ts: '2026-01-02T03:04:05Z',
    },
    attempts,
    firstFailureMs: Date.UTC(2026, 0, 2, 3, 4, 6),
    lastFailureMs: Date.UTC(2026, 0, 2, 3, 4, 9),
    errorCode: code,
    errorInfo: `receiver failed on ${id}`,
  });

  before(async () => {
    store = await fx.openStore();
    ids = await store.addEvents(
      Array.from({ length: 6 }, (_v, i) => ({ type: 'PARK_T', data: JSON.stringify({ i }) })),
    );
    await store.registerConsumer('u:P');
    await store.advanceConsumer('u:P', ids[5]!);
  });

  it('has no rule for a consumer until one is set, then clears the streak with each set', async () => {
    expect(await store.parkingRule('u:P')).to.deep.equal({ maxAttempts: null, streak: 0 });
    expect(await store.setMaxAttempts('u:P', 3, 'root', 'poison')).to.equal(ids[5]);
    expect(await store.parkingRule('u:P')).to.deep.equal({ maxAttempts: 3, streak: 0 });
    expect(await store.setMaxAttempts('u:NOBODY', 3, 'root', '')).to.equal(null);
    expect(await store.parkingRule('u:NOBODY')).to.deep.equal({ maxAttempts: null, streak: 0 });
  });

  it('parks an event with a copy of it and counts the streak; a park again adds attempts up', async () => {
    expect(await store.parkEvent('u:P', park(ids[1]!))).to.equal(1);
    expect(await store.parkEvent('u:P', park(ids[2]!, 4, 'Custom'))).to.equal(2);
    expect(await store.parkingRule('u:P')).to.deep.equal({ maxAttempts: 3, streak: 2 });
    const [first, second] = await store.listParked({
      ident: 'u:P',
      unresolvedOnly: true,
      limit: 10,
    });
    expect(first).to.deep.include({
      ident: 'u:P',
      state: 'parked',
      attempts: 3,
      firstFailure: '2026-01-02T03:04:06Z',
      lastFailure: '2026-01-02T03:04:09Z',
      errorCode: 'InternalError',
      errorInfo: `receiver failed on ${ids[1]}`,
      actedBy: null,
      resolvedAt: null,
    });
    expect(first?.event).to.deep.equal({
      id: ids[1],
      type: 'PARK_T',
      data: JSON.stringify({ id: ids[1], s: 'é✓' }),
      ts: '2026-01-02T03:04:05Z',
    });
    expect(first?.parkedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(second).to.deep.include({ errorCode: 'Custom', attempts: 4 });
    expect(Object.fromEntries(await store.parkedCounts())).to.deep.equal({ 'u:P': 2 });

    await store.clearParkStreak('u:P');
    expect((await store.parkingRule('u:P')).streak).to.equal(0);
  });

  it('marks one parked event to be replayed, reads it back, resolves it once delivered', async () => {
    expect(await store.replayParked('u:P', ids[2]!, 'root', 'fixed')).to.deep.equal([ids[2]]);
    // Already marked: nothing more to replay.
    expect(await store.replayParked('u:P', ids[2]!, 'root', 'again')).to.deep.equal([]);
    const replays = await store.parkedReplays('u:P', '0', 10);
    expect(replays.map((r) => [r.id, r.type, JSON.parse(r.data) as unknown])).to.deep.equal([
      [ids[2], 'PARK_T', { id: ids[2], s: 'é✓' }],
    ]);
    expect(await store.parkedReplays('u:P', ids[2]!, 10)).to.deep.equal([]);
    expect(Object.fromEntries(await store.parkedCounts())).to.deep.equal({ 'u:P': 2 });

    expect(await store.parkedReplayed('u:P', [ids[2]!])).to.equal(1);
    expect(await store.parkedReplayed('u:P', [ids[2]!])).to.equal(0);
    const [replayed] = (
      await store.listParked({ ident: 'u:P', unresolvedOnly: false, limit: 10 })
    ).filter((p) => p.event.id === ids[2]);
    expect(replayed).to.deep.include({ state: 'replayed', actedBy: 'root', actedReason: 'fixed' });
    expect(replayed?.resolvedAt).to.be.a('string');
    expect(Object.fromEntries(await store.parkedCounts())).to.deep.equal({ 'u:P': 1 });
  });

  it('skips what is unresolved, recording each action with the event', async () => {
    expect(await store.parkEvent('u:P', park(ids[3]!))).to.equal(1);
    expect(await store.replayParked('u:P', null, 'root', 'all')).to.deep.equal([ids[1], ids[3]]);
    expect(await store.skipParked('u:P', null, 'ops', 'not needed')).to.deep.equal([
      ids[1],
      ids[3],
    ]);
    expect(await store.parkedReplays('u:P', '0', 10)).to.deep.equal([]);
    expect(await store.parkedCounts()).to.have.property('size', 0);
    expect(await store.skipParked('u:NOBODY', null, 'ops', '')).to.equal(null);
    expect(await store.replayParked('u:NOBODY', null, 'ops', '')).to.equal(null);

    const moves = (await store.listMoves('u:P', 10)).map(({ at: _at, ...m }) => m);
    expect(moves.slice(0, 5)).to.deep.equal([
      {
        ident: 'u:P',
        action: 'skip',
        from: ids[5],
        by: 'ops',
        reason: 'not needed',
        applied: true,
        event_id: ids[3],
      },
      {
        ident: 'u:P',
        action: 'skip',
        from: ids[5],
        by: 'ops',
        reason: 'not needed',
        applied: true,
        event_id: ids[1],
      },
      {
        ident: 'u:P',
        action: 'replay',
        from: ids[5],
        by: 'root',
        reason: 'all',
        applied: true,
        event_id: ids[3],
      },
      {
        ident: 'u:P',
        action: 'replay',
        from: ids[5],
        by: 'root',
        reason: 'all',
        applied: true,
        event_id: ids[1],
      },
      {
        ident: 'u:P',
        action: 'replay',
        from: ids[5],
        by: 'root',
        reason: 'fixed',
        applied: true,
        event_id: ids[2],
      },
    ]);
    expect(moves[moves.length - 1]).to.deep.equal({
      ident: 'u:P',
      action: 'limit',
      from: ids[5],
      by: 'root',
      reason: 'poison',
      applied: true,
      max_attempts: 3,
    });
    // Pending moves are what a poll or a push session applies: none of these.
    expect((await store.consumerPosition('u:P'))?.move).to.equal(null);
  });

  it('parks for a push session only while the consumer is still its acquisition (owner epoch)', async () => {
    await store.registerConsumer('u:F');
    const old = (await store.claimConsumer('u:F', 'node-a'))!;
    const now = (await store.claimConsumer('u:F', 'node-b'))!;
    expect(now.epoch).to.not.equal(old.epoch);
    // The node that lost the consumer records nothing: no park, no streak.
    expect(await store.parkEvent('u:F', { ...park(ids[3]!), epoch: old.epoch })).to.equal(null);
    expect(
      await store.listParked({ ident: 'u:F', unresolvedOnly: false, limit: 10 }),
    ).to.deep.equal([]);
    expect((await store.parkingRule('u:F')).streak).to.equal(0);
    // The owner now does.
    expect(await store.parkEvent('u:F', { ...park(ids[3]!), epoch: now.epoch })).to.equal(1);
    const parked = await store.listParked({ ident: 'u:F', unresolvedOnly: true, limit: 10 });
    expect(parked.map((p) => p.event.id)).to.deep.equal([ids[3]]);
    expect(await store.dropConsumer('u:F', 'root', 'done')).to.equal(true);
  });

  it('skips the unresolved parks of a consumer it drops, and forgets its rule', async () => {
    await store.parkEvent('u:P', park(ids[4]!));
    expect(await store.dropConsumer('u:P', 'root', 'retired')).to.equal(true);
    const [dropped] = (
      await store.listParked({ ident: 'u:P', unresolvedOnly: false, limit: 10 })
    ).filter((p) => p.event.id === ids[4]);
    expect(dropped).to.deep.include({
      state: 'skipped',
      actedBy: 'root',
      actedReason: 'dropped: retired',
    });
    expect(await store.parkingRule('u:P')).to.deep.equal({ maxAttempts: null, streak: 0 });
    expect(await store.listParked({ ident: null, unresolvedOnly: true, limit: 10 })).to.deep.equal(
      [],
    );
  });
});

/**
 * The discarder's batch planning on its own: how far a pass and each batch may delete, from the
 * consumers, the stale set and the ages of the events, with no database.
 */
import { expect } from 'chai';
import {
  afterBatch,
  batchBound,
  isIgnored,
  passCeiling,
  planBatch,
} from '../../src/maintenance/discard-plan';
import type { ConsumerState, EventAge } from '../../src/storage/store';

const consumer = (ident: string, pointer: string, idle = false): ConsumerState => ({
  ident,
  pointer,
  lastTime: '2026-01-01T00:00:00Z',
  idle,
});

/** Ages of events `from`..`to`; those listed in `young` are not old enough yet. */
const ages = (from: number, to: number, young: number[] = []): EventAge[] =>
  Array.from({ length: to - from + 1 }, (_v, i) => ({
    id: String(from + i),
    old: !young.includes(from + i),
  }));

describe('discard planning', () => {
  describe('passCeiling', () => {
    it('keeps the newest event', () => {
      expect(passCeiling('100', '100')).to.equal('99');
      expect(passCeiling('1', '1')).to.equal(null);
    });

    it('never goes past the horizon', () => {
      expect(passCeiling('40', '100')).to.equal('40');
    });

    it('has nothing to do on an empty table', () => {
      expect(passCeiling('0', '0')).to.equal(null);
      // Emptied behind the discarder's back, with a horizon known from before.
      expect(passCeiling('5', '0')).to.equal(null);
    });

    it('compares IDs beyond 2^53 exactly', () => {
      expect(passCeiling('9007199254740993', '9007199254740993')).to.equal('9007199254740992');
    });
  });

  describe('batchBound', () => {
    it('is bound by the lowest pointer among the consumers that count', () => {
      const consumers = [consumer('u:A', '30'), consumer('u:B', '12'), consumer('u:C', '50')];
      expect(batchBound(consumers, [], '99')).to.equal('12');
    });

    it('never goes above the ceiling', () => {
      expect(batchBound([consumer('u:A', '500')], [], '99')).to.equal('99');
    });

    it('gives nothing when no consumer counts', () => {
      expect(batchBound([], [], '99')).to.equal(null);
      const stale = [consumer('u:A', '5', true)];
      expect(batchBound(stale, stale, '99')).to.equal(null);
    });

    it('gives nothing while a counted consumer has read nothing', () => {
      expect(batchBound([consumer('u:A', '30'), consumer('u:NEW', '0')], [], '99')).to.equal(null);
    });

    it('leaves out stale consumers while they are as the pass found them', () => {
      const stale = [consumer('u:OLD', '3', true)];
      const consumers = [consumer('u:A', '30'), consumer('u:OLD', '3', true)];
      expect(batchBound(consumers, stale, '99')).to.equal('30');
    });

    it('ignores only the consumers of the stale set, not every idle one', () => {
      expect(isIgnored(consumer('u:IDLE', '3', true), [])).to.equal(false);
      const stale = [consumer('u:OLD', '3', true), consumer('u:OTHER', '3', true)];
      expect(isIgnored(consumer('u:IDLE', '3', true), stale)).to.equal(false);
      expect(isIgnored(consumer('u:OLD', '3', true), stale)).to.equal(true);
    });

    it('counts a stale consumer again once it moved or is no longer idle', () => {
      const stale = [consumer('u:OLD', '3', true)];
      expect(
        batchBound([consumer('u:A', '30'), consumer('u:OLD', '4', true)], stale, '99'),
      ).to.equal('4');
      expect(
        batchBound([consumer('u:A', '30'), consumer('u:OLD', '3', false)], stale, '99'),
      ).to.equal('3');
      expect(isIgnored(consumer('u:OLD', '3', false), stale)).to.equal(false);
    });
  });

  describe('planBatch', () => {
    it('deletes up to the last of the leading old events', () => {
      expect(planBatch(ages(1, 5), 10)).to.deep.equal({ upTo: '5', count: 5 });
    });

    it('stops at the first young event, even with old ones after it', () => {
      expect(planBatch(ages(1, 6, [4]), 10)).to.deep.equal({ upTo: '3', count: 3 });
    });

    it('plans nothing when the first event is young, or there is none', () => {
      expect(planBatch(ages(1, 3, [1]), 10)).to.equal(null);
      expect(planBatch([], 10)).to.equal(null);
    });

    it('takes at most `limit` events per batch', () => {
      expect(planBatch(ages(1, 8), 3)).to.deep.equal({ upTo: '3', count: 3 });
    });
  });

  describe('afterBatch', () => {
    it('goes on after a whole batch of `limit` events', () => {
      const read = ages(1, 3);
      expect(afterBatch(read, { upTo: '3', count: 3 }, 3, 3)).to.deep.equal({
        lastId: '3',
        more: true,
      });
    });

    it('stops after fewer events than the limit: nothing more was there', () => {
      const read = ages(1, 2);
      expect(afterBatch(read, { upTo: '2', count: 2 }, 2, 3)).to.deep.equal({
        lastId: '2',
        more: false,
      });
    });

    it('stops at a young event', () => {
      const read = ages(1, 3, [3]);
      expect(afterBatch(read, { upTo: '2', count: 2 }, 2, 3)).to.deep.equal({
        lastId: '2',
        more: false,
      });
    });

    it('stops when the DELETE removed less than planned, naming the last one it removed', () => {
      // A pointer went back meanwhile: the statement stopped below it.
      const read = ages(1, 3);
      expect(afterBatch(read, { upTo: '3', count: 3 }, 1, 3)).to.deep.equal({
        lastId: '1',
        more: false,
      });
      expect(afterBatch(read, { upTo: '3', count: 3 }, 0, 3)).to.deep.equal({
        lastId: null,
        more: false,
      });
    });
  });
});

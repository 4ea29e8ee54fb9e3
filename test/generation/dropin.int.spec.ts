/**
 * Drop-in for the reference: the same set-up code a futoin-eventstream user has (AutoConfig's
 * #db.evt, an Executor, Service.register(as, executor)) runs our services, in process.
 */
import { expect } from 'chai';
import AutoConfig from 'futoin-database/AutoConfig';
import { Executor } from 'futoin-executor';
import { AdvancedCCM } from 'futoin-invoker';
import { DBGenService } from '../../src/generation/DBGenService';
import { GenFace } from '../../src/common/faces/GenFace';
import { DBPollService } from '../../src/delivery/poll/DBPollService';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { describeDatabases, futoinDbEnv } from '../support/db';
import { steps } from '../support/service';

interface RefFace {
  addEvent(as: unknown, type: string, data: unknown): void;
  pollEvents(as: unknown, component: string, last_id?: string | null): void;
}
interface RefFaceClass {
  register(as: unknown, ccm: AdvancedCCM, name: string, endpoint: unknown): void;
}
/* eslint-disable @typescript-eslint/no-require-imports -- the reference ships no types */
const RefGenFace = require('futoin-eventstream/GenFace') as RefFaceClass;
const RefPollFace = require('futoin-eventstream/PollFace') as RefFaceClass;
/* eslint-enable @typescript-eslint/no-require-imports */

describeDatabases('drop-in set-up as with the reference', (fx) => {
  it('derives the store from #db.evt, migrates it, and serves in-process faces (ours and the reference)', async () => {
    const ccm = new AdvancedCCM();
    const executor = new Executor(ccm);
    try {
      await steps((as) => {
        AutoConfig(as, ccm, { evt: {} }, futoinDbEnv(fx.config));
        as.add((as) => {
          DBGenService.register(as, executor);
          DBPollService.register(as, executor);
          GenFace.register(as, ccm, 'gen', executor);
          PollFace.register(as, ccm, 'poll', executor);
          RefGenFace.register(as, ccm, 'refgen', executor);
          RefPollFace.register(as, ccm, 'refpoll', executor);
        });
      });
      const id1 = await steps<string>((as) =>
        ccm.iface<GenFace>('gen').addEvent(as, 'OURS', { n: 1 }),
      );
      const id2 = await steps<string>((as) =>
        ccm.iface<RefFace>('refgen').addEvent(as, 'THEIRS', { n: 2 }),
      );
      await steps((as) => ccm.iface<PollFace>('poll').registerConsumer(as, 'DROPIN'));
      const ours = await steps<Event[]>((as) =>
        ccm.iface<PollFace>('poll').pollEvents(as, 'DROPIN'),
      );
      const theirs = await steps<Event[]>((as) =>
        ccm.iface<RefFace>('refpoll').pollEvents(as, 'LIVE', null),
      );
      for (const events of [ours, theirs]) {
        expect(events.map((e) => [e.id, e.type, e.data])).to.deep.equal([
          [id1, 'OURS', { n: 1 }],
          [id2, 'THEIRS', { n: 2 }],
        ]);
      }
    } finally {
      ccm.close();
    }
  });
});

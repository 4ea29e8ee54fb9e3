/**
 * Many small events against the 64 KiB messages of FTN18 1.0: a poll response and an onEvents
 * call must never exceed the caller's limit (futoin-invoker drops the connection when one does).
 */
import { expect } from 'chai';
import { SPEC_DIRS } from '@futoin/specs';
import type { NativeIface } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import type { Event } from '../../src/delivery/poll/PollService';
import { describeDatabases } from '../support/db';
import { connectRaw } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS } from '../support/service';

const LIMIT_1_0 = 64 * 1024;

describeDatabases('many small events within FTN18 1.0 message limits', (fx) => {
  let service: StreamService;
  let ids: string[];
  before(async () => {
    service = await startService(fx);
    // Small events (about 70 bytes in a list), so that 1000 of them, the most one response
    // carries, just exceed 64 KiB: only an exact size estimate keeps responses under it.
    ids = await service.store.addEvents(
      Array.from({ length: 2_500 }, () => ({ type: 'S', data: '"abcdef"' })),
    );
  });
  after(() => service?.close());

  for (const [iface, transport] of [
    ['futoin.evt.poll:1.0', 'ws'],
    ['futoin.evt.poll:1.0', 'http'],
    ['futoin.evt.push:1.1', 'ws'],
  ] as const) {
    it(`drains them with ${iface} pollEvents over ${transport}, every response under 64 KiB`, async () => {
      const ccm = clientCcm();
      try {
        await steps((as) =>
          ccm.register(
            as,
            'p',
            iface,
            transport === 'ws' ? service.wsUrl : service.url,
            TEST_CREDENTIALS,
            {
              specDirs: SPEC_DIRS,
              ...(iface.includes('push') ? { executor: undefined } : {}),
            },
          ),
        );
        const got: string[] = [];
        let last: string | null = null;
        for (let calls = 0; got.length < ids.length && calls < 100; calls++) {
          const events = await steps<Event[]>((as) =>
            ccm
              .iface<NativeIface>('p')
              .call(as, 'pollEvents', { component: 'LIVE', ...(last ? { last_id: last } : {}) }),
          );
          expect(Buffer.byteLength(JSON.stringify({ r: events, rid: 'C1' }))).to.be.below(
            LIMIT_1_0,
          );
          got.push(...events.map((e) => e.id));
          last = got[got.length - 1] ?? last;
        }
        expect(got).to.deep.equal(ids);
      } finally {
        ccm.close();
      }
    });
  }

  it('pushes them to a futoin.evt.receiver 1.0 consumer in calls under 64 KiB', async () => {
    const r = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'SMALL10', null, '1.0');
    try {
      await r.until(() => r.events.length >= ids.length);
      expect(r.events.map((e) => e.id)).to.deep.equal(ids);
      expect(r.calls.length).to.be.greaterThan(1);
    } finally {
      r.close();
    }
  });
});

import { expect } from 'chai';
import { SPEC_DIRS } from '@futoin/specs';
import type { NativeIface } from 'futoin-invoker';
import { describeDatabases } from '../support/db';
import { clientCcm, startService, steps, TEST_CREDENTIALS } from '../support/service';
import type { StreamService } from '../../src/app/service';

describeDatabases('wire smoke', (fx) => {
  let service: StreamService;
  before(async () => {
    service = await startService(fx);
  });
  after(() => service?.close());

  for (const transport of ['http', 'ws'] as const) {
    it(`adds and polls over ${transport} with an official-spec client`, async () => {
      const ccm = clientCcm();
      const url = transport === 'http' ? service.url : service.wsUrl;
      try {
        await steps((as) => {
          ccm.register(as, 'gen', 'futoin.evt.gen:1.1', url, TEST_CREDENTIALS, {
            specDirs: SPEC_DIRS,
            secureChannel: true,
          });
          ccm.register(as, 'poll', 'futoin.evt.poll:1.1', url, TEST_CREDENTIALS, {
            specDirs: SPEC_DIRS,
            secureChannel: true,
          });
        });
        const id = await steps<string>((as) =>
          ccm
            .iface<NativeIface>('gen')
            .call(as, 'addEvent', { type: 'SMOKE', data: { t: transport } }),
        );
        expect(id).to.match(/^[1-9]\d*$/);
        await steps((as) =>
          ccm
            .iface<NativeIface>('poll')
            .call(as, 'registerConsumer', { component: `C_${transport}` }),
        );
        const events = await steps<Array<{ id: string; data: unknown }>>((as) =>
          ccm.iface<NativeIface>('poll').call(as, 'pollEvents', { component: `C_${transport}` }),
        );
        expect(events.map((e) => e.id)).to.include(id);
      } finally {
        ccm.close();
      }
    });
  }
});

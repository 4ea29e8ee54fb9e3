/**
 * Spec-valid inputs that broke the reference, and large events: each handled correctly, on
 * every database.
 */
import { expect } from 'chai';
import { SPEC_DIRS } from '@futoin/specs';
import type { NativeIface } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import type { Event } from '../../src/delivery/poll/PollService';
import { GenFace } from '../../src/common/faces/GenFace';
import { withRetry } from '../../src/storage/retry';
import { describeDatabases, testLog } from '../support/db';
import { connectRaw } from '../support/push';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
} from '../support/service';
import { sqlFor } from '../support/sql';

const LONG_USER = `u${'x'.repeat(63)}`;
const LONG_USER_2 = `u${'x'.repeat(62)}y`;

/** pollEvents parameters for the events from `id` on (last_id is omitted before the first). */
const from = (component: string, id: string, want?: string[]): Record<string, unknown> => {
  const before = BigInt(id) - 1n;
  return {
    component,
    ...(before > 0n ? { last_id: String(before) } : {}),
    ...(want ? { want } : {}),
  };
};

/** ~1 MiB of JSON, with multi-byte characters and an emoji. */
const MEGA = { text: 'ä€🎉'.repeat(120_000), n: [1, 2, 3] };

describeDatabases('hardening: inputs and sizes', (fx) => {
  let service: StreamService;
  before(async () => {
    service = await startService(fx, {
      users: new Map([
        ['alice', 'alice-secret'],
        [LONG_USER, 'long-secret'],
        [LONG_USER_2, 'long-secret'],
      ]),
    });
  });
  after(() => service?.close());

  /** Registers official-spec poll faces (1.1) over HTTP and WS for `creds`. */
  async function pollFaces(
    creds: string,
  ): Promise<{ http: NativeIface; ws: NativeIface; close(): void }> {
    const ccm = clientCcm();
    await steps((as) => {
      ccm.register(as, 'http', 'futoin.evt.poll:1.1', service.url, creds, { specDirs: SPEC_DIRS });
      ccm.register(as, 'ws', 'futoin.evt.poll:1.1', service.wsUrl, creds, { specDirs: SPEC_DIRS });
    });
    return { http: ccm.iface('http'), ws: ccm.iface('ws'), close: () => ccm.close() };
  }

  it('stores a 1 MiB event and delivers it intact by poll (HTTP, WS) and push', async function () {
    this.timeout(60_000);
    const ccm = clientCcm();
    const faces = await pollFaces(TEST_CREDENTIALS);
    try {
      await this1MiB();
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${(err as { info?: string }).info ?? ''}`);
    } finally {
      faces.close();
      ccm.close();
    }
    async function this1MiB(): Promise<void> {
      await steps((as) => GenFace.register(as, ccm, 'gen', service.executor));
      const json = JSON.stringify(MEGA);
      expect(Buffer.byteLength(json)).to.be.greaterThan(1024 * 1024);
      const id = await steps<string>((as) => ccm.iface<GenFace>('gen').addEvent(as, 'MEGA', MEGA));
      for (const face of [faces.http, faces.ws]) {
        const events = await steps<Event[]>((as) => face.call(as, 'pollEvents', from('LIVE', id)));
        expect(events[0]!.id).to.equal(id);
        expect(events[0]!.data).to.deep.equal(MEGA);
      }
      await steps((as) => faces.ws.call(as, 'registerConsumer', { component: 'MEGAPUSH' }));
      await steps((as) => faces.ws.call(as, 'pollEvents', from('MEGAPUSH', id)));
      const pushed = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'MEGAPUSH');
      try {
        await pushed.until(() => pushed.events.some((e) => e.id === id));
        expect(pushed.events.find((e) => e.id === id)!.data).to.deep.equal(MEGA);
      } finally {
        pushed.close();
      }
      // Over the service's limit (4 MiB by default): refused at addEvent, not a stuck consumer.
      const huge = { s: 'x'.repeat(5 * 1024 * 1024) };
      await expectFutoinError(
        steps((as) => ccm.iface<GenFace>('gen').addEvent(as, 'HUGE', huge)),
        'InvalidRequest',
      );
    }
  });

  it('accepts a long want list (2,000 types)', async () => {
    const faces = await pollFaces(TEST_CREDENTIALS);
    try {
      const want = Array.from(
        { length: 2000 },
        (_v, i) =>
          `T_${'ABCDEFGHIJ'[i % 10]}${'ABCDEFGHIJ'[Math.floor(i / 10) % 10]}${'ABCDEFGHIJKLMNOPQRST'[Math.floor(i / 100)]}`,
      );
      const [id] = await service.store.addEvents([{ type: want[1234]!, data: '{}' }]);
      const events = await steps<Event[]>((as) =>
        faces.http.call(as, 'pollEvents', from('LIVE', id!, want)),
      );
      expect(events.map((e) => e.id)).to.deep.equal([id]);
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${(err as { info?: string }).info ?? ''}`);
    } finally {
      faces.close();
    }
  });

  it('keeps consumers of users with IDs longer than the ident column apart', async () => {
    const a = await pollFaces(`${LONG_USER}:long-secret`);
    const b = await pollFaces(`${LONG_USER_2}:long-secret`);
    try {
      await steps((as) => a.http.call(as, 'registerConsumer', { component: 'SAME_NAME' }));
      await steps((as) => b.http.call(as, 'registerConsumer', { component: 'SAME_NAME' }));
      const [id] = await service.store.addEvents([{ type: 'LONGUSER', data: '{}' }]);
      await steps((as) => a.http.call(as, 'pollEvents', { component: 'SAME_NAME', last_id: id }));
      const rows = await service.store.db.query<{ ident: string; p: string }>(
        `SELECT ident, ${sqlFor(service.store.dialect.name).idText('last_evt_id')} AS p FROM evt_consumers WHERE ident LIKE ?`,
        ['~%'],
      );
      expect(rows).to.have.length(2);
      rows.forEach((r) => expect(r.ident.length).to.be.at.most(64));
      expect(rows.map((r) => r.p).sort()).to.deep.equal(['0', id]);
    } finally {
      a.close();
      b.close();
    }
  });

  it('stores and returns 4-byte UTF-8 (emoji) and other unicode unchanged', async () => {
    const data = { s: '🎉👩‍💻 𝄞 ü ß 漢字', e: '\u0000\u001f' };
    const ccm = clientCcm();
    try {
      await steps((as) =>
        GenFace.register(as, ccm, 'gen', service.wsUrl, TEST_CREDENTIALS, { secureChannel: true }),
      );
      const id = await steps<string>((as) =>
        ccm.iface<GenFace>('gen').addEvent(as, 'UNICODE', data),
      );
      const [row] = await service.store.readEvents({
        after: String(BigInt(id) - 1n),
        upTo: await service.store.horizon(),
        limit: 1,
        want: null,
      });
      expect(JSON.parse(row!.data)).to.deep.equal(data);
    } finally {
      ccm.close();
    }
  });
});

describeDatabases(
  'hardening: deadlocks are retried inside the service',
  (fx) => {
    it('retries the transaction the database chose as the deadlock victim, and both complete', async function () {
      this.timeout(30_000);
      const store = await fx.openStore();
      await store.registerConsumer('dl:A');
      await store.registerConsumer('dl:B');
      const lock = (tx: Parameters<Parameters<typeof store.db.transaction>[0]>[0], ident: string) =>
        tx.execute('UPDATE evt_consumers SET last_time = last_time WHERE ident = ?', [ident]);
      let bothLocked!: () => void;
      const firstLocks = new Promise<void>((r) => (bothLocked = r));
      let locked = 0;
      const attempts = { a: 0, b: 0 };
      const txn = (first: string, second: string, key: 'a' | 'b') =>
        withRetry(
          () =>
            store.db.transaction(async (tx) => {
              attempts[key]++;
              await lock(tx, first);
              if (++locked === 2) bothLocked();
              await firstLocks;
              await lock(tx, second);
            }),
          (e) => store.dialect.errorKind(e),
          testLog,
          `deadlock ${key}`,
          false,
        );
      await Promise.all([txn('dl:A', 'dl:B', 'a'), txn('dl:B', 'dl:A', 'b')]);
      // One of them was the victim and ran again.
      expect(attempts.a + attempts.b).to.equal(3);
    });
  },
  ['postgresql', 'mysql'],
);

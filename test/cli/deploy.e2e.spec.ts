/**
 * `evtstream serve` as an operator deploys it: configured by environment variables alone, on
 * databases that require TLS (the active store and the warehouse, each checked with
 * verify-full against the test servers' CA), with JSON log lines that carry the consumer, the
 * push session and the event IDs; and a wrong CA stops it at start with an error naming TLS.
 */
import { expect } from 'chai';
import path from 'path';
import { consumerIdent } from '../../src/common/identity';
import { parseDbUrl } from '../../src/storage/config';
import type { Dialect } from '../../src/storage/sql';
import { EventStore } from '../../src/storage/store';
import {
  killChildren,
  rawCall,
  requireFreshDist,
  runCli,
  startCliServer,
  startCliServerWith,
  type CliServer,
} from '../support/cli';
import { DbFixture, describeDatabases, testLog } from '../support/db';
import { connectRaw } from '../support/push';
import { TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { requireServerTls, tlsUrl } from '../support/tls';
import { waitFor, waitForValue } from '../support/wait';

const WRONG_CA = path.join(__dirname, '..', 'fixtures', 'tls', 'cert.pem');
const ARCHIVER = consumerIdent('-internal', 'ARCHIVER');

type Line = Record<string, unknown> & { time: string; level: string; msg: string };

/** Every stderr line of `server`, each of which must be one JSON object with time, level, msg. */
function jsonLines(server: CliServer): Line[] {
  return server.child.stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const line = JSON.parse(l) as Line;
      expect(line, l).to.include.keys('time', 'level', 'msg');
      return line;
    });
}

const find = (lines: Line[], msg: string, fields: Record<string, unknown>): Line | undefined =>
  lines.find((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));

async function addEvent(server: CliServer, type: string): Promise<string> {
  const rsp = await rawCall(
    server.url,
    'futoin.evt.gen:1.1:addEvent',
    { type, data: { by: 'deploy test' } },
    TEST_CREDENTIALS,
  );
  expect(rsp, JSON.stringify(rsp)).to.have.property('r');
  return rsp['r'] as string;
}

describeDatabases(
  'serve on TLS databases, configured by environment',
  (fx) => {
    const tls = requireServerTls();
    // The warehouse is the other kind of server: both drivers serve both roles across the two.
    const other: Dialect = fx.dialect === 'postgresql' ? 'mysql' : 'postgresql';
    const wfx = new DbFixture(other);
    before(requireFreshDist);
    before(() => wfx.create());
    after(killChildren);
    after(() => wfx.drop());

    const verifyFull = (f: DbFixture): string =>
      tlsUrl(f.url, f.dialect, { params: { sslmode: 'verify-full', sslrootcert: tls.files.ca } });

    it('serves and archives with every connection verified, logging JSON lines with fields', async function () {
      this.timeout(120_000);
      const server = await startCliServerWith([], {
        env: {
          EVTSTREAM_DB: verifyFull(fx),
          EVTSTREAM_DWH: verifyFull(wfx),
          EVTSTREAM_USERS: TEST_CREDENTIALS,
          EVTSTREAM_HOST: '127.0.0.1',
          EVTSTREAM_PORT: '0',
          EVTSTREAM_LOG_FORMAT: 'json',
          EVTSTREAM_LOG_LEVEL: 'debug',
        },
      });
      const mode = fx.dialect === 'postgresql' ? 'sslmode=verify-full' : 'ssl-mode=VERIFY_IDENTITY';
      expect(server.line).to.match(
        new RegExp(
          `database (postgres|mysql)://evt_tls@localhost:\\d+/${path.basename(fx.url)}\\?${mode}$`,
        ),
      );
      const id = await addEvent(server, 'DEPLOYED');

      const warehouse = await EventStore.open(parseDbUrl(wfx.url), { log: testLog });
      try {
        await waitForValue(
          'the event in the warehouse',
          // The archiver creates the table once it is connected.
          () =>
            warehouse.db
              .query<{ id: string | number }>('SELECT id FROM evt_history')
              .catch(() => []),
          (rows) => rows.some((r) => String(r.id) === id),
        );
      } finally {
        await warehouse.close();
      }
      // The archiver logs its batch inside the call; the push session logs it once the call has
      // answered: wait for both.
      const lines = await waitForValue(
        'the archiver batch logged, by the archiver and by its push session',
        () => jsonLines(server),
        (ls) =>
          find(ls, 'Archiver: archived', { event_id: id }) !== undefined &&
          find(ls, 'Push: delivered', { consumer: ARCHIVER, event_id: id }) !== undefined,
      );
      const delivered = find(lines, 'Push: delivered', { consumer: ARCHIVER, event_id: id });
      expect(delivered?.['session']).to.match(/^r\d+$/);
      expect(
        find(lines, 'Push: session started', {
          consumer: ARCHIVER,
          session: delivered?.['session'],
        }),
        'the session that delivered it started',
      ).to.not.equal(undefined);
      expect(find(lines, 'Archiver: archived', { consumer: 'ARCHIVER', event_id: id })).to.include({
        level: 'debug',
        name: 'evtstream',
      });
      await server.child.stop();
    });

    it('a wrong CA stops it at start (exit 1) with an error that names TLS', async function () {
      this.timeout(60_000);
      const r = await runCli(['serve', '--port', '0'], {
        env: {
          EVTSTREAM_DB: tlsUrl(fx.url, fx.dialect, {
            params: { sslmode: 'verify-full', sslrootcert: WRONG_CA },
          }),
          EVTSTREAM_USERS: TEST_CREDENTIALS,
        },
      });
      expect(r.code, r.child.describe()).to.equal(1);
      expect(r.stderr).to.match(
        /^evtstream: TLS connection to (postgres|mysql):\/\/evt_tls@localhost:/m,
      );
      expect(r.stderr).to.include("(the server's certificate is not signed by the CA of ");
      expect(r.stdout).to.not.include('listening');
    });
  },
  ['postgresql', 'mysql'],
);

describeDatabases(
  'serve logs',
  (fx) => {
    before(requireFreshDist);
    after(killChildren);

    for (const format of ['json', 'text'] as const) {
      it(`--log-format ${format}: push sessions and batches, with consumer, session and event IDs`, async function () {
        this.timeout(60_000);
        const server = await startCliServer(
          ['--db', fx.url, '--log-format', format, '--log-level', 'debug'],
          { env: { EVTSTREAM_USERS: TEST_CREDENTIALS, EVTSTREAM_LOG_FORMAT: 'bogus' } },
        );
        const component = `LOGS_${format.toUpperCase()}`;
        const consumer = consumerIdent(TEST_USER, component);
        const receiver = await connectRaw(server.wsUrl, TEST_CREDENTIALS, component);
        try {
          const ids = [await addEvent(server, 'LOGGED'), await addEvent(server, 'LOGGED')];
          await receiver.until(() => ids.every((id) => receiver.events.some((e) => e.id === id)));
          const last = ids[1]!;
          if (format === 'json') {
            const lines = await waitForValue(
              'the delivered batch logged',
              () => jsonLines(server),
              (ls) => ls.some((l) => l.msg === 'Push: delivered' && l['event_id'] === last),
            );
            const started = find(lines, 'Push: session started', { consumer });
            expect(started, 'session start').to.deep.include({ level: 'info', name: 'evtstream' });
            const session = started?.['session'];
            const delivered = lines.filter(
              (l) => l.msg === 'Push: delivered' && l['consumer'] === consumer,
            );
            expect(
              delivered.every((l) => l['session'] === session && l.level === 'debug'),
            ).to.equal(true);
            expect(delivered.map((l) => l['event_id'])).to.include(last);
          } else {
            await waitFor('the delivered batch logged', () =>
              server.child.stderr.includes(`event_id=${last}`),
            );
            const text = server.child.stderr;
            expect(text).to.match(
              new RegExp(
                `^\\S+Z INFO \\[evtstream\\] Push: session started consumer=${consumer} session=r\\d+ event_id=\\d+$`,
                'm',
              ),
            );
            expect(text).to.match(
              new RegExp(
                `^\\S+Z DEBUG \\[evtstream\\] Push: delivered consumer=${consumer} session=r\\d+ seq=\\d+ event_id=${last} events=\\d+ epoch=\\d+$`,
                'm',
              ),
            );
          }
        } finally {
          receiver.close();
          await server.child.stop();
        }
      });
    }
  },
  ['sqlite'],
);

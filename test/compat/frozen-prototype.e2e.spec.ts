/**
 * NodeExecutor's defaults freeze Object.prototype. An application (fixtures/frozen-app.js, a
 * child process of its own) then still works on every database, whether the prototype is
 * frozen after our modules load or before: mysql2's `long` and futoin-database's `moment`,
 * which cannot load after the freeze, are loaded so that they can. The process must exit by
 * itself once closed: a hang fails the test. The reference is run as a witness: it needs its
 * modules loaded before the freeze.
 */
import { expect } from 'chai';
import path from 'path';
import type { Dialect } from '../../src/storage/sql';
import { Child, freePort, killChildren, requireFreshDist } from '../support/cli';
import { DbFixture, futoinDbEnv, selectedDialects } from '../support/db';
import { needServers } from '../support/servers';
import { OURS, REFERENCE, referenceSchema, type Package } from './support';

const APP = path.join(__dirname, 'fixtures', 'frozen-app.js');

interface Seen {
  frozen?: boolean;
  ids?: string[];
  received?: string[];
  polled?: unknown[];
  failed?: string;
}

async function runFrozenApp(
  pkg: Package,
  dialect: Dialect,
  order: 'first' | 'after',
): Promise<{ code: number | null; seen: Seen; output: string }> {
  const fx = new DbFixture(dialect);
  await fx.create();
  try {
    if (pkg === REFERENCE) await referenceSchema(fx, 'active');
    const env = JSON.stringify(futoinDbEnv(fx.config));
    const child = new Child(process.execPath, [APP, pkg, order, env, String(await freePort())]);
    const { code } = await child.wait(60_000);
    const line = child.stdout.split('\n').find((l) => l.startsWith('{')) ?? '{}';
    return { code, seen: JSON.parse(line) as Seen, output: child.describe() };
  } finally {
    await fx.drop();
  }
}

describe('under a frozen Object.prototype (NodeExecutor defaults)', function () {
  this.timeout(120_000);
  needServers();
  before(requireFreshDist);
  afterEach(killChildren);

  for (const dialect of selectedDialects() as Dialect[]) {
    for (const order of ['first', 'after'] as const) {
      it(`[${dialect}] works with the prototype frozen ${order === 'first' ? 'before' : 'after'} our modules load, and exits once closed`, async function () {
        const { code, seen, output } = await runFrozenApp(OURS, dialect, order);
        expect(seen, output).to.deep.equal({
          frozen: true,
          ids: ['1'],
          received: ['FROZEN', 'FROZEN_XFER'],
          polled: [
            ['1', 'FROZEN', { n: 1 }],
            ['2', 'FROZEN_XFER', { n: 2 }],
          ],
        });
        expect(code, output).to.equal(0);
      });
    }
  }

  it('the reference works frozen after its modules load, and not before (what this guards)', async function () {
    const after = await runFrozenApp(REFERENCE, 'sqlite', 'after');
    expect(after.seen.polled, after.output).to.have.length(2);
    const first = await runFrozenApp(REFERENCE, 'sqlite', 'first');
    expect(first.code, first.output).to.not.equal(0);
    expect(first.output).to.include("Cannot assign to read only property 'toString'");
  });
});

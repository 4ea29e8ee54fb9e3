/**
 * The test harness itself: every spec file has a tier, a stale dist/ is noticed, EVT_TEST_DBS
 * selects databases (never under CI), waits end on what they wait for and say what that was,
 * and pacing bounds catch a retry that came too soon.
 */
import { expect } from 'chai';
import { EventEmitter } from 'events';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { staleDistFiles } from './support/cli';
import { DIALECTS, selectedDialects } from './support/db';
import { expectElapsedAtLeast, expectGapsAtLeast, shortestBackoffs } from './support/pacing';
import { Notifier, waitFor, waitForEvent, waitForValue, withTimeout } from './support/wait';

/** Resolves with the error `p` rejects with; fails if it resolves. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('Expected a rejection');
}

describe('test harness', function () {
  it('every spec file has a tier in its name (unit, int, e2e)', function () {
    const specs: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(file);
        else if (entry.name.endsWith('.spec.ts')) specs.push(path.relative(__dirname, file));
      }
    };
    walk(__dirname);
    expect(specs.length).to.be.greaterThan(10);
    expect(specs.filter((f) => !/\.(unit|int|e2e)\.spec\.ts$/.test(f))).to.deep.equal([]);
  });

  describe('dist/ freshness', function () {
    let root: string;
    const file = (rel: string, mtimeSec: number): void => {
      const full = path.join(root, rel);
      fs.mkdirSync(path.dirname(full), { recursive: true });
      fs.writeFileSync(full, '');
      fs.utimesSync(full, mtimeSec, mtimeSec);
    };
    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-harness-'));
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it('names the sources newer than their compiled file, or without one', function () {
      file('src/a.ts', 1_000);
      file('dist/a.js', 2_000);
      file('src/sub/b.ts', 3_000);
      file('dist/sub/b.js', 2_000);
      file('src/sub/c.ts', 1_000);
      file('src/types.d.ts', 5_000);
      expect(staleDistFiles(root).sort()).to.deep.equal(
        [path.join('sub', 'b.ts'), path.join('sub', 'c.ts')].sort(),
      );
    });

    it('finds nothing when every compiled file is newer', function () {
      file('src/a.ts', 1_000);
      file('dist/a.js', 1_500);
      file('src/sub/b.ts', 1_000);
      file('dist/sub/b.js', 1_500);
      expect(staleDistFiles(root)).to.deep.equal([]);
    });
  });

  describe('EVT_TEST_DBS', function () {
    let ci: string | undefined;
    beforeEach(() => {
      ci = process.env['CI'];
      delete process.env['CI'];
    });
    afterEach(() => {
      if (ci === undefined) delete process.env['CI'];
      else process.env['CI'] = ci;
    });

    it('selects the databases it names, all of them when unset', function () {
      expect(selectedDialects(undefined)).to.deep.equal(DIALECTS);
      expect(selectedDialects('')).to.deep.equal(DIALECTS);
      expect(selectedDialects('mysql, sqlite')).to.deep.equal(['sqlite', 'mysql']);
      expect(() => selectedDialects('sqlite,oracle')).to.throw(/unknown database "oracle"/);
    });

    it('is refused with CI=true, where every database runs', function () {
      process.env['CI'] = 'true';
      expect(() => selectedDialects('sqlite')).to.throw(/CI=true/);
      expect(selectedDialects(undefined)).to.deep.equal(DIALECTS);
    });
  });

  describe('waits', function () {
    it('waitFor resolves with the first truthy value, sync or async', async function () {
      let n = 0;
      expect(await waitFor('n to reach 3', () => (++n >= 3 ? n : 0))).to.equal(3);
      expect(await waitFor('a row', async () => Promise.resolve({ id: '1' }))).to.deep.equal({
        id: '1',
      });
    });

    it('a wait that times out says what it waited for and what it saw last', async function () {
      const err = await rejection(waitFor('the impossible', () => null, 30));
      expect(err.message).to.equal(
        'Timed out after 30 ms waiting for the impossible (last value: null)',
      );
      let seen = 0;
      const described = await rejection(
        waitFor(
          () => `seven (seen ${seen})`,
          () => ((seen = 5), false),
          30,
        ),
      );
      expect(described.message).to.equal('Timed out after 30 ms waiting for seven (seen 5)');
      const valued = await rejection(
        waitForValue(
          'the pointer at 9',
          async () => Promise.resolve('4'),
          (v) => v === '9',
          30,
        ),
      );
      expect(valued.message).to.equal(
        "Timed out after 30 ms waiting for the pointer at 9 (last value: '4')",
      );
    });

    it('a check that throws ends the wait at once', async function () {
      const err = await rejection(
        waitFor('anything', () => {
          throw new Error('broken check');
        }),
      );
      expect(err.message).to.equal('broken check');
    });

    it('waitForEvent resolves with the arguments of the next event; times out without one', async function () {
      const emitter = new EventEmitter();
      const next = waitForEvent<[number, string]>(emitter, 'ready');
      emitter.emit('ready', 1, 'a');
      emitter.emit('ready', 2, 'b');
      expect(await next).to.deep.equal([1, 'a']);
      const err = await rejection(waitForEvent(emitter, 'never', 30));
      expect(err.message).to.equal("Timed out after 30 ms waiting for the event 'never'");
      expect(emitter.listenerCount('never')).to.equal(0);
    });

    it('withTimeout passes a value on, and bounds a promise that never settles', async function () {
      expect(await withTimeout(Promise.resolve(7), 'seven')).to.equal(7);
      const err = await rejection(withTimeout(new Promise(() => undefined), 'an answer', 30));
      expect(err.message).to.equal('Timed out after 30 ms waiting for an answer');
    });

    it('Notifier re-checks its waits at each notify(), not on a timer', async function () {
      const changes = new Notifier();
      let value: string | null = null;
      const wait = changes.until('a value', () => value);
      value = 'x';
      // Without a notify() the wait must still be pending.
      const pending = await Promise.race([wait, Promise.resolve('pending')]);
      expect(pending).to.equal('pending');
      changes.notify();
      expect(await wait).to.equal('x');
      const err = await rejection(changes.until('nothing', () => null, 30));
      expect(err.message).to.equal('Timed out after 30 ms waiting for nothing');
    });
  });

  describe('pacing', function () {
    it('shortestBackoffs halves a doubling ceiling, capped', function () {
      expect(shortestBackoffs(100, 500, 5)).to.deep.equal([50, 100, 200, 250, 250]);
    });

    it('fails on a gap, or a sum of gaps, shorter than the delays before it', function () {
      const delays = [50, 100, 200];
      expectGapsAtLeast('ok', [0, 50, 150, 350], delays);
      expect(() => expectGapsAtLeast('too soon', [0, 50, 100, 350], delays)).to.throw(
        /too soon: ms from attempt 2 to 3/,
      );
      expectElapsedAtLeast('ok', 0, [10, 60, 160, 360], delays);
      expect(() => expectElapsedAtLeast('too soon', 0, [10, 60, 160, 300], delays)).to.throw(
        /too soon: ms from the start to attempt 4/,
      );
    });
  });
});

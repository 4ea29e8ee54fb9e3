/**
 * The one duration grammar and the one time grammar (README, "Durations and times"), and the
 * SQL form of times.
 */
import { expect } from 'chai';
import {
  durationMs,
  MAX_DURATION_MS,
  parseDuration,
  parseInstant,
  parseTime,
  sqlTime,
  sqlTimestamp,
  sqlUtc,
} from '../../src/common/time';

const HOUR = 3_600_000;
const NOW = Date.UTC(2026, 10, 23, 12, 0, 0); // 2026-11-23T12:00:00Z

describe('durations', function () {
  it('reads ms as numbers, and numbers with a unit ms, s, m, h or d', function () {
    expect(durationMs(1500)).to.equal(1500);
    expect(durationMs(0)).to.equal(0);
    expect(durationMs('250')).to.equal(250);
    expect(durationMs('500ms')).to.equal(500);
    expect(durationMs('45s')).to.equal(45_000);
    expect(durationMs('30m')).to.equal(30 * 60_000);
    expect(durationMs('12h')).to.equal(12 * HOUR);
    expect(durationMs('7d')).to.equal(7 * 24 * HOUR);
    expect(durationMs('1.5h')).to.equal(1.5 * HOUR);
    expect(durationMs(' 2 h ')).to.equal(2 * HOUR);
    expect(durationMs(2.7)).to.equal(2);
  });

  it('refuses anything else, negative and beyond the longest', function () {
    for (const bad of [
      '',
      'h',
      '7w',
      '-5s',
      '1e3',
      '1,5h',
      'a while',
      '7d ago',
      -1,
      NaN,
      Infinity,
    ]) {
      expect(durationMs(bad), String(bad)).to.equal(null);
    }
    expect(durationMs(MAX_DURATION_MS)).to.equal(MAX_DURATION_MS);
    expect(durationMs(MAX_DURATION_MS + 1)).to.equal(null);
    expect(durationMs(null)).to.equal(null);
    expect(durationMs(undefined)).to.equal(null);
  });

  it('needs the unit where asked (an age), so a bare number stays something else', function () {
    expect(durationMs('90', true)).to.equal(null);
    expect(durationMs(90, true)).to.equal(null);
    expect(durationMs('90s', true)).to.equal(90_000);
  });

  it('parseDuration throws a TypeError naming what it read', function () {
    expect(parseDuration('12h')).to.equal(12 * HOUR);
    expect(() => parseDuration('soon', '--keep-for')).to.throw(TypeError, /--keep-for.*"soon"/);
  });
});

/** Runs `body` with the process in another time zone, so that "UTC, not local" shows. */
function inZone(tz: string, body: () => void): void {
  const saved = process.env['TZ'];
  process.env['TZ'] = tz;
  try {
    body();
  } finally {
    if (saved === undefined) delete process.env['TZ'];
    else process.env['TZ'] = saved;
  }
}

describe('times', function () {
  it('reads ISO 8601 with a zone as given, and without one as UTC', function () {
    inZone('America/New_York', () => {
      expect(new Date(2026, 10, 23).getTimezoneOffset(), 'zone in effect').to.equal(300);
      expect(parseTime('2026-11-23T10:00:00', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
      expect(parseTime('2026-11-23 10:00', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
    });
    expect(parseTime('2026-11-23T10:00:00Z', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
    expect(parseTime('2026-11-23T12:00:00+02:00', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
    expect(parseTime('2026-11-23T10:00:00', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
    expect(parseTime('2026-11-23 10:00', NOW)).to.equal(Date.UTC(2026, 10, 23, 10));
    expect(parseTime('2026-11-23 10:00:00.250', NOW)).to.equal(
      Date.UTC(2026, 10, 23, 10, 0, 0, 250),
    );
    expect(parseTime('2026-11-23', NOW)).to.equal(Date.UTC(2026, 10, 23));
  });

  it('reads an age (a duration with its unit) as that long before now', function () {
    expect(parseTime('2h', NOW)).to.equal(NOW - 2 * HOUR);
    expect(parseTime('90s', NOW)).to.equal(NOW - 90_000);
    expect(parseTime('1.5d', NOW)).to.equal(NOW - 36 * HOUR);
    expect(parseTime(' 15m ', NOW)).to.equal(NOW - 15 * 60_000);
  });

  it('refuses what is neither', function () {
    for (const bad of ['yesterday', '2026-13-45', '7w', '', '10:00']) {
      expect(parseTime(bad, NOW), bad).to.equal(null);
    }
  });

  it('an instant is never an age', function () {
    expect(parseInstant('2h')).to.equal(null);
    expect(parseInstant('2026-11-23T10:00:00')).to.equal(Date.UTC(2026, 10, 23, 10));
  });

  it('writes the SQL form: UTC, whole seconds', function () {
    expect(sqlUtc(Date.UTC(2026, 10, 23, 2, 36, 2, 999))).to.equal('2026-11-23 02:36:02');
    expect(sqlTime('2026-11-23T04:36:02+02:00', NOW)).to.equal('2026-11-23 02:36:02');
    expect(sqlTime('30m', NOW)).to.equal('2026-11-23 11:30:00');
    expect(sqlTime('soon', NOW)).to.equal(null);
  });

  it('stores event timestamps as the same UTC wall-clock time, never as an age', function () {
    expect(sqlTimestamp('2026-11-23T02:36:02Z')).to.equal('2026-11-23 02:36:02');
    expect(sqlTimestamp('2026-11-23T02:36:02.999Z')).to.equal('2026-11-23 02:36:02');
    expect(sqlTimestamp('2026-11-23T04:36:02+02:00')).to.equal('2026-11-23 02:36:02');
    expect(() => sqlTimestamp('2h')).to.throw(/Not a timestamp/);
    expect(() => sqlTimestamp('yesterday')).to.throw(/Not a timestamp/);
  });
});

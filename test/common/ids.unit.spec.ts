/**
 * Event IDs: decimal strings up to 18 digits, compared without ever becoming JS numbers.
 */
import { expect } from 'chai';
import { cmpIds, isEventId, maxId, minId, NO_EVENT } from '../../src/common/ids';

describe('event IDs', () => {
  it('accepts 1 to 18 decimal digits without a leading zero, as strings only', () => {
    for (const ok of ['1', '9', '10', '123456789012345678', '999999999999999999']) {
      expect(isEventId(ok), ok).to.equal(true);
    }
    const bad: unknown[] = [
      '0',
      '01',
      '1234567890123456789',
      '',
      ' 1',
      '1 ',
      '1\n',
      'a1',
      '1a',
      '-1',
      '+1',
      '1.0',
      '1e3',
      1,
      null,
      undefined,
      ['1'],
    ];
    for (const v of bad) expect(isEventId(v), JSON.stringify(v)).to.equal(false);
  });

  it('orders by value, not by text: a shorter ID is smaller', () => {
    expect(cmpIds('9', '10')).to.be.lessThan(0);
    expect(cmpIds('10', '9')).to.be.greaterThan(0);
    expect(cmpIds('100', '99')).to.be.greaterThan(0);
    expect(cmpIds('12', '12')).to.equal(0);
    expect(cmpIds('12', '13')).to.be.lessThan(0);
    expect(cmpIds('13', '12')).to.be.greaterThan(0);
    expect(cmpIds(NO_EVENT, '1')).to.be.lessThan(0);
    expect(cmpIds('1', NO_EVENT)).to.be.greaterThan(0);
    expect(cmpIds(NO_EVENT, NO_EVENT)).to.equal(0);
  });

  it('tells apart neighbours beyond 2^53, which no double can', () => {
    const a = '123456789012345678';
    const b = '123456789012345679';
    expect(Number(a)).to.equal(Number(b)); // the hazard
    expect(cmpIds(a, b)).to.be.lessThan(0);
    expect(cmpIds(b, a)).to.be.greaterThan(0);
    expect(maxId(a, b)).to.equal(b);
    expect(maxId(b, a)).to.equal(b);
    expect(minId(a, b)).to.equal(a);
    expect(minId(b, a)).to.equal(a);
  });

  it('agrees with BigInt on every pair of a spread of IDs', () => {
    const ids = [
      '1',
      '2',
      '9',
      '10',
      '11',
      '99',
      '100',
      '101',
      '9007199254740993',
      '999999999999999999',
    ];
    for (const a of ids) {
      for (const b of ids) {
        const want = BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0;
        expect(Math.sign(cmpIds(a, b)), `${a} vs ${b}`).to.equal(want);
        expect(maxId(a, b), `max ${a} ${b}`).to.equal(want >= 0 ? a : b);
        expect(minId(a, b), `min ${a} ${b}`).to.equal(want <= 0 ? a : b);
      }
    }
  });
});

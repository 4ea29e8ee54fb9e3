/**
 * The one backoff rule (receivers' reconnects, push retries, the push waker's LISTEN reconnects):
 * the ceiling doubles from minMs up to maxMs, each delay lies in the upper half of the ceiling.
 */
import { expect } from 'chai';
import { Backoff } from '../../src/common/backoff';

describe('Backoff', function () {
  const ceiling = (n: number): number => Math.min(1_000, 100 * 2 ** (n - 1));

  it('draws retry n from the upper half of min * 2^(n-1), capped at max', function () {
    const b = new Backoff(100, 1_000);
    for (let n = 1; n <= 40; n++) {
      for (let k = 0; k < 50; k++) {
        const d = b.delay(n);
        expect(d, `retry ${n}`).to.be.within(ceiling(n) / 2, ceiling(n));
      }
    }
    // Spread over the half, not one value: consumers that failed together do not retry in step.
    const draws = new Set(Array.from({ length: 50 }, () => b.delay(3)));
    expect(draws.size).to.be.greaterThan(5);
  });

  it('counts failures with next() the way delay(n) numbers them, until reset()', function () {
    const b = new Backoff(100, 1_000);
    for (let n = 1; n <= 6; n++) expect(b.next()).to.be.within(ceiling(n) / 2, ceiling(n));
    expect(b.attempts).to.equal(6);
    b.reset();
    expect(b.attempts).to.equal(0);
    expect(b.next()).to.be.within(50, 100);
  });

  it('refuses a range that would retry in a tight loop', function () {
    expect(() => new Backoff(0, 100)).to.throw(RangeError);
    expect(() => new Backoff(200, 100)).to.throw(RangeError);
  });
});

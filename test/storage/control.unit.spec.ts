/**
 * Which push sessions an `end` control message concerns: those of its owner epoch or an older
 * one ('' any), and two ends merged into one while a session is starting.
 */
import { expect } from 'chai';
import { endsSession, widerEnd } from '../../src/storage/coordination/control';

describe('control messages: end', () => {
  it('ends sessions of its epoch or an older one; without an epoch, any', () => {
    expect(endsSession('5', '5')).to.equal(true);
    expect(endsSession('4', '5')).to.equal(true);
    expect(endsSession('6', '5'), 'a session begun after the action').to.equal(false);
    expect(endsSession('10', '9'), 'epochs compare as numbers').to.equal(false);
    expect(endsSession('6', '')).to.equal(true);
    expect(endsSession('6', undefined)).to.equal(true);
  });

  it('merges two ends into the wider: the newer epoch, or any when either is', () => {
    expect(widerEnd('5', '7')).to.equal('7');
    expect(widerEnd('10', '9')).to.equal('10');
    expect(widerEnd('5', '')).to.equal('');
    expect(widerEnd('', '5')).to.equal('');
  });
});

/** The option checks every component and the command line use. */
import { expect } from 'chai';
import { Backoff } from '../../src/common/backoff';
import { checkDelayRange, describeInt, OptionChecks, parseInteger } from '../../src/common/options';

describe('option checks', function () {
  const check = new OptionChecks('push');

  it('integers: the range is named, the type decides the error class', function () {
    expect(check.int('request_max', undefined, 2, { min: 1 })).to.equal(2);
    expect(check.int('request_max', 5, 2, { min: 1 })).to.equal(5);
    expect(() => check.int('request_max', 0, 2, { min: 1 })).to.throw(
      RangeError,
      'push option request_max must be an integer ≥ 1, got 0',
    );
    expect(() => check.int('request_max', 1.5, 2, { min: 1 })).to.throw(RangeError, /got 1.5$/);
    expect(() => check.int('port', 70_000, 1, { min: 0, max: 65_535 })).to.throw(
      RangeError,
      'push option port must be an integer from 0 to 65535, got 70000',
    );
    expect(() => check.int('request_max', '2', 2, { min: 1 })).to.throw(
      TypeError,
      'push option request_max must be an integer ≥ 1, got "2"',
    );
    expect(() => check.int('request_max', null, 2, { min: 1 })).to.throw(TypeError, /got null/);
  });

  it('times in ms: above 0, or from 0 where 0 means something', function () {
    expect(check.ms('call_timeout_ms', 250.5, 1)).to.equal(250.5);
    expect(() => check.ms('call_timeout_ms', 0, 1)).to.throw(
      RangeError,
      'push option call_timeout_ms must be a number of ms > 0, got 0',
    );
    expect(check.ms('skip_store_ms', 0, 1, true)).to.equal(0);
    expect(() => check.ms('skip_store_ms', -1, 1, true)).to.throw(RangeError, /≥ 0, got -1/);
    expect(() => check.ms('skip_store_ms', Infinity, 1, true)).to.throw(RangeError);
    expect(() => check.ms('skip_store_ms', '1s', 1, true)).to.throw(TypeError);
  });

  it('durations: ms or the duration grammar', function () {
    expect(check.duration('keep_for', '7d', 0)).to.equal(7 * 86_400_000);
    expect(check.duration('keep_for', 1500, 0)).to.equal(1500);
    expect(() => check.duration('keep_for', 'a while', 0)).to.throw(
      RangeError,
      /^push option keep_for must be a duration \(ms, or e\.g\. .*\), got "a while"$/,
    );
    expect(() => check.duration('keep_for', -5, 0)).to.throw(RangeError, /got -5$/);
    expect(() => check.duration('keep_for', {}, 0)).to.throw(TypeError);
  });

  it('booleans and choices', function () {
    expect(check.bool('listen', false, true)).to.equal(false);
    expect(() => check.bool('listen', 'no', true)).to.throw(
      TypeError,
      'push option listen must be true or false, got "no"',
    );
    expect(check.oneOf('mode', 'poll', 'auto', ['push', 'poll', 'auto'])).to.equal('poll');
    expect(() => check.oneOf('mode', 'pull', 'auto', ['push', 'poll', 'auto'])).to.throw(
      RangeError,
      'push option mode must be one of push, poll, auto, got "pull"',
    );
  });

  it('delay ranges: a first delay above 0, a largest one no shorter', function () {
    checkDelayRange('push', 'retry_min_ms', 'retry_max_ms', 100, 100);
    for (const [min, max] of [
      [0, 100],
      [200, 100],
      [NaN, 100],
      [100, Infinity],
    ] as const) {
      expect(() => checkDelayRange('push', 'retry_min_ms', 'retry_max_ms', min, max)).to.throw(
        RangeError,
        /^push options retry_min_ms and retry_max_ms must be delays in ms with 0 < retry_min_ms ≤ retry_max_ms, got /,
      );
    }
    expect(() => new Backoff(0, 100)).to.throw(RangeError, /Backoff options minMs and maxMs/);
  });

  it('command-line integers: decimal digits within the range', function () {
    expect(parseInteger('8080', { min: 0, max: 65_535 })).to.equal(8080);
    expect(parseInteger('0', { min: 0, max: 65_535 })).to.equal(0);
    for (const bad of ['', ' 1', '1.0', '1e3', '0x10', '70000', '-1']) {
      expect(parseInteger(bad, { min: 0, max: 65_535 }), bad).to.equal(null);
    }
    expect(parseInteger('-3', { min: -5 })).to.equal(-3);
    expect(parseInteger('99999999999999999999', { min: 0 })).to.equal(null);
    expect(describeInt({ min: 1, max: 10 })).to.equal('an integer from 1 to 10');
    expect(describeInt({ min: 1 })).to.equal('an integer ≥ 1');
  });
});

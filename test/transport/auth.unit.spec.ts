/**
 * The pieces of authentication on their own: the per-address limit on failures (with a clock
 * the test moves), the keys addresses count under, the users parser's refusals, and the fields
 * failed authentications are logged with.
 */
import { expect } from 'chai';
import type { LogFields, Logger } from '../../src/common/log';
import { parseUsers, UsersSecurityProvider } from '../../src/transport/auth';
import { addressKey, FailureLimiter } from '../../src/transport/failure-limit';

function limiter(limit = 3, windowMs = 1_000, maxKeys = 100) {
  const clock = { t: 0 };
  return { clock, limit: new FailureLimiter(limit, windowMs, () => clock.t, maxKeys) };
}

describe('FailureLimiter', function () {
  // Breaking change it catches: refusing from the limit-th failure on, not after it.
  it('refuses a key once it has `limit` failures in its window, not before', function () {
    const { limit } = limiter(3);
    expect(limit.refuses('a')).to.equal(false);
    expect([limit.failed('a'), limit.failed('a')]).to.deep.equal([1, 2]);
    expect(limit.refuses('a'), 'two of three').to.equal(false);
    expect(limit.failed('a')).to.equal(3);
    expect(limit.refuses('a')).to.equal(true);
    expect(limit.refuses('b'), 'other keys are not touched').to.equal(false);
  });

  // Breaking change it catches: refusals that count as failures (extending the block for ever).
  it('lets the window end at its time, refusals or not: then the key starts afresh', function () {
    const { clock, limit } = limiter(2, 1_000);
    limit.failed('a');
    clock.t = 400;
    limit.failed('a');
    for (clock.t = 400; clock.t < 1_000; clock.t += 100)
      expect(limit.refuses('a'), `at ${clock.t}`).to.equal(true);
    clock.t = 1_000;
    expect(limit.refuses('a'), 'the window opened at 0 has ended').to.equal(false);
    expect(limit.failed('a'), 'counted afresh').to.equal(1);
    expect(limit.refuses('a')).to.equal(false);
  });

  it('keeps at most maxKeys windows: the expired go first, then the oldest', function () {
    const { clock, limit } = limiter(1, 1_000, 3);
    limit.failed('a');
    clock.t = 100;
    limit.failed('b');
    limit.failed('c');
    clock.t = 1_050;
    limit.failed('d'); // 'a' has expired: it makes room
    expect(limit.size).to.equal(3);
    expect([limit.refuses('b'), limit.refuses('c'), limit.refuses('d')]).to.deep.equal([
      true,
      true,
      true,
    ]);
    limit.failed('e'); // nothing expired: the oldest, 'b', goes
    expect(limit.size).to.equal(3);
    expect(limit.refuses('b')).to.equal(false);
    expect(limit.refuses('e')).to.equal(true);
  });
});

describe('addressKey', function () {
  it('counts IPv4 addresses as they are, mapped ones too, and IPv6 by their /64', function () {
    expect(addressKey('192.0.2.7')).to.equal('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).to.equal('192.0.2.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).to.equal('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).to.equal('2001:db8:0:0::/64');
    expect(addressKey('fe80::1%eth0')).to.equal('fe80:0:0:0::/64');
    expect(addressKey('::1')).to.equal('0:0:0:0::/64');
    expect(addressKey(undefined)).to.equal('unknown');
    expect(addressKey('')).to.equal('unknown');
  });
});

describe('parseUsers', function () {
  it('reads name:secret lines (secrets may hold ":"), skipping comments and blank lines', function () {
    const users = parseUsers('# users\n alice:a-secret \n\nbob:b:c:d\r\n');
    expect([...users]).to.deep.equal([
      ['alice', 'a-secret'],
      ['bob', 'b:c:d'],
    ]);
    expect([...parseUsers('alice:x,bob:y', /,/)]).to.deep.equal([
      ['alice', 'x'],
      ['bob', 'y'],
    ]);
  });

  // Breaking change it catches: the former message quoted the line, secret and all.
  it('refuses a malformed entry naming its line, never showing a secret', function () {
    const cases: [string, RegExp | null, RegExp][] = [
      ['alice:ok\nnocolon-TOPSECRET\n', null, /^line 2: expected name:secret, found no ':'$/],
      ['al ice:TOPSECRET', null, /^line 1: invalid user name "al ice"/],
      ['alice:', null, /^line 1: user "alice" has an empty secret$/],
      ['alice:x,TOPSECRET', /,/, /^entry 2: expected name:secret/],
    ];
    for (const [text, separator, message] of cases) {
      let error: Error | null = null;
      try {
        parseUsers(text, separator ?? undefined);
      } catch (e) {
        error = e as Error;
      }
      expect(error?.message, text).to.match(message);
      expect(error?.message, text).not.to.include('TOPSECRET');
    }
  });
});

describe('UsersSecurityProvider logs', function () {
  it('a failed authentication with the client, the user if known and the count as fields', function () {
    const lines: { msg: string; fields: LogFields | undefined }[] = [];
    const record = (msg: string, fields?: LogFields): void => {
      lines.push({ msg, fields });
    };
    const log: Logger = { debug: record, info: record, warn: record, error: record };
    const users = new Map([['alice', 'TOPSECRET']]);
    const auth = new UsersSecurityProvider(users, new Map(), { failure_limit: 2, log });
    auth.failed('10.0.0.1', 'alice');
    auth.failed('10.0.0.1', 'TOPSECRET');
    auth.failed('10.0.0.1', 'alice');
    expect(lines.map((l) => l.fields)).to.deep.equal([
      { client: '10.0.0.1', user: 'alice', failures: 1 },
      { client: '10.0.0.1', user: undefined, failures: 2, limited: true },
    ]);
    expect(lines[1]!.msg).to.match(/the limit; authentications from 10\.0\.0\.1 are refused/);
    expect(JSON.stringify(lines)).not.to.include('TOPSECRET');
  });
});

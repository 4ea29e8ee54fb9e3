/**
 * Event data and type checks at the door: what JSON cannot carry unchanged is refused with a
 * FutoIn InvalidRequest, before anything is stored.
 */
import { expect } from 'chai';
import { EvtError } from '../../src/common/errors';
import {
  assertEncodable,
  assertEventType,
  encodeEventData,
  MAX_DATA_DEPTH,
} from '../../src/generation/encode';

/** The FutoIn error code and its message of what `f` throws. */
function refusal(f: () => unknown): { code: string; info: string } {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(EvtError);
    const e = err as EvtError;
    return { code: e.code, info: e.info };
  }
  throw new Error('expected a refusal');
}

/** `levels` arrays, each inside the next. */
const nested = (levels: number): unknown => {
  let v: unknown = [];
  for (let i = 1; i < levels; i++) v = [v];
  return v;
};

describe('event data encoding', () => {
  it('takes what JSON carries unchanged, down to the depth limit', () => {
    const fine: unknown[] = [
      null,
      true,
      false,
      0,
      -0.5,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      1.5e-300,
      0.1,
      '',
      'ünïcode 😀',
      [],
      {},
      { a: [1, { b: null }], c: 'x' },
      nested(MAX_DATA_DEPTH),
    ];
    for (const d of fine) expect(() => assertEncodable(d), JSON.stringify(d)).to.not.throw();
  });

  it('refuses what JSON would change or lose, at any depth', () => {
    const cases: Array<[unknown, RegExp]> = [
      [Number.MAX_SAFE_INTEGER + 1, /beyond 2\^53/],
      // A huge number is an integer to JS: JSON text like 1e300 was rounded before it came.
      [1e300, /beyond 2\^53/],
      [-Number.MAX_SAFE_INTEGER - 1, /beyond 2\^53/],
      [{ deep: [1, [Number.MAX_SAFE_INTEGER + 2]] }, /beyond 2\^53/],
      [NaN, /number JSON cannot carry/],
      [Infinity, /number JSON cannot carry/],
      [{ a: -Infinity }, /number JSON cannot carry/],
      [undefined, /undefined/],
      [{ a: undefined }, /undefined/],
      [[() => 1], /function/],
      [{ s: Symbol('x') }, /symbol/],
      [[1n], /bigint/],
      [nested(MAX_DATA_DEPTH + 1), new RegExp(`deeper than ${MAX_DATA_DEPTH}`)],
    ];
    for (const [d, why] of cases) {
      const r = refusal(() => assertEncodable(d));
      expect(r.code, String(why)).to.equal('InvalidRequest');
      expect(r.info, String(why)).to.match(why);
    }
  });

  it('stops a cycle at the depth limit instead of looping', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    expect(refusal(() => assertEncodable(cycle)).info).to.match(/deeper than/);
  });

  it('encodes to JSON and counts its bytes, refusing more than the limit', () => {
    const data = { s: 'é' };
    const json = JSON.stringify(data);
    const bytes = Buffer.byteLength(json);
    expect(bytes).to.equal(json.length + 1); // 'é' takes two bytes
    expect(encodeEventData(data, bytes)).to.deep.equal({ json, bytes });
    const over = refusal(() => encodeEventData(data, bytes - 1));
    expect(over.code).to.equal('InvalidRequest');
    expect(over.info).to.equal(
      `Event data is ${bytes} bytes of JSON; this service accepts up to ${bytes - 1}`,
    );
    expect(refusal(() => encodeEventData(NaN, 100)).code).to.equal('InvalidRequest');
  });

  it('accepts event types of 1 to 16 of A-Z and _, and refuses the rest', () => {
    for (const t of ['A', 'USER_CREATED', 'ABCDEFGHIJKLMNOP', '_']) {
      expect(() => assertEventType(t), t).to.not.throw();
    }
    for (const t of ['', 'a', 'ABCDEFGHIJKLMNOPQ', 'A1', 'A-B', ' A', 1, null]) {
      const r = refusal(() => assertEventType(t));
      expect(r.code, String(t)).to.equal('InvalidRequest');
      expect(r.info).to.equal(
        `Invalid event type ${JSON.stringify(t)}: expected 1-16 of A-Z and _`,
      );
    }
  });
});

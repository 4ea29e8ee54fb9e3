/** Secret comparison for FTN3 credentials and /metrics' Basic auth. */
import { expect } from 'chai';
import crypto from 'crypto';
import { sameSecret } from '../../src/common/secret';

describe('sameSecret', function () {
  it('accepts the configured secret only', function () {
    expect(sameSecret('s3cret', 's3cret')).to.equal(true);
    expect(sameSecret('s3cre', 's3cret')).to.equal(false);
    expect(sameSecret('s3cret!', 's3cret')).to.equal(false);
    expect(sameSecret('', 's3cret')).to.equal(false);
    expect(sameSecret('S3cret', 's3cret')).to.equal(false);
    expect(sameSecret('é', 'é')).to.equal(true);
  });

  it('digests a configured secret once, then only what callers present', function () {
    const original = crypto.createHash;
    let hashes = 0;
    crypto.createHash = (...args: Parameters<typeof original>) => {
      hashes++;
      return original(...args);
    };
    try {
      const known = `known-${Math.random()}`;
      sameSecret('a', known);
      expect(hashes, 'first comparison').to.equal(2);
      hashes = 0;
      expect(sameSecret(known, known)).to.equal(true);
      expect(hashes, 'later comparisons').to.equal(1);
    } finally {
      crypto.createHash = original;
    }
  });
});

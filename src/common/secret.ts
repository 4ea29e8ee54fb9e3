import crypto from 'crypto';

const sha256 = (s: string): Buffer => crypto.createHash('sha256').update(s, 'utf8').digest();

/** Digests of the configured secrets, worked out once each rather than at every call. */
const knownDigests = new Map<string, Buffer>();
/** Bounded: configured secrets are few; anything beyond is just not cached. */
const MAX_CACHED = 10_000;

/**
 * Whether the secret a caller `presented` is the configured secret `known`. Digests of both are
 * compared, so neither the length nor the content leaks through timing.
 */
export function sameSecret(presented: string, known: string): boolean {
  let digest = knownDigests.get(known);
  if (!digest) {
    digest = sha256(known);
    if (knownDigests.size < MAX_CACHED) knownDigests.set(known, digest);
  }
  return crypto.timingSafeEqual(sha256(presented), digest);
}

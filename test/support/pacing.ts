/**
 * Assertions on the pace of retries that hold on a loaded machine: lower bounds computed from the
 * configured minimum delays, never an upper bound or a count within a window.
 */
import { expect } from 'chai';

/** A timer may fire up to this much early against performance.now() (millisecond rounding). */
const TIMER_SLACK_MS = 1;

/**
 * The shortest delays Backoff(minMs, maxMs) can draw before retries 1..count
 * (src/common/backoff.ts): half of a ceiling that starts at minMs and doubles up to maxMs.
 */
export function shortestBackoffs(minMs: number, maxMs: number, count: number): number[] {
  return Array.from({ length: count }, (_v, i) => Math.min(maxMs, minMs * 2 ** i) / 2);
}

/**
 * Expects each gap between consecutive `times` to be at least its delay: times[k + 1] - times[k]
 * >= delays[k]. For times taken where the attempts start, so each gap holds a whole delay.
 */
export function expectGapsAtLeast(what: string, times: number[], delays: number[]): void {
  for (let k = 0; k + 1 < times.length && k < delays.length; k++) {
    const gap = times[k + 1]! - times[k]!;
    expect(gap, `${what}: ms from attempt ${k + 1} to ${k + 2}`).to.be.at.least(
      delays[k]! - TIMER_SLACK_MS,
    );
  }
}

/**
 * Expects attempt k + 1 (seen at times[k], at or after it happened) to come at least the sum of
 * the delays before it after `start`, a time taken before the first attempt: for attempts seen
 * only through events, which may be handled late (a late handler can shorten one gap, never this
 * sum).
 */
export function expectElapsedAtLeast(
  what: string,
  start: number,
  times: number[],
  delays: number[],
): void {
  let sum = 0;
  for (let k = 1; k < times.length && k <= delays.length; k++) {
    sum += delays[k - 1]! - TIMER_SLACK_MS;
    expect(times[k]! - start, `${what}: ms from the start to attempt ${k + 1}`).to.be.at.least(sum);
  }
}

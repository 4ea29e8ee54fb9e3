/** Moved to src/common/backoff.ts (the push service uses it too); kept for existing imports. */
export { Backoff } from '../common/backoff';

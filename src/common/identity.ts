import crypto from 'crypto';
import type { RequestInfo } from 'futoin-executor';
import { ErrorCode, EvtError } from './errors';

/** evt_consumers.ident is VARCHAR(64). */
const IDENT_MAX = 64;

/**
 * A consumer is the caller's FTN8 local user ID plus the component name: `user:component`. A
 * user ID too long for the column is replaced by `~` and 22 characters of its SHA-256, so two
 * different users never share a consumer and nothing is cut.
 */
export function consumerIdent(userId: string, component: string): string {
  const plain = `${userId}:${component}`;
  if (plain.length <= IDENT_MAX) return plain;
  const digest = crypto.createHash('sha256').update(userId).digest('base64url').slice(0, 22);
  return `~${digest}:${component}`;
}

/** The calling user's local ID; FTN18 calls are never anonymous. */
export function callerId(reqinfo: RequestInfo): string {
  const user = reqinfo.info.USER_INFO;
  if (!user) throw new EvtError(ErrorCode.SecurityError, 'Anonymous calls are not allowed');
  return String(user.localID());
}

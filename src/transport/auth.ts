import crypto from 'crypto';
import fs from 'fs';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { RequestInfo, SecurityProvider } from 'futoin-executor';

/** Client users: name → secret. */
export type Users = Map<string, string>;

const USER_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * Parses `name:secret` entries, one per line (users file, `#` comments) or comma-separated
 * (EVTSTREAM_USERS). A secret may itself contain `:`.
 */
export function parseUsers(text: string, separator: RegExp = /\r?\n/): Users {
  const users: Users = new Map();
  for (const raw of text.split(separator)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const at = line.indexOf(':');
    const name = at > 0 ? line.slice(0, at) : '';
    const secret = at > 0 ? line.slice(at + 1) : '';
    if (!USER_RE.test(name) || !secret) {
      throw new Error(
        `Invalid user entry "${line.slice(0, 40)}": expected name:secret (name of A-Z a-z 0-9 _ . @ -)`,
      );
    }
    users.set(name, secret);
  }
  return users;
}

export const readUsersFile = (file: string): Users => parseUsers(fs.readFileSync(file, 'utf8'));
export const parseUsersEnv = (value: string): Users => parseUsers(value, /,/);

function sameSecret(a: string, b: string): boolean {
  // Compare digests, so neither the length nor the content leaks through timing.
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db);
}

/**
 * FTN3 basic authentication (`sec: "user:secret"`) against a fixed set of users. The user name
 * is the caller's FTN8 local ID, so it names consumers (`user:component`) the same way after
 * every restart. A wrong or unknown user or secret is a SecurityError.
 */
export class UsersSecurityProvider extends SecurityProvider {
  constructor(private readonly users: Users) {
    super();
  }

  override checkAuth(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    _reqmsg: Record<string, unknown>,
    sec: string[],
  ): void {
    const [user = '', ...rest] = sec;
    const secret = rest.join(':');
    const expected = this.users.get(user);
    // Still compare when the user is unknown, so unknown and known users take the same time.
    const ok = sameSecret(secret, expected ?? '\u0000no-such-user') && expected !== undefined;
    if (!ok || user.startsWith('-')) as.error('SecurityError', 'Invalid credentials');
    this._setUser(as, reqinfo, RequestInfo.SL_SAFE_OPS, { local_id: user, global_id: user });
  }
}

import fs from 'fs';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { RequestInfo } from 'futoin-executor';
import { SpecTools } from 'futoin-invoker';
import { ErrorCode } from '../common/errors';
import { sameSecret } from '../common/secret';
import { CallerSettingProvider } from '../futoin/security';

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

/** Requests authenticated by HMAC: their responses are signed the same way. */
const hmacSigners = new WeakMap<RequestInfo, HmacSigner>();

interface HmacSigner {
  algo: string;
  secret: string;
}

/**
 * FTN3 authentication against a fixed set of users and admins, both forms futoin-invoker clients
 * use:
 * basic (`sec: "user:secret"`) and message signatures (`-hmac:user:algo:sig`, the client's
 * `hmacKey` being the base64 of the secret; responses are signed back). The user name is the
 * caller's FTN8 local ID, so it names consumers (`user:component`) the same way after every
 * restart. A wrong or unknown user, secret or signature is a SecurityError.
 *
 * Users get the SafeOps security level; admins get PrivilegedOps, the admin right that
 * ftn18es.admin requires (see AdminService), and can use everything a user can. A name in both
 * sets is an admin with the admin's secret.
 */
export class UsersSecurityProvider extends CallerSettingProvider {
  private readonly users: Users;
  private readonly admins: ReadonlySet<string>;

  constructor(users: Users, admins: Users = new Map()) {
    super();
    this.users = new Map([...users, ...admins]);
    this.admins = new Set(admins.keys());
  }

  override checkAuth(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    reqmsg: Record<string, unknown>,
    sec: string[],
  ): void {
    if (sec[0] === '-hmac') {
      this.checkHmac(as, reqinfo, reqmsg, sec);
      return;
    }
    const [user = '', ...rest] = sec;
    const secret = rest.join(':');
    const expected = this.users.get(user);
    // Still compare when the user is unknown, so unknown and known users take the same time.
    const ok = sameSecret(secret, expected ?? '\u0000no-such-user') && expected !== undefined;
    if (!ok || user.startsWith('-')) as.error(ErrorCode.SecurityError, 'Invalid credentials');
    this.setUser(as, reqinfo, user);
  }

  private checkHmac(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    reqmsg: Record<string, unknown>,
    sec: string[],
  ): void {
    const [, user = '', algo = '', sig = ''] = sec;
    const secret = this.users.get(user);
    let ok = false;
    if (secret !== undefined && sec.length === 4) {
      const raw = SpecTools.getRawAlgo(as, algo);
      ok = SpecTools.checkHMAC(
        SpecTools.genHMACRaw(raw, secret, reqmsg),
        Buffer.from(sig, 'base64'),
      );
      if (ok) hmacSigners.set(reqinfo, { algo: raw, secret });
    }
    if (!ok) as.error(ErrorCode.SecurityError, 'Invalid credentials');
    this.setUser(as, reqinfo, user);
  }

  private setUser(as: AsyncSteps, reqinfo: RequestInfo, user: string): void {
    const level = this.admins.has(user) ? RequestInfo.SL_PRIVILEGED_OPS : RequestInfo.SL_SAFE_OPS;
    this.setCaller(as, reqinfo, level, { local_id: user, global_id: user });
  }

  override signAuto(
    _as: AsyncSteps,
    reqinfo: RequestInfo,
    rspmsg: Record<string, unknown>,
  ): boolean {
    const signer = hmacSigners.get(reqinfo);
    if (!signer) return false;
    rspmsg['sec'] = SpecTools.genHMACRaw(signer.algo, signer.secret, rspmsg).toString('base64');
    return true;
  }

  override isSigned(reqinfo: RequestInfo): boolean {
    return hmacSigners.has(reqinfo);
  }
}

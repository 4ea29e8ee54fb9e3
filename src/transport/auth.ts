import type { AsyncSteps } from 'futoin-asyncsteps';
import { RequestInfo } from 'futoin-executor';
import { SpecTools } from 'futoin-invoker';
import { ErrorCode } from '../common/errors';
import type { Logger } from '../common/log';
import { OptionChecks } from '../common/options';
import { sameSecret } from '../common/secret';
import { formatDuration } from '../common/time';
import { CallerSettingProvider } from '../futoin/security';
import { addressKey, FailureLimiter } from './failure-limit';

/** Client users: name → secret. */
export type Users = Map<string, string>;

const USER_RE = /^[A-Za-z0-9_.@-]{1,64}$/;

/**
 * Parses `name:secret` entries, one per line (users file, `#` comments) or comma-separated
 * (EVTSTREAM_USERS). A secret may itself contain `:`. A malformed entry throws, naming its
 * line (or place in the list) and never showing its secret.
 */
export function parseUsers(text: string, separator: RegExp = /\r?\n/): Users {
  const users: Users = new Map();
  const place = separator.test('\n') ? 'line' : 'entry';
  text.split(separator).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const at = line.indexOf(':');
    const where = `${place} ${i + 1}`;
    if (at < 0) throw new Error(`${where}: expected name:secret, found no ':'`);
    const name = line.slice(0, at);
    if (!USER_RE.test(name))
      throw new Error(
        `${where}: invalid user name ${JSON.stringify(name.slice(0, 64))} (1 to 64 of A-Z a-z 0-9 _ . @ -)`,
      );
    if (at === line.length - 1) throw new Error(`${where}: user "${name}" has an empty secret`);
    users.set(name, line.slice(at + 1));
  });
  return users;
}

export const parseUsersEnv = (value: string): Users => parseUsers(value, /,/);

/** Defaults of UsersSecurityProvider's limit on failed authentications. */
export const AUTH_DEFAULTS = Object.freeze({
  /** Failed authentications from one client address within the window, before DefenseRejected. */
  failure_limit: 20,
  /** The window: it opens at an address's first failure and lasts this long. */
  failure_window_ms: 60_000,
});

export interface AuthOptions {
  /** See AUTH_DEFAULTS. */
  failure_limit?: number;
  failure_window_ms?: number;
  /** Where failed authentications are reported (never with the secret). */
  log?: Logger;
}

/** Authentications refused since the start: wrong credentials, and refusals over the limit. */
export interface AuthFailureCounts {
  invalid: number;
  limited: number;
}

/** The limit on failed authentications, as other routes (HTTP Basic auth of /metrics) use it. */
export interface AuthLimit {
  /** Whether `address` is over the limit now (counted as a refusal when it is). */
  refuses(address: string | null | undefined): boolean;
  /** A failed authentication from `address`, as `user` (null: not a known user); logged. */
  failed(address: string | null | undefined, user: string | null): void;
  readonly counts: Readonly<AuthFailureCounts>;
}

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
 *
 * Failed authentications are limited per client address (IPv6: per /64): past `failure_limit`
 * within `failure_window_ms`, every authentication from there gets DefenseRejected until the
 * window ends, so guessing secrets over the wire is slow; each failure is logged (the address,
 * the user if it exists, never the secret), reaching the limit once, and all are counted.
 */
export class UsersSecurityProvider extends CallerSettingProvider implements AuthLimit {
  private readonly users: Users;
  private readonly admins: ReadonlySet<string>;
  private readonly limiter: FailureLimiter;
  private readonly log: Logger | undefined;
  readonly counts: AuthFailureCounts = { invalid: 0, limited: 0 };

  constructor(users: Users, admins: Users = new Map(), options: AuthOptions = {}) {
    super();
    const check = new OptionChecks('auth');
    const limit = check.int('failure_limit', options.failure_limit, AUTH_DEFAULTS.failure_limit, {
      min: 1,
    });
    const windowMs = check.ms(
      'failure_window_ms',
      options.failure_window_ms,
      AUTH_DEFAULTS.failure_window_ms,
    );
    this.users = new Map([...users, ...admins]);
    this.admins = new Set(admins.keys());
    this.limiter = new FailureLimiter(limit, windowMs);
    this.log = options.log;
  }

  refuses(address: string | null | undefined): boolean {
    if (!this.limiter.refuses(addressKey(address))) return false;
    this.counts.limited++;
    return true;
  }

  failed(address: string | null | undefined, user: string | null): void {
    const key = addressKey(address);
    const n = this.limiter.failed(key);
    this.counts.invalid++;
    const known = user !== null && this.users.has(user);
    const who = known ? `user "${user}"` : 'an unknown user';
    const window = formatDuration(this.limiter.windowMs);
    // An unknown name may be a secret typed into the wrong field: only known users are named.
    const fields = { client: key, user: known ? user : undefined, failures: n };
    if (n < this.limiter.limit) {
      this.log?.warn(`Failed authentication from ${key} as ${who} (${n} within ${window})`, fields);
    } else if (n === this.limiter.limit) {
      this.log?.warn(
        `Failed authentication from ${key} as ${who}: ${n} within ${window}, the limit;` +
          ` authentications from ${key} are refused (DefenseRejected) for the rest of the ${window}`,
        { ...fields, limited: true },
      );
    }
  }

  /** Refuses callers over the limit; counts a failure and raises SecurityError for bad credentials. */
  private guard(as: AsyncSteps, reqinfo: RequestInfo, user: string, ok: boolean): void {
    if (!ok) {
      this.failed(reqinfo.info.CLIENT_ADDR?.host, user);
      as.error(ErrorCode.SecurityError, 'Invalid credentials');
    }
  }

  private refuseOverLimit(as: AsyncSteps, reqinfo: RequestInfo): void {
    if (this.refuses(reqinfo.info.CLIENT_ADDR?.host))
      as.error(ErrorCode.DefenseRejected, 'Too many failed authentications: try again later');
  }

  override checkAuth(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    reqmsg: Record<string, unknown>,
    sec: string[],
  ): void {
    this.refuseOverLimit(as, reqinfo);
    if (sec[0] === '-hmac') {
      this.checkHmac(as, reqinfo, reqmsg, sec);
      return;
    }
    const [user = '', ...rest] = sec;
    const secret = rest.join(':');
    const expected = this.users.get(user);
    // Still compare when the user is unknown, so unknown and known users take the same time.
    const ok = sameSecret(secret, expected ?? '\u0000no-such-user') && expected !== undefined;
    this.guard(as, reqinfo, user, ok && !user.startsWith('-'));
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
    this.guard(as, reqinfo, user, ok);
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

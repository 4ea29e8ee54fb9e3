import type { AsyncSteps } from 'futoin-asyncsteps';
import { RequestInfo, type Executor } from 'futoin-executor';
import PingService from 'futoin-executor/PingService';
import { ADMIN_IFACE, ADMIN_VERSION, SPEC_DIRS_ALL } from '../common/constants';
import { awaitSteps, ErrorCode, EvtError } from '../common/errors';
import { callerId } from '../common/identity';
import type { MoveTarget } from '../common/faces/AdminFace';
import { requestedIface } from '../delivery/limits';
import { requestSourceOf } from '../transport/origin';
import type { AdminCore } from './admin';

/** Security levels (FTN3/FTN8, as futoin-executor sets them) that carry the admin right. */
const ADMIN_LEVELS: ReadonlySet<string> = new Set([
  RequestInfo.SL_PRIVILEGED_OPS,
  RequestInfo.SL_EXCEPTIONAL_OPS,
  RequestInfo.SL_SYSTEM,
]);

/** Whether the caller has the admin right (in-process calls have the System level). */
export const hasAdminRight = (reqinfo: RequestInfo): boolean =>
  reqinfo.info.USER_INFO !== null && ADMIN_LEVELS.has(reqinfo.info.SECURITY_LEVEL);

/** What ftn18es.admin 1.0 knew of the recorded actions (its MoveAction). */
const MOVE_ACTIONS_1_0: ReadonlySet<string> = new Set(['move', 'drop']);

/**
 * ftn18es.admin on an AdminCore. Every call needs the admin right: users the security provider
 * authenticates at PrivilegedOps or above (see UsersSecurityProvider's admins) and in-process
 * callers; anybody else gets SecurityError, before anything is read.
 *
 * Against cross-site requests (a page elsewhere making an admin's browser call): a call whose
 * HTTP request or WebSocket upgrade carries the Origin of another site is refused, and so is any
 * call in the URL form (`/ftn18es.admin/1.1/dropConsumer?...`), where a browser adds credentials
 * it knows (HTTP Basic auth, as /metrics asks for) by itself. Clients that are not browsers send
 * no Origin; the console sends its calls as messages over a WebSocket from the service's origin.
 */
export class AdminService extends PingService {
  constructor(private readonly core: () => Promise<AdminCore>) {
    super();
  }

  /** Serves ftn18es.admin on `executor` (the core may be opened on first use). */
  static serve(
    as: AsyncSteps,
    executor: Executor,
    core: AdminCore | (() => Promise<AdminCore>),
  ): AdminService {
    const impl = new AdminService(typeof core === 'function' ? core : () => Promise.resolve(core));
    executor.register(as, `${ADMIN_IFACE}:${ADMIN_VERSION}`, impl, SPEC_DIRS_ALL);
    return impl;
  }

  /** Runs `work` for an admin caller; its result (an object of named results) is the answer. */
  private run(
    as: AsyncSteps,
    reqinfo: RequestInfo,
    work: (core: AdminCore, by: string) => Promise<Record<string, unknown>>,
  ): void {
    const source = requestSourceOf(reqinfo.info.RAW_REQUEST);
    if (source?.urlForm) {
      as.error(
        ErrorCode.SecurityError,
        'ftn18es.admin takes no calls in the URL form: send FutoIn messages (a POST body or over a WebSocket)',
      );
    }
    if (source && !source.sameOrigin) {
      as.error(
        ErrorCode.SecurityError,
        `Admin calls from another origin (${source.origin ?? 'none'}) are refused`,
      );
    }
    if (!hasAdminRight(reqinfo)) {
      as.error(ErrorCode.SecurityError, 'The admin right is required');
    }
    const by = callerId(reqinfo);
    awaitSteps(as, async () => {
      const result = await work(await this.core(), by);
      const out = reqinfo.result() as Record<string, unknown>;
      for (const [k, v] of Object.entries(result)) out[k] = v;
    });
  }

  listConsumers(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { lag_limit } = reqinfo.params() as { lag_limit: number };
    this.run(as, reqinfo, async (core) => ({ consumers: await core.listConsumers(lag_limit) }));
  }

  dropConsumer(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { ident, reason } = reqinfo.params() as { ident: string; reason: string };
    this.run(as, reqinfo, async (core, by) => ({
      dropped: await core.dropConsumer(ident, by, reason),
    }));
  }

  moveConsumer(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as {
      ident: string;
      to: MoveTarget;
      id: string | null;
      time: string | null;
      reason: string;
      dry_run?: boolean;
    };
    this.run(as, reqinfo, async (core, by) => {
      const moved = await core.moveConsumer(p.ident, p.to, by, {
        id: p.id,
        time: p.time,
        reason: p.reason,
        dryRun: p.dry_run === true,
      });
      return { ...moved };
    });
  }

  /** Callers of 1.0 get the moves and drops only: their MoveAction knows no other action. */
  listMoves(as: AsyncSteps, reqinfo: RequestInfo): void {
    const { ident, limit } = reqinfo.params() as { ident: string | null; limit: number };
    const only10 = requestedIface(reqinfo).version === '1.0';
    this.run(as, reqinfo, async (core) => {
      const moves = await core.listMoves(ident, limit);
      return { moves: only10 ? moves.filter((m) => MOVE_ACTIONS_1_0.has(m.action)) : moves };
    });
  }

  setMaxAttempts(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as { ident: string; max_attempts: number; reason: string };
    this.run(as, reqinfo, (core, by) =>
      core.setMaxAttempts(p.ident, p.max_attempts, by, p.reason).then((r) => ({ ...r })),
    );
  }

  listParked(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as {
      ident: string | null;
      include_resolved: boolean;
      limit: number;
    };
    this.run(as, reqinfo, async (core) => ({
      parked: await core.listParked(p.ident, { all: p.include_resolved, limit: p.limit }),
    }));
  }

  replayParked(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as { ident: string; event_id: string | null; reason: string };
    this.run(as, reqinfo, (core, by) =>
      core.replayParked(p.ident, p.event_id, by, p.reason).then((r) => ({ ...r })),
    );
  }

  skipParked(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as { ident: string; event_id: string | null; reason: string };
    this.run(as, reqinfo, (core, by) =>
      core.skipParked(p.ident, p.event_id, by, p.reason).then((r) => ({ ...r })),
    );
  }

  stats(as: AsyncSteps, reqinfo: RequestInfo): void {
    this.run(as, reqinfo, async (core) => ({ stats: await core.stats() }));
  }

  readEvents(as: AsyncSteps, reqinfo: RequestInfo): void {
    const p = reqinfo.params() as {
      source: 'active' | 'warehouse';
      from_id: string | null;
      to_id: string | null;
      types: string[] | null;
      since: string | null;
      until: string | null;
      limit: number;
      last: boolean;
    };
    this.run(as, reqinfo, async (core) => {
      if (p.from_id && p.to_id && BigInt(p.from_id) > BigInt(p.to_id)) {
        throw new EvtError(ErrorCode.InvalidRequest, 'from_id is above to_id');
      }
      return {
        events: await core.readEvents({
          source: p.source,
          fromId: p.from_id,
          toId: p.to_id,
          types: p.types,
          since: p.since,
          until: p.until,
          limit: p.limit,
          last: p.last,
        }),
      };
    });
  }
}

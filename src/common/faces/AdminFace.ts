import type { AsyncSteps } from 'futoin-asyncsteps';
import { PingFace, type RegisterOptions, type SimpleCCM } from 'futoin-invoker';
import { ADMIN_IFACE, ADMIN_VERSION, PING_VERSION, SPEC_DIRS_ALL } from '../constants';
import { registerFace } from './register';

/** Where moveConsumer puts a consumer's pointer (see specs/ftn18es.admin-1.1-iface.json). */
export type MoveTarget = 'start' | 'newest' | 'id' | 'time';

/** What readEvents takes (all optional; see specs/ftn18es.admin-1.1-iface.json). */
export interface ReadEventsParams {
  source?: 'active' | 'warehouse';
  from_id?: string | null;
  to_id?: string | null;
  types?: string[] | null;
  since?: string | null;
  until?: string | null;
  limit?: number;
  last?: boolean;
}

/**
 * Client of ftn18es.admin (the caller needs the admin right). Each call succeeds with the
 * function's named result, e.g. `listConsumers(as)` → `as.success({ consumers })`.
 */
export class AdminFace extends PingFace {
  static get LATEST_VERSION(): string {
    return ADMIN_VERSION;
  }

  static get PING_VERSION(): string {
    return PING_VERSION;
  }

  static spec(): string[] {
    return SPEC_DIRS_ALL;
  }

  static override register(
    as: AsyncSteps,
    ccm: SimpleCCM,
    name: string,
    endpoint: unknown,
    credentials: string | null = null,
    options: RegisterOptions = {},
  ): void {
    registerFace(as, ccm, ADMIN_IFACE, this, name, endpoint, credentials, {
      version: ADMIN_VERSION,
      ...options,
    });
  }

  listConsumers(as: AsyncSteps, lagLimit?: number): void {
    this.call(as, 'listConsumers', lagLimit === undefined ? {} : { lag_limit: lagLimit });
  }

  dropConsumer(as: AsyncSteps, ident: string, reason = ''): void {
    this.call(as, 'dropConsumer', { ident, reason });
  }

  /** With `dry_run`, only says where the pointer would go (1.1). */
  moveConsumer(
    as: AsyncSteps,
    ident: string,
    to: MoveTarget,
    at: { id?: string | null; time?: string | null; reason?: string; dry_run?: boolean } = {},
  ): void {
    this.call(as, 'moveConsumer', {
      ident,
      to,
      id: at.id ?? null,
      time: at.time ?? null,
      reason: at.reason ?? '',
      ...(at.dry_run ? { dry_run: true } : {}),
    });
  }

  /** After how many failed push calls an event is parked; 0: never (1.1). */
  setMaxAttempts(as: AsyncSteps, ident: string, maxAttempts: number, reason = ''): void {
    this.call(as, 'setMaxAttempts', { ident, max_attempts: maxAttempts, reason });
  }

  /** Parked events, of one consumer or of all (1.1). */
  listParked(
    as: AsyncSteps,
    ident: string | null = null,
    options: { include_resolved?: boolean; limit?: number } = {},
  ): void {
    this.call(as, 'listParked', {
      ident,
      include_resolved: options.include_resolved ?? false,
      limit: options.limit ?? 100,
    });
  }

  /** Delivers a parked event (all of the consumer's with null) again (1.1). */
  replayParked(as: AsyncSteps, ident: string, eventId: string | null = null, reason = ''): void {
    this.call(as, 'replayParked', { ident, event_id: eventId, reason });
  }

  /** Resolves a parked event (all of the consumer's with null) without delivery (1.1). */
  skipParked(as: AsyncSteps, ident: string, eventId: string | null = null, reason = ''): void {
    this.call(as, 'skipParked', { ident, event_id: eventId, reason });
  }

  listMoves(as: AsyncSteps, ident: string | null = null, limit = 100): void {
    this.call(as, 'listMoves', { ident, limit });
  }

  stats(as: AsyncSteps): void {
    this.call(as, 'stats', {});
  }

  readEvents(as: AsyncSteps, params: ReadEventsParams = {}): void {
    this.call(as, 'readEvents', { ...params });
  }
}

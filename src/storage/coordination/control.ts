import { cmpIds } from '../../common/ids';
import type { ControlSql } from '../queries';
import type { SessionConnection } from '../sql';

/**
 * A control message between nodes, about one subject (a consumer) of one scope (its consumer
 * table):
 * - `probe`: a receiver waits for this consumer elsewhere; whoever pushes it checks that its
 *   own receiver still answers, and lets go if not (a half-open connection);
 * - `end`: end this consumer's push session (its pointer was moved or it was dropped), if it
 *   started no later than `epoch`: a session that acquired the consumer since began after the
 *   action, so it already goes by it (a message can arrive late: MySQL reads them at heartbeats);
 * - `released`: this consumer's lock is free now: a waiting node may take it.
 * Hints only: every rule also holds when one is lost.
 */
export interface ControlMessage {
  kind: 'probe' | 'end' | 'released';
  scope: string;
  subject: string;
  /** The sending node ('' from a command on the database). */
  from: string;
  /** Free text (why an `end`). */
  info: string;
  /**
   * For `end`: the consumer's owner epoch read after the action, so only sessions of that
   * acquisition or an older one end; '' (or absent): whichever session pushes it.
   */
  epoch?: string;
}

/** Whether an `end` up to `epoch` ('' or absent: any) concerns a session of `sessionEpoch`. */
export function endsSession(sessionEpoch: string, epoch: string | undefined): boolean {
  return !epoch || cmpIds(sessionEpoch, epoch) <= 0;
}

/** Two ends as one: up to the newer epoch of the two ('' when either ends any session). */
export function widerEnd(a: string, b: string): string {
  return a === '' || b === '' ? '' : cmpIds(a, b) >= 0 ? a : b;
}

/** The PostgreSQL notification channel of control messages. */
export const CONTROL_CHANNEL = 'evtstream_control';

const KINDS: readonly string[] = ['probe', 'end', 'released'];

/** A control message from a notification's payload (JSON), or null if it is not one. */
export function parseControl(payload: string): ControlMessage | null {
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  const str = (k: string): string | null => (typeof m[k] === 'string' ? m[k] : null);
  const kind = str('kind');
  const scope = str('scope');
  const subject = str('subject');
  if (kind === null || !KINDS.includes(kind) || scope === null || subject === null) return null;
  return {
    kind: kind as ControlMessage['kind'],
    scope,
    subject,
    from: str('from') ?? '',
    info: str('info') ?? '',
    epoch: epochOf(str('epoch')),
  };
}

/** An epoch as a message carries it: digits, or '' for none. */
const epochOf = (v: string | null | undefined): string => (v && /^\d{1,20}$/.test(v) ? v : '');

/** Control rows are read over this window at each heartbeat. */
const READ_WINDOW_MS = 15_000;

/**
 * Reads control rows (MySQL) at each heartbeat: the rows of the last READ_WINDOW_MS, each
 * delivered once. By time, not by ID: auto-increment IDs commit out of order, and a reader
 * past one would miss a lower one committed later.
 */
export class ControlReader {
  /** Rows delivered (or present at the start), by ID, with when they were first seen. */
  private readonly seen = new Map<string, number>();
  private sql: ControlSql | null = null;

  /** Marks what is there now as seen: a node does not act on messages older than itself. */
  async start(session: SessionConnection, sql: ControlSql): Promise<void> {
    this.sql = sql;
    this.seen.clear();
    for (const row of await this.rows(session)) this.seen.set(row.id, Date.now());
  }

  async read(session: SessionConnection): Promise<ControlMessage[]> {
    const out: ControlMessage[] = [];
    const at = Date.now();
    for (const row of await this.rows(session)) {
      if (this.seen.has(row.id)) continue;
      this.seen.set(row.id, at);
      if (!KINDS.includes(row.kind)) continue;
      out.push({
        kind: row.kind as ControlMessage['kind'],
        scope: row.scope,
        subject: row.subject,
        from: row.node,
        info: row.info,
        epoch: epochOf(row.epoch),
      });
    }
    for (const [id, seenAt] of this.seen)
      if (at - seenAt > 2 * READ_WINDOW_MS) this.seen.delete(id);
    return out;
  }

  private rows(session: SessionConnection): Promise<
    {
      id: string;
      kind: string;
      scope: string;
      subject: string;
      node: string;
      info: string;
      epoch: string;
    }[]
  > {
    if (!this.sql) return Promise.resolve([]);
    return session.query(this.sql.recent, [READ_WINDOW_MS]);
  }
}

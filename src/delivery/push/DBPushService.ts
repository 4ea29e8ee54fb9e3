import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { waitAtMost } from '../../common/async';
import { ErrorCode, EvtError, isEvtError } from '../../common/errors';
import { resolveStore } from '../../storage/ccm';
import type { EventStore } from '../../storage/store';
import type { DBPollServiceOptions } from '../poll/DBPollService';
import { storeOptionsOf, warehouseOf } from '../poll/options';
import type { Event } from '../../common/event';
import { ourServiceClass, type PollRequest } from '../poll/PollService';
import { StorePoller } from '../poll/store-poller';
import { PushHub, type OperatorHints } from './hub';
import { PushService, type PushRequest, type PushServiceOptions } from './PushService';

export interface DBPushServiceOptions extends PushServiceOptions, DBPollServiceOptions {
  /** How log lines tell an operator to do what they advise (default: ADMIN_HINTS). */
  operatorHints?: OperatorHints;
}

/** futoin.evt.push (and poll) on a database: see PushHub and the sessions for the rules. */
export class DBPushService extends PushService {
  readonly ready: Promise<EventStore>;
  private readonly engine: Promise<{ poller: StorePoller; hub: PushHub }>;

  constructor(as: AsyncSteps, executor: Executor, options: DBPushServiceOptions = {}) {
    super(as, executor, options);
    this.ready = resolveStore(executor.ccm(), storeOptionsOf('push', options));
    this.ready.then((store) => (this.destination = store.eventTable)).catch(() => undefined);
    const warehouse = warehouseOf('push', options);
    // Coordination first: a coordination connection that cannot work fails the registration.
    this.engine = this.ready.then(async (store) => {
      await store.startCoordination();
      return {
        poller: new StorePoller(store, warehouse),
        hub: new PushHub(
          store,
          store.log,
          {
            ...this.settings.hub,
            warehouse,
            ...(options.operatorHints ? { hints: options.operatorHints } : {}),
          },
          {
            pushError: (consumer, err) => this._pushError(consumer, err),
            queueOverflow: (consumer, dropped) => this.emit('queueOverflow', consumer, dropped),
            eventParked: (consumer, park) => this.emit('eventParked', consumer, park),
          },
        ),
      };
    });
    this.engine.catch(() => undefined);
    // Its store closes with the CCM (see resolveStore): the sessions stop then, also when the
    // application closes the CCM and not the executor, as futoin-eventstream's users do.
    executor.ccm().once('close', () => this._close());
  }

  static override register(
    as: AsyncSteps,
    executor: Executor,
    options: DBPushServiceOptions = {},
  ): DBPushService {
    const impl = super.register(as, executor, options) as DBPushService;
    as.await(impl.engine);
    return impl;
  }

  /** Push sessions open now. */
  async sessions(): Promise<number> {
    return (await this.engine).hub.sessions;
  }

  /** The push engine (sessions, their backlogs; ending a consumer's session). */
  async hub(): Promise<PushHub> {
    return (await this.engine).hub;
  }

  /**
   * Also `_pollEvents`: push sessions read the store themselves, so an override (an access
   * filter, say) would apply to polling only, where futoin-eventstream applies it to the
   * backlog a push session starts with too.
   */
  static override _unsupportedHooks(): Record<string, string> {
    return {
      ...super._unsupportedHooks(),
      _pollEvents:
        'our push sessions do not call: they read the store themselves (override it in a DBPollService for polling)',
    };
  }

  protected override async _registerConsumerAsync(ident: string): Promise<void> {
    await (await this.engine).poller.register(ident);
  }

  protected override async _pollEventsAsync(req: PollRequest): Promise<Event[]> {
    return (await this.engine).poller.poll(req);
  }

  protected override async _startPush(req: PushRequest): Promise<void> {
    const { hub } = await this.engine;
    if (req.ident === null) {
      await hub.openLive(req.want, req.target, req.limits);
    } else if (!(await hub.openReliable(req.ident, req.want, req.target, req.limits))) {
      throw new EvtError(ErrorCode.NotRegistered, 'Call registerConsumer first');
    }
  }

  /** 'pushError' with the reference's arguments (code, info, exception), then the consumer. */
  private _pushError(consumer: string, err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    if (isEvtError(e)) this.emit('pushError', e.code, e.info, e, consumer);
    else this.emit('pushError', ErrorCode.InternalError, e.message, e, consumer);
  }

  protected override async _drain(timeoutMs: number): Promise<boolean> {
    let hub: PushHub;
    try {
      ({ hub } = await this.engine);
    } catch {
      return true; // never started: nothing to drain
    }
    let settled = false;
    await waitAtMost(
      hub.drain().then(() => {
        settled = true;
      }),
      timeoutMs,
    );
    hub.close();
    return settled;
  }

  override _close(): void {
    void this.engine.then(({ hub }) => hub.close()).catch(() => undefined);
  }
}
ourServiceClass(DBPushService);

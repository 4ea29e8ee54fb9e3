import type { AsyncSteps } from 'futoin-asyncsteps';
import type { Executor } from 'futoin-executor';
import { ErrorCode, EvtError } from '../../common/errors';
import { resolveStore } from '../../storage/ccm';
import type { EventStore } from '../../storage/store';
import type { DBPollServiceOptions } from '../poll/DBPollService';
import { storeOptionsOf } from '../poll/options';
import type { Event } from '../../common/event';
import type { PollRequest } from '../poll/PollService';
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
    this.ready.catch(() => undefined);
    // Coordination first: a coordination connection that cannot work fails the registration.
    this.engine = this.ready.then(async (store) => {
      await store.startCoordination();
      return {
        poller: new StorePoller(store),
        hub: new PushHub(
          store,
          store.log,
          {
            ...this.settings.hub,
            ...(options.operatorHints ? { hints: options.operatorHints } : {}),
          },
          {
            pushError: (consumer, err) => this.emit('pushError', consumer, err),
            queueOverflow: (consumer, dropped) => this.emit('queueOverflow', consumer, dropped),
          },
        ),
      };
    });
    this.engine.catch(() => undefined);
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

  protected override async _registerConsumer(ident: string): Promise<void> {
    await (await this.engine).poller.register(ident);
  }

  protected override async _pollEvents(req: PollRequest): Promise<Event[]> {
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

  override _close(): void {
    void this.engine.then(({ hub }) => hub.close()).catch(() => undefined);
  }
}

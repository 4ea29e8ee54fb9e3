/**
 * A raw push consumer for tests, built from futoin-invoker and futoin-executor only: a
 * futoin.evt.receiver service on a client Executor, and PushFace over a WebSocket URL or an
 * in-process executor. It records every onEvents call and can be told to fail or stall.
 */
import type { AsyncSteps } from 'futoin-asyncsteps';
import type { RegisterOptions } from 'futoin-invoker';
import { Executor, type RequestInfo } from 'futoin-executor';
import { SPEC_DIRS_ALL } from '../../src/common/constants';
import { PushFace } from '../../src/common/faces/PushFace';
import type { Event } from '../../src/delivery/poll/PollService';
import { clientCcm, steps } from './service';
import { Notifier } from './wait';

export interface Call {
  seq: number;
  ids: string[];
}

export interface RawReceiver {
  /** Events of successful calls, in arrival order. */
  readonly events: Event[];
  /** Every call, failed ones included. */
  readonly calls: Call[];
  /**
   * Decide per call: 'ok', 'fail' (raise an error), 'stall' (never answer), or a promise: answer
   * (as 'ok') once it resolves.
   */
  behaviour: (call: Call) => 'ok' | 'fail' | 'stall' | Promise<void>;
  /**
   * Process calls in seq order, as a reliable receiver must when calls run in parallel: a call
   * ahead of the next expected seq fails (the service sends it again), one below it was
   * processed already and is acknowledged without processing.
   */
  ordered: boolean;
  /** Set once the service closed the connection (or it was lost). */
  readonly disconnected: boolean;
  close(): void;
  /** Resolves once `pred` holds, checking after each call (rejects after `ms`). */
  until(pred: () => boolean, ms?: number): Promise<void>;
}

export async function connectRaw(
  endpoint: unknown,
  credentials: string | null,
  component: string,
  want: string[] | null = null,
  version = '1.1',
  /** Sets the receiver up before readyToReceive (pushes may come before connectRaw returns). */
  init: (r: RawReceiver) => void = () => undefined,
  /** More options of the push face's registration (futoin-invoker's). */
  faceOptions: RegisterOptions = {},
): Promise<RawReceiver> {
  const ccm = clientCcm();
  const executor = new Executor(ccm);
  /** Waits re-checked after each call. */
  const changes = new Notifier();
  let nextSeq = 0;
  let disconnected = false;
  const receiver: RawReceiver = {
    events: [],
    calls: [],
    behaviour: () => 'ok',
    ordered: false,
    get disconnected() {
      return disconnected;
    },
    close: () => {
      ccm.close();
      executor.close();
    },
    until: async (pred, ms = 60_000) => {
      await changes.until(
        () =>
          `a condition on the pushed events (${receiver.events.length} events, ${receiver.calls.length} calls)`,
        pred,
        ms,
      );
    },
  };
  const service = {
    onEvents(as: AsyncSteps, reqinfo: RequestInfo): void {
      const { seq, events } = reqinfo.params() as { seq: number; events: Event[] };
      const call = { seq, ids: events.map((e) => e.id) };
      receiver.calls.push(call);
      changes.notify();
      if (receiver.ordered && seq < nextSeq) {
        reqinfo.result(true);
        return;
      }
      const what = receiver.ordered && seq > nextSeq ? 'fail' : receiver.behaviour(call);
      if (what === 'fail') {
        as.error('InternalError', 'receiver fails on purpose');
      }
      if (what === 'stall') {
        as.waitExternal();
        return;
      }
      const accept = (): void => {
        receiver.events.push(...events);
        nextSeq = seq + 1;
        reqinfo.result(true);
        changes.notify();
      };
      if (what instanceof Promise) {
        as.waitExternal();
        void what.then(() => {
          // Gone meanwhile (the connection closed): nobody waits for the answer.
          if (!as.state) return;
          accept();
          as.success();
        });
        return;
      }
      accept();
    },
  };
  init(receiver);
  try {
    await steps((as) => {
      executor.register(as, `futoin.evt.receiver:${version}`, service, SPEC_DIRS_ALL);
      PushFace.register(as, ccm, 'push', endpoint, credentials, {
        ...faceOptions,
        executor,
        version,
      });
      as.add((as) => {
        const push = ccm.iface<PushFace>('push');
        push.on('disconnect', () => {
          disconnected = true;
          changes.notify();
        });
        if (component !== 'LIVE') push.registerConsumer(as, component);
        push.readyToReceive(as, component, want);
      });
    });
  } catch (err) {
    receiver.close();
    throw err;
  }
  return receiver;
}

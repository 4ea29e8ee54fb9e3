import type { AsyncSteps } from 'futoin-asyncsteps';

/**
 * FutoIn error codes this project raises or compares against. They travel on the wire as plain
 * strings.
 */
export const ErrorCode = {
  InvalidRequest: 'InvalidRequest',
  NotRegistered: 'NotRegistered',
  LiveNotAllowed: 'LiveNotAllowed',
  SecurityError: 'SecurityError',
  NotSupportedVersion: 'NotSupportedVersion',
  /** futoin-executor: the interface is not registered there (a service without push, say). */
  UnknownInterface: 'UnknownInterface',
  InternalError: 'InternalError',
  NotImplemented: 'NotImplemented',
  /**
   * futoin-asyncsteps: a defence refused the call. Ours for a caller over the limit of failed
   * authentications, and for new push sessions while the service shuts down.
   */
  DefenseRejected: 'DefenseRejected',
  /** futoin-invoker: a call's connection failed or was lost. */
  CommError: 'CommError',
  /** futoin-asyncsteps: a step's timeout passed (a call that got no answer in time). */
  Timeout: 'Timeout',
  /** Ours, for a receiver's 'workerError': its established push session lost the connection. */
  Disconnect: 'Disconnect',
  /** Ours, for the executor's 'notExpected': a /metrics scrape failed. Not on the wire. */
  MetricsUnavailable: 'MetricsUnavailable',
  /** Set up so that it cannot work (a missing table, say): retrying cannot help. Not on the wire. */
  InvalidConfig: 'InvalidConfig',
  /** futoin-database: a transaction's condition (`affected`, `selected`) failed; rolled back. */
  XferCondition: 'XferCondition',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * An error with a FutoIn code. Its message is the bare code, as AsyncSteps reads a thrown
 * error's message as the error code; `info` says what went wrong.
 */
export class EvtError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly info: string,
  ) {
    super(code);
    this.name = 'EvtError';
    this.stack = `${code}: ${info}\n${(this.stack ?? '').split('\n').slice(1).join('\n')}`;
  }

  override toString(): string {
    return `${this.code}: ${this.info}`;
  }
}

export const isEvtError = (e: unknown): e is EvtError => e instanceof EvtError;

export const invalidRequest = (info: string): EvtError =>
  new EvtError(ErrorCode.InvalidRequest, info);

/**
 * Runs promise code as one AsyncSteps step: the value becomes the step's result, an EvtError
 * becomes `as.error(code, info)` and anything else an InternalError (with the exception kept in
 * `as.state.last_exception` for the executor's 'notExpected' listeners). One step waiting for
 * an outside event, as futoin's own database services do: cheaper than `as.await` plus a step.
 */
export function awaitSteps<T>(as: AsyncSteps, work: () => Promise<T>): void {
  as.add((as) => {
    as.waitExternal();
    work().then(
      (value) => {
        if (as.state) as.success(value);
      },
      (error: unknown) => {
        // Gone (cancelled, timed out): nobody waits for the answer any more.
        if (!as.state) return;
        try {
          if (isEvtError(error)) as.error(error.code, error.info);
          as.state.last_exception = error instanceof Error ? error : new Error(String(error));
          as.error(ErrorCode.InternalError, 'Internal error');
        } catch {
          // as.error() outside a running step throws after it has handled the error.
        }
      },
    );
  });
}

/** Runs AsyncSteps-style code (FutoIn faces) from promise code. Rejects with EvtError. */
export function runSteps<T>(
  newSteps: () => AsyncSteps,
  body: (as: AsyncSteps) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    newSteps()
      .add(
        (as) => {
          body(as);
          as.add((_as, result: T) => resolve(result));
        },
        (as, err) => {
          // A rejected promise inside (as.await) fails its step as 'PromiseReject', its error
          // only in last_exception: keep what it says.
          const e = as.state.last_exception;
          const info = as.state.error_info || (e && e.message !== err ? e.message : '');
          reject(new EvtError(err as ErrorCode, String(info)));
        },
      )
      .execute();
  });
}

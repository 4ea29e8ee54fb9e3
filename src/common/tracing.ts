/**
 * OpenTelemetry spans, through @opentelemetry/api only: without an SDK installed by the host
 * application every span is the API's non-recording one (no attributes are computed for it),
 * so the cost is a few allocations per call. Names and attributes follow the OpenTelemetry
 * messaging semantic conventions (1.27 and later) where they fit; README, "Tracing", lists them.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { PACKAGE_NAME, PACKAGE_VERSION } from './build';
import { isEvtError } from './errors';
import type { EventId } from './ids';

/** Attribute names: the semantic conventions' `messaging.*`, and ours (`ftn18.*`) beside them. */
export const ATTR = {
  system: 'messaging.system',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  destination: 'messaging.destination.name',
  /** The consumer: `user:component` (LIVE for live ones), the stream's unit of delivery. */
  consumer: 'messaging.consumer.group.name',
  messageId: 'messaging.message.id',
  bodySize: 'messaging.message.body.size',
  /** Events in the span's batch, also 0 or 1 (the conventions leave it out for one message). */
  count: 'messaging.batch.message_count',
  errorType: 'error.type',
  firstId: 'ftn18.first_event_id',
  lastId: 'ftn18.last_event_id',
  eventType: 'ftn18.event_type',
  /** pollEvents: the acknowledged `last_id` the consumer sent (absent when it sent none). */
  ackedId: 'ftn18.last_id',
  want: 'ftn18.want',
  /** A push batch's `seq`. */
  seq: 'ftn18.seq',
} as const;

/** `messaging.system`: no value of the conventions names FutoIn's event stream. */
export const MESSAGING_SYSTEM = 'ftn18';

/** One kind of span: its operation name and type (semantic conventions), and span kind. */
export interface Operation {
  readonly name: string;
  readonly type: 'create' | 'send' | 'receive' | 'process';
  readonly kind: SpanKind;
}

/**
 * Span kind follows where our code runs: the service side of a call (SERVER), a call we make
 * (CLIENT), inside the producer's own code (PRODUCER), a consumer's handler (CONSUMER).
 */
export const OPERATIONS = {
  /** futoin.evt.gen addEvent in the service: validation, group commit, the commit. */
  addEvent: { name: 'addEvent', type: 'send', kind: SpanKind.SERVER },
  /** DBGenFace.addXferEvent: adds the INSERT to the caller's transaction (which is theirs). */
  addXferEvent: { name: 'addXferEvent', type: 'create', kind: SpanKind.PRODUCER },
  /** futoin.evt.poll pollEvents in the service: the acknowledgement and the read. */
  pollEvents: { name: 'pollEvents', type: 'receive', kind: SpanKind.SERVER },
  /** One onEvents call to a push receiver, until it answered (its processing included). */
  onEvents: { name: 'onEvents', type: 'process', kind: SpanKind.CLIENT },
  /** One archiver batch: its warehouse transaction. */
  archive: { name: 'archive', type: 'process', kind: SpanKind.CONSUMER },
} as const satisfies Record<string, Operation>;

const NOT_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * The API's proxy tracer: it follows whatever provider the host registers, also later; but once
 * it handed out a span of one, it keeps that one, also after `trace.disable()`.
 */
const apiTracer = (): Tracer => trace.getTracer(PACKAGE_NAME, PACKAGE_VERSION);
let tracer: Tracer | null = apiTracer();

/**
 * Turns our spans off or on again (on by default); on, they go to the provider registered now
 * (none after `trace.disable()`). For measuring what the instrumentation costs
 * (bench/ops-cost.ts) and for tests: without an SDK, spans record nothing anyway.
 */
export function setTracing(on: boolean): void {
  tracer = on ? apiTracer() : null;
}

function start(op: Operation, destination: string): Span {
  if (!tracer) return NOT_RECORDING;
  const span = tracer.startSpan(`${op.name} ${destination}`, { kind: op.kind });
  if (span.isRecording()) {
    span.setAttributes({
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.operationName]: op.name,
      [ATTR.operationType]: op.type,
      [ATTR.destination]: destination,
    });
  }
  return span;
}

/** Marks the span failed: status, `error.type` (the FutoIn code when there is one), exception. */
function failed(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.setAttribute(ATTR.errorType, isEvtError(err) ? err.code : e.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: isEvtError(err) ? err.info : e.message });
  span.recordException(e);
}

/** Whether a span has nothing to record or pass on (no SDK, or tracing off). */
const inert = (span: Span): boolean =>
  !span.isRecording() && !isSpanContextValid(span.spanContext());

/**
 * Runs `work` in a span named `<operation> <destination>`, as the active span (database client
 * spans of an instrumented driver nest under it); ends it when the promise settles, failed if it
 * rejects. `work` adds its attributes where `span.isRecording()`.
 */
export function traced<T>(
  op: Operation,
  destination: string,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const span = start(op, destination);
  return inert(span) ? work(span) : inSpan(span, work);
}

async function inSpan<T>(span: Span, work: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(context.active(), span), () => work(span));
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** As traced(), for synchronous work. */
export function tracedSync<T>(op: Operation, destination: string, work: (span: Span) => T): T {
  const span = start(op, destination);
  if (inert(span)) return work(span);
  try {
    return context.with(trace.setSpan(context.active(), span), () => work(span));
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Sets count and ID range of a batch of events (in ID order). */
export function setBatch(span: Span, events: readonly { readonly id: EventId }[]): void {
  if (!span.isRecording()) return;
  span.setAttribute(ATTR.count, events.length);
  const first = events[0];
  const last = events[events.length - 1];
  if (first && last) {
    span.setAttribute(ATTR.firstId, first.id);
    span.setAttribute(ATTR.lastId, last.id);
  }
}

/**
 * OpenTelemetry spans as a host application's SDK sees them (the SDK's in-memory exporter
 * behind a BasicTracerProvider registered globally): addEvent, addXferEvent, pollEvents, each
 * onEvents call, each archiver batch, with their attributes, and failures marked as such.
 */
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { expect } from 'chai';
import fs from 'fs';
import type { L2Face } from 'futoin-database';
import type { AdvancedCCM } from 'futoin-invoker';
import os from 'os';
import path from 'path';
import type { StreamService } from '../../src/app/service';
import type { Event } from '../../src/common/event';
import { GenFace } from '../../src/common/faces/GenFace';
import { PollFace } from '../../src/common/faces/PollFace';
import { ATTR, MESSAGING_SYSTEM, setTracing } from '../../src/common/tracing';
import { DBGenFace } from '../../src/generation/DBGenFace';
import { parseDbUrl } from '../../src/storage/config';
import { registerFutoinDb } from '../../src/storage/futoin-db';
import { describeDatabases, testLog } from '../support/db';
import { connectRaw } from '../support/push';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
  TEST_USER,
} from '../support/service';
import { waitFor } from '../support/wait';

const MAX_EVENT_BYTES = 1000;

let exporter = new InMemorySpanExporter();

/**
 * The host's SDK, for each suite (a shut-down one records nothing, and hooks at the top level
 * would span the whole run).
 */
function withSdk(): void {
  let provider: BasicTracerProvider;
  before(() => {
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    expect(trace.setGlobalTracerProvider(provider), 'no other SDK registered').to.be.true;
  });
  after(async () => {
    trace.disable();
    // Our tracer keeps the provider it used until it is taken anew.
    setTracing(true);
    await provider.shutdown();
  });
}

const spans = (name: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name === name);

/** The attributes every span of ours has. */
const base = (operation: string, type: string, destination: string) => ({
  [ATTR.system]: MESSAGING_SYSTEM,
  [ATTR.operationName]: operation,
  [ATTR.operationType]: type,
  [ATTR.destination]: destination,
});

describeDatabases('tracing', (fx) => {
  withSdk();
  let service: StreamService;
  let ccm: AdvancedCCM;
  let warehouseFile: string;

  before(async function () {
    this.timeout(60_000);
    warehouseFile = path.join(os.tmpdir(), `evt_trace_${process.pid}_${Date.now()}.sqlite`);
    service = await startService(fx, {
      warehouse: parseDbUrl(`sqlite:${warehouseFile}`),
      maxEventBytes: MAX_EVENT_BYTES,
    });
    ccm = clientCcm();
    await steps((as) => {
      GenFace.register(as, ccm, 'gen', service.wsUrl, TEST_CREDENTIALS, { secureChannel: true });
      PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, {
        secureChannel: true,
      });
      registerFutoinDb(as, ccm, 'evt', fx.config, testLog);
      // Only for addXferEvent, which never calls the endpoint.
      DBGenFace.register(as, ccm, 'xgen', 'secure+ws://127.0.0.1:9/', 'u:p');
    });
  });
  beforeEach(() => exporter.reset());
  after(async () => {
    ccm?.close();
    await service?.close();
    for (const ext of ['', '-wal', '-shm']) fs.rmSync(`${warehouseFile}${ext}`, { force: true });
  });

  const addEvent = (type: string, data: unknown): Promise<string> =>
    steps<string>((as) => ccm.iface<GenFace>('gen').addEvent(as, type, data));
  const poll = (component: string, lastId: string | null = null, want: string[] | null = null) =>
    steps<Event[]>((as) => ccm.iface<PollFace>('poll').pollEvents(as, component, lastId, want));

  it('traces addEvent: the event, its size and ID; a refused one as failed', async () => {
    const id = await addEvent('TRACED', { hello: 'world' });
    const [span, ...more] = spans('addEvent evt_queue');
    expect(more).to.deep.equal([]);
    expect(span!.kind).to.equal(SpanKind.SERVER);
    expect(span!.attributes).to.deep.equal({
      ...base('addEvent', 'send', 'evt_queue'),
      [ATTR.eventType]: 'TRACED',
      [ATTR.bodySize]: Buffer.byteLength('{"hello":"world"}'),
      [ATTR.messageId]: id,
    });
    expect(span!.status.code).to.equal(SpanStatusCode.UNSET);

    exporter.reset();
    // Larger than the service takes (the client checks the type itself, not the size).
    await expectFutoinError(addEvent('TRACED', 'x'.repeat(MAX_EVENT_BYTES + 1)), 'InvalidRequest');
    const [failed] = spans('addEvent evt_queue');
    expect(failed!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(failed!.attributes[ATTR.errorType]).to.equal('InvalidRequest');
    expect(failed!.attributes[ATTR.messageId]).to.equal(undefined);
    expect(failed!.events.map((e) => e.name)).to.deep.equal(['exception']);
  });

  it('traces pollEvents: consumer, acknowledged last_id, want, count and ID range', async () => {
    await steps((as) => ccm.iface<PollFace>('poll').registerConsumer(as, 'T_POLL'));
    const ids = [await addEvent('T_POLL', { i: 1 }), await addEvent('T_POLL', { i: 2 })];
    exporter.reset();
    const got = await poll('T_POLL', null, ['T_POLL']);
    expect(got.map((e) => e.id)).to.deep.equal(ids);
    await poll('T_POLL', ids[1], ['T_POLL']);
    const [first, second] = spans('pollEvents evt_queue');
    expect(first!.kind).to.equal(SpanKind.SERVER);
    expect(first!.attributes).to.deep.equal({
      ...base('pollEvents', 'receive', 'evt_queue'),
      [ATTR.consumer]: `${TEST_USER}:T_POLL`,
      [ATTR.want]: ['T_POLL'],
      [ATTR.count]: 2,
      [ATTR.firstId]: ids[0],
      [ATTR.lastId]: ids[1],
    });
    expect(second!.attributes).to.deep.include({
      [ATTR.ackedId]: ids[1],
      [ATTR.count]: 0,
    });
    expect(second!.attributes[ATTR.firstId]).to.equal(undefined);

    exporter.reset();
    await expectFutoinError(poll('T_NOT_REGISTERED'), 'NotRegistered');
    const [failed] = spans('pollEvents evt_queue');
    expect(failed!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(failed!.attributes[ATTR.errorType]).to.equal('NotRegistered');
  });

  it('traces each onEvents call of a push session: consumer, seq, count, IDs; a failed call as failed', async () => {
    const receiver = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'T_PUSH', ['T_PUSH']);
    try {
      let failOnce = true;
      receiver.behaviour = () => (failOnce ? ((failOnce = false), 'fail') : 'ok');
      const id = await addEvent('T_PUSH', {});
      await receiver.until(() => receiver.events.some((e) => e.id === id));
      await waitFor(
        'both calls traced',
        () =>
          spans('onEvents evt_queue').filter(
            (s) => s.attributes[ATTR.consumer] === `${TEST_USER}:T_PUSH`,
          ).length >= 2,
      );
    } finally {
      receiver.close();
    }
    // The in-process archiver is pushed to as well.
    const calls = spans('onEvents evt_queue').filter(
      (s) => s.attributes[ATTR.consumer] === `${TEST_USER}:T_PUSH`,
    );
    expect(calls).to.have.length(receiver.calls.length);
    const [failed, ok] = calls;
    for (const s of [failed!, ok!]) {
      expect(s.kind).to.equal(SpanKind.CLIENT);
      expect(s.attributes).to.deep.include({
        ...base('onEvents', 'process', 'evt_queue'),
        [ATTR.consumer]: `${TEST_USER}:T_PUSH`,
        [ATTR.seq]: receiver.calls[0]!.seq,
        [ATTR.count]: 1,
        [ATTR.firstId]: receiver.events[0]!.id,
        [ATTR.lastId]: receiver.events[0]!.id,
      });
    }
    expect(failed!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(ok!.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('traces each archiver batch: the consumer, count and ID range', async () => {
    const id = await addEvent('T_ARCH', {});
    await waitFor('the batch archived', () => service.app.archiver!.counters.lastId === id);
    const batches = spans('archive evt_history');
    const last = batches[batches.length - 1]!;
    expect(last.kind).to.equal(SpanKind.CONSUMER);
    expect(last.attributes).to.deep.include({
      ...base('archive', 'process', 'evt_history'),
      [ATTR.consumer]: 'ARCHIVER',
      [ATTR.lastId]: id,
    });
    expect(last.attributes[ATTR.count]).to.be.at.least(1);
  });

  it("traces addXferEvent in the caller's process: type and size; a refused one as failed", async () => {
    const db = ccm.iface<L2Face>('#db.evt');
    const face = ccm.iface<DBGenFace>('xgen');
    await steps((as) => {
      const xfer = db.newXfer();
      face.addXferEvent(xfer, 'T_XFER', { a: 1 });
      xfer.execute(as);
    });
    const [span] = spans('addXferEvent evt_queue');
    expect(span!.kind).to.equal(SpanKind.PRODUCER);
    expect(span!.attributes).to.deep.equal({
      ...base('addXferEvent', 'create', 'evt_queue'),
      [ATTR.eventType]: 'T_XFER',
      [ATTR.bodySize]: Buffer.byteLength('{"a":1}'),
    });
    expect(() => face.addXferEvent(db.newXfer(), 'T_XFER', { big: 'x'.repeat(20_000) })).to.throw(
      'InvalidRequest',
    );
    const [, failed] = spans('addXferEvent evt_queue');
    expect(failed!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(failed!.attributes[ATTR.errorType]).to.equal('InvalidRequest');
  });

  it('records nothing with tracing turned off', async () => {
    // A span started before (another suite's service still pushing, on a loaded machine) may
    // end in the meantime: only spans started while tracing was off count.
    const offAt = Date.now() + 1;
    setTracing(false);
    try {
      await addEvent('T_OFF', {});
      await poll('LIVE');
    } finally {
      setTracing(true);
    }
    const startedMs = (s: ReadableSpan): number => s.startTime[0] * 1e3 + s.startTime[1] / 1e6;
    const whileOff = exporter.getFinishedSpans().filter((s) => startedMs(s) >= offAt);
    expect(whileOff.map((s) => s.name)).to.deep.equal([]);
  });
});

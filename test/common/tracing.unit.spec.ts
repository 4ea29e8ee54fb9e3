import { expect } from 'chai';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { ErrorCode, EvtError } from '../../src/common/errors';
import {
  ATTR,
  MESSAGING_SYSTEM,
  OPERATIONS,
  setBatch,
  setTracing,
  traced,
  tracedSync,
} from '../../src/common/tracing';

describe('tracing helper, with a host SDK', function () {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  before(() => {
    expect(trace.setGlobalTracerProvider(provider), 'no other SDK registered').to.be.true;
  });
  after(async () => {
    trace.disable();
    setTracing(true);
    await provider.shutdown();
  });
  beforeEach(() => exporter.reset());

  it('records the operation and the batch: count and ID range', async () => {
    const result = await traced(OPERATIONS.pollEvents, 'evt_queue', async (span) => {
      setBatch(span, [{ id: '3' }, { id: '5' }]);
      return 'done';
    });
    expect(result).to.equal('done');
    const [span, ...more] = exporter.getFinishedSpans();
    expect(more).to.deep.equal([]);
    expect(span!.name).to.equal('pollEvents evt_queue');
    expect(span!.kind).to.equal(SpanKind.SERVER);
    expect(span!.attributes).to.deep.equal({
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.operationName]: 'pollEvents',
      [ATTR.operationType]: 'receive',
      [ATTR.destination]: 'evt_queue',
      [ATTR.count]: 2,
      [ATTR.firstId]: '3',
      [ATTR.lastId]: '5',
    });
    expect(span!.status.code).to.equal(SpanStatusCode.UNSET);
  });

  it('marks a failed span with the FutoIn error code and passes the error on', async () => {
    const refused = new EvtError(ErrorCode.InvalidRequest, 'no such type');
    let caught: unknown;
    await traced(OPERATIONS.addEvent, 'evt_queue', () => Promise.reject(refused)).catch(
      (err: unknown) => (caught = err),
    );
    expect(caught).to.equal(refused);
    expect(() =>
      tracedSync(OPERATIONS.addXferEvent, 'evt_queue', () => {
        throw new TypeError('bad');
      }),
    ).to.throw(TypeError);
    const [async, sync] = exporter.getFinishedSpans();
    expect(async!.status).to.deep.equal({ code: SpanStatusCode.ERROR, message: 'no such type' });
    expect(async!.attributes[ATTR.errorType]).to.equal(ErrorCode.InvalidRequest);
    expect(async!.events.map((e) => e.name)).to.deep.equal(['exception']);
    expect(sync!.status.code).to.equal(SpanStatusCode.ERROR);
    expect(sync!.attributes[ATTR.errorType]).to.equal('TypeError');
  });

  // Breaking change it catches: keeping the tracer taken at load time (it holds on to the SDK).
  it('records nothing once the host removed its SDK (trace.disable) and tracing is taken anew', function () {
    tracedSync(OPERATIONS.archive, 'evt_history', (span) => {
      expect(span.isRecording(), 'with the SDK').to.be.true;
    });
    trace.disable();
    setTracing(true);
    tracedSync(OPERATIONS.archive, 'evt_history', (span) => {
      expect(span.isRecording(), 'after trace.disable()').to.be.false;
    });
    expect(exporter.getFinishedSpans()).to.have.length(1);
  });
});

/**
 * What one span of ours costs without an OpenTelemetry SDK (the API's no-op tracer): a traced()
 * call around an async function that sets a batch's attributes, against the same async
 * function called directly, in one process, in rounds. The wire-level view of the same
 * question is bench/ops-cost.ts with --variants untraced,off,sdk.
 *
 *   npx tsx bench/tracing-overhead.ts [--calls 500000] [--rounds 3]
 */
import { parseArgs } from 'util';
import { OPERATIONS, setBatch, traced } from '../src/common/tracing';

const BATCH = Array.from({ length: 100 }, (_v, i) => ({ id: String(i + 1) }));

async function nsPerCall(calls: number, withSpan: boolean): Promise<number> {
  const work = async (): Promise<number> => BATCH.length;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    if (withSpan) {
      await traced(OPERATIONS.onEvents, 'evt_queue', async (span) => {
        setBatch(span, BATCH);
        return work();
      });
    } else {
      await work();
    }
  }
  return Number(process.hrtime.bigint() - t0) / calls;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '500000' },
      rounds: { type: 'string', default: '3' },
    },
  });
  const calls = Number(values.calls);
  for (let r = 1; r <= Number(values.rounds); r++) {
    const plain = await nsPerCall(calls, false);
    const spanned = await nsPerCall(calls, true);
    console.log(
      `round ${r}: direct ${plain.toFixed(0)} ns/call, in a span (no SDK) ${spanned.toFixed(0)} ns/call: ` +
        `+${(spanned - plain).toFixed(0)} ns per span`,
    );
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});

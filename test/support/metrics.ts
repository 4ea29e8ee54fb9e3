/**
 * Reading /metrics in tests: HTTP Basic credentials, and a strict parser of the Prometheus text
 * format 0.0.4.
 */
import { expect } from 'chai';

export const basic = (user: string, secret: string): string =>
  `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;

/** A parsed exposition: samples by `name{label="value",...}` (labels sorted), and the families. */
export interface Exposition {
  samples: Map<string, number>;
  types: Map<string, string>;
  /** Every sample's name and labels, in order. */
  series: { name: string; labels: Record<string, string> }[];
}

export const sampleKey = (name: string, labels: Record<string, string> = {}): string => {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
};

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE_RE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/y;

/**
 * Parses the Prometheus text format 0.0.4 strictly enough to catch a malformed line: every
 * sample belongs to a family declared by `# TYPE` before it, labels are `name="value"` pairs,
 * values are numbers (or +Inf, -Inf, NaN: Prometheus reads these as Go's ParseFloat does, case
 * aside; prom-client writes an event-loop figure with no sample yet as "Nan").
 */
export function parseExposition(text: string): Exposition {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const series: Exposition['series'] = [];
  expect(text.endsWith('\n'), 'ends with a newline').to.be.true;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = new RegExp(`^# (HELP|TYPE) (${NAME}) (.*)$`).exec(line);
      expect(m, line).to.not.be.null;
      if (m![1] === 'TYPE') {
        expect(['counter', 'gauge', 'histogram', 'summary', 'untyped'], line).to.include(m![3]);
        types.set(m![2]!, m![3]!);
      }
      continue;
    }
    const m = SAMPLE_RE.exec(line);
    expect(m, `sample line: ${line}`).to.not.be.null;
    const [, name = '', labelText = '', raw = ''] = m!;
    const family = [...types.keys()].find(
      (f) => name === f || /^_(total|sum|count|bucket|created)$/.test(name.slice(f.length)),
    );
    expect(family, `a TYPE before ${line}`).to.not.be.undefined;
    const labels: Record<string, string> = {};
    LABEL_RE.lastIndex = 0;
    while (LABEL_RE.lastIndex < labelText.length) {
      const lm = LABEL_RE.exec(labelText);
      expect(lm, `labels of ${line}`).to.not.be.null;
      labels[lm![1]!] = lm![2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    }
    const nan = /^nan$/i.test(raw);
    const value = /^\+inf$/i.test(raw) ? Infinity : /^-inf$/i.test(raw) ? -Infinity : Number(raw);
    expect(nan || !Number.isNaN(value), `value of ${line}`).to.be.true;
    samples.set(sampleKey(name, labels), value);
    series.push({ name, labels });
  }
  return { samples, types, series };
}

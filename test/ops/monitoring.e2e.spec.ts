/**
 * The Grafana dashboard and the Prometheus alert rules in docs/monitoring against a real
 * service: every metric their PromQL names is in a scrape of the service (with the archiver and
 * the discarder running, after events were added, polled, pushed, archived and discarded), with
 * the labels their selectors match on; every function is PromQL's; the files are well formed.
 */
import { expect } from 'chai';
import fs from 'fs';
import { createRequire } from 'module';
import os from 'os';
import path from 'path';
import type { AdvancedCCM } from 'futoin-invoker';
import type { StreamService } from '../../src/app/service';
import { GenFace } from '../../src/common/faces/GenFace';
import { PollFace } from '../../src/common/faces/PollFace';
import type { Event } from '../../src/common/event';
import { parseDbUrl } from '../../src/storage/config';
import { describeDatabases } from '../support/db';
import { basic, parseExposition, type Exposition } from '../support/metrics';
import { connectRaw } from '../support/push';
import { clientCcm, startService, steps, TEST_CREDENTIALS, TEST_USER } from '../support/service';
import { waitFor } from '../support/wait';

const MONITORING = path.join(__dirname, '..', '..', 'docs', 'monitoring');
const DASHBOARD = path.join(MONITORING, 'grafana-dashboard.json');
const ALERTS = path.join(MONITORING, 'prometheus-alerts.yml');

/** js-yaml's load (the package ships no types). */
const loadYaml = (createRequire(__filename)('js-yaml') as { load: (text: string) => unknown }).load;

/** PromQL's functions and aggregation operators. */
const PROMQL_FUNCTIONS = new Set(
  (
    'abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max ' +
    'clamp_min count count_over_time count_values day_of_month day_of_week day_of_year ' +
    'days_in_month delta deriv exp floor group histogram_count histogram_fraction ' +
    'histogram_quantile histogram_sum holt_winters hour idelta increase irate label_join ' +
    'label_replace last_over_time ln log10 log2 max max_over_time min min_over_time minute ' +
    'month predict_linear quantile quantile_over_time rate resets round scalar sgn sort ' +
    'sort_desc sqrt stddev stddev_over_time stdvar stdvar_over_time sum sum_over_time time ' +
    'timestamp topk vector year'
  ).split(' '),
);
/** Words of PromQL that are no metric; the first six take a label list in parentheses. */
const LABEL_LIST_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const WORDS = new Set([...LABEL_LIST_WORDS, 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}
interface Selector {
  metric: string;
  matchers: Matcher[];
}

const TOKEN_RE =
  /\s+|("(?:[^"\\]|\\.)*")|(\{[^}]*\})|(\[[^\]]*\])|(\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])?)|([a-zA-Z_:][a-zA-Z0-9_:]*)|(==|!=|>=|<=|[-+*/%^<>(),])/y;
const MATCHER_RE = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

function parseMatchers(braces: string, where: string): Matcher[] {
  const inner = braces.slice(1, -1);
  const out: Matcher[] = [];
  MATCHER_RE.lastIndex = 0;
  while (MATCHER_RE.lastIndex < inner.length && inner.slice(MATCHER_RE.lastIndex).trim() !== '') {
    const m = MATCHER_RE.exec(inner);
    expect(m, `label matchers ${braces} in ${where}`).to.not.be.null;
    out.push({ label: m![1]!, op: m![2] as Matcher['op'], value: m![3]! });
  }
  return out;
}

/**
 * The selectors and functions of a PromQL expression (Grafana's variables allowed): a tokenizer
 * that must consume the whole text, with parentheses balanced. Enough to find every metric name
 * and label matcher; it does not check the grammar beyond that.
 */
function parsePromql(expr: string): { selectors: Selector[]; functions: string[] } {
  const text = expr.replace(/\$__(?:rate_interval|interval|range)/g, '5m');
  const tokens: { kind: 'string' | 'braces' | 'range' | 'number' | 'word' | 'op'; text: string }[] =
    [];
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.lastIndex < text.length) {
    const at = TOKEN_RE.lastIndex;
    const m = TOKEN_RE.exec(text);
    expect(m, `PromQL at "${text.slice(at, at + 20)}" in ${expr}`).to.not.be.null;
    const [, str, braces, range, num, word, op] = m!;
    if (str) tokens.push({ kind: 'string', text: str });
    else if (braces) tokens.push({ kind: 'braces', text: braces });
    else if (range) tokens.push({ kind: 'range', text: range });
    else if (num) tokens.push({ kind: 'number', text: num });
    else if (word) tokens.push({ kind: 'word', text: word });
    else if (op) tokens.push({ kind: 'op', text: op });
  }
  let depth = 0;
  for (const t of tokens) {
    if (t.text === '(') depth++;
    if (t.text === ')') depth--;
    expect(depth, `parentheses of ${expr}`).to.be.at.least(0);
  }
  expect(depth, `parentheses of ${expr}`).to.equal(0);

  const selectors: Selector[] = [];
  const functions: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    const next = tokens[i + 1];
    if (t.kind === 'braces') throw new Error(`A selector without a metric name in ${expr}`);
    if (t.kind !== 'word') continue;
    if (LABEL_LIST_WORDS.has(t.text) && next?.text === '(') {
      while (tokens[i]?.text !== ')') i++;
      continue;
    }
    if (WORDS.has(t.text)) continue;
    // A call, or an aggregation with its grouping first: `max by (job) (...)`.
    if (next?.text === '(' || next?.text === 'by' || next?.text === 'without') {
      functions.push(t.text);
      continue;
    }
    const matchers = next?.kind === 'braces' ? parseMatchers(next.text, expr) : [];
    if (next?.kind === 'braces') i++;
    selectors.push({ metric: t.text, matchers });
  }
  return { selectors, functions };
}

interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
  panels?: Panel[];
}
interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels: { severity: string };
  annotations: { summary: string; description: string };
}

const dashboard = (): Dashboard => JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const alertRules = (): AlertRule[] => {
  const doc = loadYaml(fs.readFileSync(ALERTS, 'utf8')) as {
    groups: { name: string; rules: AlertRule[] }[];
  };
  return doc.groups.flatMap((g) => g.rules);
};

const panelsOf = (d: Dashboard): Panel[] => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** Every PromQL text of the dashboard and the rules, with where it is. */
function expressions(): { where: string; expr: string }[] {
  const d = dashboard();
  const out: { where: string; expr: string }[] = [];
  for (const p of panelsOf(d)) {
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}"`, expr: t.expr });
  }
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = (v.query as { query: string }).query;
    const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/.exec(q);
    expect(m, `variable ${v.name}: ${q}`).to.not.be.null;
    // The label it lists must be on the metric: as a matcher that matches anything.
    out.push({ where: `variable ${v.name}`, expr: `${m![1]!}` });
  }
  for (const r of alertRules()) out.push({ where: `alert ${r.alert}`, expr: r.expr });
  return out;
}

/** Labels Prometheus adds to every series it scrapes. */
const TARGET_LABELS = new Set(['job', 'instance']);
const DURATION_RE = /^(\d+(ms|[smhdwy]))+$/;

describe('docs/monitoring', () => {
  it('has a well-formed Grafana dashboard', () => {
    const d = dashboard();
    expect(d.uid).to.equal('evtstream');
    const panels = panelsOf(d);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size, 'unique panel ids').to.equal(ids.length);
    for (const p of panels) {
      const g = p.gridPos;
      expect(g.x + g.w, `panel "${p.title}" width`).to.be.at.most(24);
      if (p.type === 'row') continue;
      expect(p.datasource, `panel "${p.title}" data source`).to.deep.equal({
        type: 'prometheus',
        uid: '${datasource}',
      });
      expect(p.targets, `panel "${p.title}" queries`).to.not.be.empty;
      const refs = p.targets!.map((t) => t.refId);
      expect(new Set(refs).size, `panel "${p.title}" refIds`).to.equal(refs.length);
    }
    expect(d.templating.list.map((v) => v.name)).to.deep.equal([
      'datasource',
      'job',
      'instance',
      'consumer',
    ]);
  });

  it('has well-formed alert rules', () => {
    const rules = alertRules();
    expect(rules.map((r) => r.alert)).to.include.members([
      'EvtstreamConsumerLagGrowing',
      'EvtstreamHorizonStalled',
      'EvtstreamPushFailing',
      'EvtstreamArchiverBehind',
      'EvtstreamDiscarderFailing',
      'EvtstreamNoNewEvents',
    ]);
    expect(new Set(rules.map((r) => r.alert)).size, 'unique names').to.equal(rules.length);
    for (const r of rules) {
      expect(r.expr, r.alert).to.be.a('string').and.not.empty;
      if (r.for !== undefined) expect(r.for, `${r.alert} for`).to.match(DURATION_RE);
      expect(['info', 'warning', 'critical'], `${r.alert} severity`).to.include(r.labels.severity);
      expect(r.annotations.summary, `${r.alert} summary`).to.be.a('string').and.not.empty;
      expect(r.annotations.description, `${r.alert} description`).to.be.a('string').and.not.empty;
    }
  });

  it('uses PromQL functions only, with balanced parentheses and readable selectors', () => {
    for (const { where, expr } of expressions()) {
      const { selectors, functions } = parsePromql(expr);
      expect(selectors, `metrics in ${where}`).to.not.be.empty;
      for (const f of functions) expect(PROMQL_FUNCTIONS, `${f}() in ${where}`).to.include(f);
    }
  });

  // The parser itself: what it finds and what it refuses.
  it('finds metric names and matchers in PromQL, not functions, keywords or label lists', () => {
    const { selectors, functions } = parsePromql(
      'max by (job, consumer) (deriv(a_b{consumer=~"(.+:)?X", job="$job"}[15m])) > 0.5 ' +
        'and on (job) changes(c[6h] offset 30m) == 0 unless d / 1e-9',
    );
    expect(selectors).to.deep.equal([
      {
        metric: 'a_b',
        matchers: [
          { label: 'consumer', op: '=~', value: '(.+:)?X' },
          { label: 'job', op: '=', value: '$job' },
        ],
      },
      { metric: 'c', matchers: [] },
      { metric: 'd', matchers: [] },
    ]);
    expect(functions).to.deep.equal(['max', 'deriv', 'changes']);
    expect(() => parsePromql('sum(rate(x[5m])')).to.throw(/parentheses/);
    expect(() => parsePromql('x{a=b}')).to.throw(/label matchers/);
  });
});

describeDatabases('docs/monitoring against a running service', (fx) => {
  let service: StreamService;
  let ccm: AdvancedCCM;
  let warehouseFile: string;
  const ADMIN: [string, string] = ['root', 'root-secret'];

  before(async function () {
    this.timeout(60_000);
    warehouseFile = path.join(os.tmpdir(), `evt_mon_${process.pid}_${Date.now()}.sqlite`);
    service = await startService(fx, {
      admins: new Map([ADMIN]),
      warehouse: parseDbUrl(`sqlite:${warehouseFile}`),
      // Passes only when the test asks.
      discard: { poll_period_ms: 3_600_000 },
    });
    ccm = clientCcm();
    await steps((as) => {
      GenFace.register(as, ccm, 'gen', service.wsUrl, TEST_CREDENTIALS, { secureChannel: true });
      PollFace.register(as, ccm, 'poll', service.wsUrl, TEST_CREDENTIALS, {
        secureChannel: true,
      });
    });
  });
  after(async () => {
    ccm?.close();
    await service?.close();
    for (const ext of ['', '-wal', '-shm']) fs.rmSync(`${warehouseFile}${ext}`, { force: true });
  });

  const scrape = async (): Promise<Exposition> => {
    const rsp = await fetch(new URL('/metrics', service.url), {
      headers: { authorization: basic(...ADMIN) },
    });
    expect(rsp.status).to.equal(200);
    return parseExposition(await rsp.text());
  };

  /** A scrape after the service did all it does: events added, delivered, archived, discarded. */
  async function busyScrape(): Promise<Exposition> {
    // Before any event: the archiver runs and has done nothing (its times and IDs are 0).
    const first = await scrape(); // also starts the latency measures
    for (const [name, v] of [
      ['evtstream_archiver_running', 1],
      ['evtstream_archiver_events_total', 0],
      ['evtstream_archiver_last_event_id', 0],
      ['evtstream_archiver_last_success_timestamp_seconds', 0],
    ] as const) {
      expect(first.samples.get(name), name).to.equal(v);
    }
    const face = (): PollFace => ccm.iface<PollFace>('poll');
    await steps((as) => face().registerConsumer(as, 'MON_POLL'));
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(await steps<string>((as) => ccm.iface<GenFace>('gen').addEvent(as, 'MON', { i })));
    }
    const last = ids[ids.length - 1]!;
    expect(await steps<Event[]>((as) => face().pollEvents(as, 'MON_POLL'))).to.have.length(4);
    await steps((as) => face().pollEvents(as, 'MON_POLL', last));
    const receiver = await connectRaw(service.wsUrl, TEST_CREDENTIALS, 'MON_PUSH');
    try {
      await receiver.until(() => receiver.events.some((e) => e.id === last));
      const app = service.app;
      await waitFor('the archiver to archive everything', () => {
        return app.archiver?.counters.lastId === last;
      });
      // Deletes once every consumer's pointer is stored past the events.
      await waitFor('the discarder to delete', async () => {
        await app.discarder!.runPass();
        return app.discarder!.counters.events > 0;
      });
      // Keeps the push session open: its figures are in the scrape.
      return await scrape();
    } finally {
      receiver.close();
    }
  }

  it('exports every metric the dashboard and the alert rules use, with the labels they match', async function () {
    this.timeout(60_000);
    const e = await busyScrape();
    const byName = new Map<string, Record<string, string>[]>();
    for (const s of e.series) byName.set(s.name, [...(byName.get(s.name) ?? []), s.labels]);
    const used = new Set<string>();
    for (const { where, expr } of expressions()) {
      for (const sel of parsePromql(expr).selectors) {
        used.add(sel.metric);
        const series = byName.get(sel.metric);
        expect(series, `${sel.metric} (${where}) in the scrape`).to.not.be.undefined;
        for (const m of sel.matchers) {
          if (TARGET_LABELS.has(m.label)) continue;
          expect(
            series!.some((l) => m.label in l),
            `${sel.metric} has label ${m.label} (${where})`,
          ).to.be.true;
          if (m.value.includes('$')) continue;
          const re = new RegExp(`^(?:${m.value})$`);
          const hit = series!.some((l) => {
            const v = l[m.label] ?? '';
            return m.op === '=' ? v === m.value : m.op === '=~' ? re.test(v) : true;
          });
          expect(hit, `a series of ${sel.metric} matches ${m.label}${m.op}"${m.value}" (${where})`)
            .to.be.true;
        }
      }
    }
    // What the alerts watch is really covered.
    for (const name of [
      'evtstream_consumer_lag_seconds',
      'evtstream_horizon_held_seconds',
      'evtstream_push_failures_total',
      'evtstream_archiver_batches_total',
      'evtstream_discarder_failures_total',
      'evtstream_newest_event_id',
      'evtstream_delivery_latency_seconds_bucket',
      'evtstream_build_info',
    ]) {
      expect(used, name).to.include(name);
    }
    // The in-process archiver is the consumer the archiver alert matches.
    expect(byName.get('evtstream_consumer_lag_seconds')!.map((l) => l['consumer'])).to.include(
      '-internal:ARCHIVER',
    );
    expect(
      byName.get('evtstream_delivery_age_seconds_count')!.map((l) => l['consumer']),
    ).to.include(`${TEST_USER}:MON_POLL`);
  });
});

/**
 * Our FTN18 interface definitions (specs/*.json) must mean exactly what the official ones in
 * @futoin/specs mean: same types, regexes, defaults, throws, requires, imports, inherit and limits.
 * Only "desc" texts and formatting may differ. Each of ours must also load through
 * futoin-invoker's spec loader (which validates it against the FTN3 JSON schema of its ftn3rev).
 */
import { expect } from 'chai';
import fs from 'fs';
import path from 'path';
import $as from 'futoin-asyncsteps';
import { SpecTools } from 'futoin-invoker';
import { SPEC_DIRS } from '@futoin/specs';

const OUR_DIR = path.resolve(__dirname, '..', 'specs');
const OFFICIAL_DIR = path.join(
  path.dirname(require.resolve('@futoin/specs/package.json')),
  'final',
  'meta',
);
/** Ours first, so they win over the package's copies; futoin.ping comes from the package. */
const OUR_SEARCH_DIRS: readonly string[] = [OUR_DIR, ...SPEC_DIRS];

const IFACES = ['types', 'gen', 'poll', 'push', 'receiver'] as const;
const VERSIONS = ['1.0', '1.1'] as const;
const SPECS = IFACES.flatMap((name) =>
  VERSIONS.map((version) => ({
    iface: `futoin.evt.${name}`,
    version,
    file: `futoin.evt.${name}-${version}-iface.json`,
  })),
);

const EIGHT_MB = 8 * 1024 * 1024;
/** FTN3's default message limit (futoin-invoker's SAFE_PAYLOAD_LIMIT). */
const DEFAULT_LIMIT = 64 * 1024;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function readJson(file: string): Json {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
}

/** Drops every "desc" key at any depth and sorts object keys; array order is kept. */
function normalise(value: Json): Json {
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const key of Object.keys(value).sort()) {
      if (key === 'desc') continue;
      out[key] = normalise(value[key] as Json);
    }
    return out;
  }
  return value;
}

function evtFiles(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('futoin.evt.'))
    .sort();
}

interface CompiledFunc {
  desc?: string;
  _max_req_size: number;
  _max_rsp_size: number;
  [key: string]: unknown;
}

interface CompiledIface {
  iface: string;
  version: string;
  funcs: Record<string, CompiledFunc>;
  types: Record<string, unknown>;
  imports: string[];
  inherits: string[];
  constraints: Record<string, string>;
}

/** Runs SpecTools.loadIface with a fresh load cache; rejects with the loader's error info. */
async function compile(
  iface: string,
  version: string,
  dirs: readonly string[],
): Promise<CompiledIface> {
  const info = { iface, version } as CompiledIface;
  let failure = '';
  try {
    await $as()
      .add(
        (as) => SpecTools.loadIface(as, info, dirs, {}),
        (as, err) => {
          failure = `${err}: ${String(as.state.error_info)}`;
        },
      )
      .promise();
  } catch (e) {
    throw new Error(`loadIface(${iface}:${version}) failed: ${failure || String(e)}`);
  }
  return info;
}

/** Per function: [max request size, max response size] as compiled. */
function limits(info: CompiledIface): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const [name, f] of Object.entries(info.funcs))
    out[name] = [f._max_req_size, f._max_rsp_size];
  return out;
}

describe('FTN18 interface specs (specs/*.json)', () => {
  it('covers exactly the futoin.evt.* files of @futoin/specs', () => {
    const expected = SPECS.map((s) => s.file).sort();
    expect(evtFiles(OFFICIAL_DIR), 'official files').to.deep.equal(expected);
    expect(evtFiles(OUR_DIR), 'our files').to.deep.equal(evtFiles(OFFICIAL_DIR));
  });

  for (const spec of SPECS) {
    describe(spec.file, () => {
      it('is semantically identical to the official definition (ignoring "desc")', () => {
        const ours = readJson(path.join(OUR_DIR, spec.file));
        const official = readJson(path.join(OFFICIAL_DIR, spec.file));
        expect(normalise(ours)).to.deep.equal(normalise(official));
      });

      it('loads through futoin-invoker SpecTools.loadIface, from our folder', async () => {
        const raw = readJson(path.join(OUR_DIR, spec.file)) as {
          funcs?: Record<string, { desc?: string }>;
          types?: Record<string, { desc?: string } | string>;
        };
        const info = await compile(spec.iface, spec.version, OUR_SEARCH_DIRS);
        expect(info.iface).to.equal(spec.iface);
        expect(info.version).to.equal(spec.version);

        // Our own "desc" texts show up in the result, so the loader really used our file.
        let probes = 0;
        for (const [name, f] of Object.entries(raw.funcs ?? {})) {
          expect(info.funcs[name]?.desc, `funcs.${name}.desc`).to.equal(f.desc);
          probes++;
        }
        for (const [name, t] of Object.entries(raw.types ?? {})) {
          if (typeof t === 'string') continue;
          expect((info.types[name] as { desc?: string }).desc, `types.${name}.desc`).to.equal(
            t.desc,
          );
          probes++;
        }
        expect(probes).to.be.greaterThan(0);

        // Same compiled shape and limits as the official definition.
        const official = await compile(spec.iface, spec.version, [OFFICIAL_DIR]);
        expect(Object.keys(info.funcs).sort()).to.deep.equal(Object.keys(official.funcs).sort());
        expect(Object.keys(info.types).sort()).to.deep.equal(Object.keys(official.types).sort());
        expect(info.imports).to.deep.equal(official.imports);
        expect(info.inherits).to.deep.equal(official.inherits);
        expect(info.constraints).to.deep.equal(official.constraints);
        expect(limits(info)).to.deep.equal(limits(official));
      });
    });
  }

  describe('message size limits as compiled', () => {
    it('poll 1.1 pollEvents allows 8M responses; poll 1.0 keeps the 64K default', async () => {
      const v11 = await compile('futoin.evt.poll', '1.1', OUR_SEARCH_DIRS);
      expect(v11.funcs['pollEvents']?._max_rsp_size).to.equal(EIGHT_MB);
      expect(v11.funcs['pollEvents']?._max_req_size).to.equal(DEFAULT_LIMIT);
      expect(v11.funcs['registerConsumer']?._max_rsp_size).to.equal(DEFAULT_LIMIT);

      const v10 = await compile('futoin.evt.poll', '1.0', OUR_SEARCH_DIRS);
      expect(v10.funcs['pollEvents']?._max_rsp_size).to.equal(DEFAULT_LIMIT);
    });

    it('receiver 1.1 onEvents allows 8M requests; receiver 1.0 keeps the 64K default', async () => {
      const v11 = await compile('futoin.evt.receiver', '1.1', OUR_SEARCH_DIRS);
      expect(v11.funcs['onEvents']?._max_req_size).to.equal(EIGHT_MB);
      expect(v11.funcs['onEvents']?._max_rsp_size).to.equal(DEFAULT_LIMIT);

      const v10 = await compile('futoin.evt.receiver', '1.0', OUR_SEARCH_DIRS);
      expect(v10.funcs['onEvents']?._max_req_size).to.equal(DEFAULT_LIMIT);
    });

    it('push 1.1 inherits poll 1.0, so its pollEvents keeps the 64K default (as officially)', async () => {
      const push = await compile('futoin.evt.push', '1.1', OUR_SEARCH_DIRS);
      expect(push.inherits).to.deep.equal(['futoin.evt.poll:1.0']);
      expect(push.funcs['pollEvents']?._max_rsp_size).to.equal(DEFAULT_LIMIT);
      expect(push.funcs['readyToReceive']?._max_rsp_size).to.equal(DEFAULT_LIMIT);
    });
  });
});

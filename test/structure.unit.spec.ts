/**
 * The shape of src/: each folder imports only the layers below it (the rule is MAY_IMPORT in
 * test/support/structure.ts), futoin-* internals are reached only in src/futoin, and no message
 * below the app names a CLI command. Each scan is first shown to catch what it looks for on a
 * small fixture, then run over src/.
 */
import { expect } from 'chai';
import path from 'path';
import type ts from 'typescript';
import {
  cliCommandMentions,
  createProgram,
  futoinInternalUses,
  importsOf,
  importViolations,
  readSources,
  ROOT,
  SRC,
  tsFiles,
} from './support/structure';

/**
 * Imports against the rule that other work of issue 12 removes. Each must still occur: a stale
 * entry fails too, so the list only shrinks.
 */
const KNOWN_EXCEPTIONS: ReadonlyArray<{ file: string; target: string; until: string }> = [];

/** Line numbers of `text` that carry `marker`. */
const markedLines = (text: string, marker: string): number[] =>
  text
    .split('\n')
    .flatMap((line, i) => (line.includes(marker) ? [i + 1] : []))
    .sort((a, b) => a - b);

const uniqueSorted = (lines: number[]): number[] => [...new Set(lines)].sort((a, b) => a - b);

describe('structure of src/', function () {
  describe('imports point one way', function () {
    it('sees every form of import, and flags a computed one', function () {
      const text = [
        "import a from './a';",
        "import type { B } from './b';",
        "export { c } from './c';",
        "export * from './d';",
        "import e = require('./e');",
        "const f = import('./f');",
        "const g = require('./g');",
        "let h: typeof import('./h');",
        'const i = import(name);',
      ].join('\n');
      expect(importsOf('x.ts', text)).to.deep.equal([
        { specifier: './a', line: 1 },
        { specifier: './b', line: 2 },
        { specifier: './c', line: 3 },
        { specifier: './d', line: 4 },
        { specifier: './e', line: 5 },
        { specifier: './f', line: 6 },
        { specifier: './g', line: 7 },
        { specifier: './h', line: 8 },
        { specifier: null, line: 9 },
      ]);
    });

    it('reports an import against the flow, an unknown folder, a way out of src/', function () {
      const files = new Map([
        [
          path.join(SRC, 'receiving', 'r.ts'),
          "import { y } from '../common/y';\nimport type { P } from '../delivery/poll/P';",
        ],
        [path.join(SRC, 'common', 'c.ts'), "export * from './faces/F';\nimport('../storage/s');"],
        [path.join(SRC, 'ops', 'o.ts'), "import '../transport/t';\nimport '../app/a';"],
        [path.join(SRC, 'newfolder', 'n.ts'), "export * from '../common/y';"],
        [path.join(SRC, 'storage', 's.ts'), "import '../../test/support/db';\nrequire(name);"],
        [path.join(SRC, 'index.ts'), "export * from './app/a';"],
      ]);
      const found = importViolations(files).map((v) => `${v.file}:${v.line} ${v.message}`);
      expect(found).to.deep.equal([
        'src/receiving/r.ts:2 receiving may not import delivery',
        'src/common/c.ts:2 common may not import storage',
        'src/ops/o.ts:2 ops may not import app',
        'src/newfolder/n.ts:1 newfolder is not in the layering rule',
        'src/storage/s.ts:1 imports from outside src/',
        'src/storage/s.ts:2 a dynamic import of a computed name cannot be checked',
      ]);
    });

    it('holds in src/, but for the known exceptions, each still there', function () {
      const found = importViolations(readSources(SRC));
      const isKnown = (v: { file: string; target: string }): boolean =>
        KNOWN_EXCEPTIONS.some((k) => k.file === v.file && k.target === v.target);
      const unexpected = found
        .filter((v) => !isKnown(v))
        .map((v) => `${v.file}:${v.line} imports ${v.target}: ${v.message}`);
      const stale = KNOWN_EXCEPTIONS.filter(
        (k) => !found.some((v) => v.file === k.file && v.target === k.target),
      ).map((k) => `${k.file} no longer imports ${k.target}: remove it from KNOWN_EXCEPTIONS`);
      expect(unexpected, 'imports against the layering rule').to.deep.equal([]);
      expect(stale, 'known exceptions that are gone').to.deep.equal([]);
    });
  });

  describe('futoin internals stay in src/futoin', function () {
    // Building a program over src/ and its checker takes seconds: one for both tests.
    this.timeout(60_000);
    const dir = path.join(ROOT, 'test', 'structure-fixture');
    const futoinDir = path.join(dir, 'futoin');
    const base = [
      "import { NodeExecutor } from 'futoin-executor';",
      'export class Hooked extends NodeExecutor {',
      '  protected get _limit(): number {',
      '    return this._maxRspSize;',
      '  }',
      '}',
    ].join('\n');
    const uses = [
      "import { NodeExecutor, SecurityProvider, type Executor, type RequestInfo } from 'futoin-executor';",
      "import type { AsyncSteps } from 'futoin-asyncsteps';",
      "import PingService from 'futoin-executor/PingService';",
      "import { Hooked } from './futoin/base';",
      'export function casts(executor: Executor): unknown {',
      '  return (executor as unknown as { _ifaces: unknown })._ifaces; // REPORTED',
      '}',
      'export function strings(executor: Executor): unknown {',
      "  return Reflect.get(executor, '_impls'); // REPORTED",
      '}',
      'export function within(executor: Executor): boolean {',
      "  return '_pool' in executor; // REPORTED",
      '}',
      'export function element(executor: Executor): unknown {',
      "  return (executor as unknown as Record<string, unknown>)['_ws_conn']; // REPORTED",
      '}',
      'export function untyped(x: any): unknown {',
      '  return x._iface_info; // REPORTED',
      '}',
      'export function destructured(service: object): unknown {',
      '  const { _db } = service as { _db: unknown }; // REPORTED',
      '  return _db;',
      '}',
      'export class Overrides extends NodeExecutor {',
      '  protected _isSecureChannel(): boolean { // REPORTED',
      '    return true;',
      '  }',
      '}',
      'export class Declared extends SecurityProvider {',
      '  set(as: AsyncSteps, reqinfo: RequestInfo): void {',
      "    this._setUser(as, reqinfo, 'Info', { local_id: 'a', global_id: 'a' }); // REPORTED",
      '  }',
      '}',
      'export class ThroughOurBase extends Hooked {',
      '  protected _handleWSRequest(): void {} // REPORTED',
      '  get size(): number {',
      '    return this._limit + this._maxRspSize; // REPORTED',
      '  }',
      '}',
      'export class Ours extends PingService {',
      '  private _count = 0;',
      '  _close(): void {',
      '    this._count++;',
      '  }',
      '}',
      'export function ours(o: Ours): void {',
      '  o._close();',
      '}',
    ].join('\n');
    const overlay = new Map([
      [path.join(futoinDir, 'base.ts'), base],
      [path.join(dir, 'uses.ts'), uses],
    ]);
    const srcFiles = tsFiles(SRC);
    let program: ts.Program;
    before(function () {
      program = createProgram([...srcFiles, ...overlay.keys()], overlay);
    });

    it('reports each way of reaching an underscore member of futoin, and none of ours', function () {
      const found = futoinInternalUses(program, [...overlay.keys()], futoinDir);
      expect(found.every((u) => u.file === 'test/structure-fixture/uses.ts')).to.equal(true);
      expect(uniqueSorted(found.map((u) => u.line))).to.deep.equal(markedLines(uses, 'REPORTED'));
    });

    it('holds in src/', function () {
      const found = futoinInternalUses(program, srcFiles).map(
        (u) => `${u.file}:${u.line} ${u.what}`,
      );
      expect(found, 'futoin internals reached outside src/futoin').to.deep.equal([]);
    });
  });

  describe('messages below the app', function () {
    it('finds an evtstream command in strings and templates, not in comments or names', function () {
      const file = path.join(SRC, 'delivery', 'x.ts');
      const text = [
        '// evtstream events, in a comment, is fine',
        "const metric = 'evtstream_push_calls_total';",
        'log.error(`to skip it: evtstream consumer reset ${name} --to ${id}`);',
        "const help = 'run evtstream migrate first';",
      ].join('\n');
      expect(cliCommandMentions(new Map([[file, text]])).map((m) => m.line)).to.deep.equal([3, 4]);
    });

    it('name no CLI command: the app adds such hints', function () {
      const appDir = path.join(SRC, 'app') + path.sep;
      const below = new Map([...readSources(SRC)].filter(([f]) => !f.startsWith(appDir)));
      const found = cliCommandMentions(below).map((m) => `${m.file}:${m.line} ${m.what}`);
      expect(found).to.deep.equal([]);
    });
  });
});

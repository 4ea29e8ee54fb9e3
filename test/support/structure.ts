/**
 * Source scans behind test/structure.unit.spec.ts: the imports between the folders of src/, and
 * who reaches the underscore members of futoin-* objects. Each works on given files, so the
 * spec can show on small fixtures that it catches what it is meant to.
 */
import fs from 'fs';
import path from 'path';
import ts from 'typescript';

export const ROOT = path.resolve(__dirname, '..', '..');
export const SRC = path.join(ROOT, 'src');

/** Every .ts file under `dir`, absolute, sorted. */
export function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(full));
    else if (entry.name.endsWith('.ts')) out.push(full);
  }
  return out.sort();
}

const rel = (file: string): string => path.relative(ROOT, file).split(path.sep).join('/');

const lineOf = (sf: ts.SourceFile, node: ts.Node): number =>
  sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;

// --- imports -------------------------------------------------------------------------------

export interface ImportRef {
  specifier: string;
  line: number;
}

/**
 * The modules a source imports: `import` (type-only too), `export ... from`, `import x =
 * require()`, `import()`, `require()` and `import('...')` types. A dynamic import or require of
 * something other than a string literal is returned with specifier null: it cannot be checked.
 */
export function importsOf(
  fileName: string,
  text: string,
): Array<ImportRef | { specifier: null; line: number }> {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: Array<ImportRef | { specifier: null; line: number }> = [];
  const add = (node: ts.Node, spec: ts.Node | undefined): void => {
    found.push({
      specifier: spec && ts.isStringLiteralLike(spec) ? spec.text : null,
      line: lineOf(sf, node),
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      if (node.moduleSpecifier) add(node, node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node)) {
      if (ts.isExternalModuleReference(node.moduleReference))
        add(node, node.moduleReference.expression);
    } else if (ts.isCallExpression(node)) {
      const callee = node.expression;
      if (
        callee.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(callee) && callee.text === 'require')
      )
        add(node, node.arguments[0]);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      add(node, ts.isLiteralTypeNode(arg) ? arg.literal : undefined);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/**
 * Which folders of src/ each folder may import (besides its own): lower layers only, and none
 * beside it. `main` is the package main (src/index.ts), which exports everything.
 *
 *   common (faces: the wire API both sides use) ← futoin (FutoIn internals)
 *   ← storage, transport (HTTP server, NodeExecutor, authentication), receiving (consumers)
 *   ← generation, delivery (services over the store)
 *   ← ops (admin, metrics, console: they register HTTP routes), maintenance (the archiver is
 *     a ReliableReceiver)
 *   ← app (DBServiceApp, the CLI) ← main, compat (the reference's per-class modules)
 */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  common: [],
  futoin: ['common'],
  storage: ['common', 'futoin'],
  transport: ['common', 'futoin'],
  receiving: ['common', 'futoin'],
  generation: ['common', 'futoin', 'storage'],
  delivery: ['common', 'futoin', 'storage'],
  ops: ['common', 'futoin', 'storage', 'transport', 'generation', 'delivery'],
  maintenance: ['common', 'futoin', 'storage', 'receiving', 'generation', 'delivery'],
  app: [
    'common',
    'futoin',
    'storage',
    'transport',
    'receiving',
    'generation',
    'delivery',
    'ops',
    'maintenance',
  ],
  /** futoin-eventstream's per-class modules (`ftn18-eventstream/DBServiceApp`...), beside main. */
  compat: [
    'common',
    'futoin',
    'storage',
    'transport',
    'receiving',
    'generation',
    'delivery',
    'ops',
    'maintenance',
    'app',
  ],
  main: [
    'common',
    'futoin',
    'storage',
    'transport',
    'receiving',
    'generation',
    'delivery',
    'ops',
    'maintenance',
    'app',
  ],
};

/** The layer of a path under src/ ('delivery/push/hub.ts' → delivery; 'index.ts' → main). */
export function layerOf(srcRelative: string): string {
  const parts = srcRelative.split('/');
  return parts.length === 1 ? 'main' : parts[0]!;
}

export interface ImportViolation {
  /** The importing file, from the repository root (src/...). */
  file: string;
  line: number;
  /** The imported module, from the repository root without extension (src/ops/counters). */
  target: string;
  message: string;
}

/**
 * Imports in `files` (absolute path → text, all under `srcDir`) that the rule does not allow:
 * a folder importing a higher one or one beside it, a folder the rule does not know, an import
 * that leaves src/ through a relative path, and a dynamic import that cannot be checked.
 */
export function importViolations(
  files: ReadonlyMap<string, string>,
  srcDir = SRC,
  rule = MAY_IMPORT,
): ImportViolation[] {
  const out: ImportViolation[] = [];
  for (const [file, text] of files) {
    const from = layerOf(path.relative(srcDir, file).split(path.sep).join('/'));
    for (const ref of importsOf(file, text)) {
      const report = (target: string, message: string): void => {
        out.push({ file: rel(file), line: ref.line, target, message });
      };
      if (ref.specifier === null) {
        report('?', 'a dynamic import of a computed name cannot be checked');
        continue;
      }
      if (!ref.specifier.startsWith('.')) continue;
      const resolved = path.resolve(path.dirname(file), ref.specifier);
      const inSrc = path.relative(srcDir, resolved).split(path.sep).join('/');
      if (inSrc.startsWith('..')) {
        report(rel(resolved), 'imports from outside src/');
        continue;
      }
      const to = layerOf(inSrc);
      const target = rel(resolved);
      if (!(from in rule)) report(target, `${from} is not in the layering rule`);
      else if (to !== from && !rule[from]!.includes(to))
        report(target, `${from} may not import ${to}`);
    }
  }
  return out;
}

/** The .ts files under `dir` with their text. */
export function readSources(dir: string): Map<string, string> {
  return new Map(tsFiles(dir).map((f) => [f, fs.readFileSync(f, 'utf8')]));
}

// --- futoin internals ----------------------------------------------------------------------

const UNDERSCORE = /^_[A-Za-z]/;

/** The futoin-* module (`declare module 'futoin-executor'`) a declaration is written in, if any. */
function futoinModuleOf(decl: ts.Node): string | null {
  for (let n: ts.Node | undefined = decl; n; n = n.parent) {
    if (
      ts.isModuleDeclaration(n) &&
      ts.isStringLiteral(n.name) &&
      n.name.text.startsWith('futoin-')
    )
      return n.name.text;
  }
  return null;
}

/** The runtime class a futoin declaration stands for (its prototype is what we compare to). */
function runtimeClass(moduleName: string, className: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(moduleName) as unknown;
  // `export = Class` modules are the class; others hold it by name.
  if (typeof mod === 'function' && mod.name === className) return mod;
  const named = (mod as Record<string, unknown>)[className];
  return typeof named === 'function' ? named : null;
}

function hasProtoMember(cls: unknown, name: string): boolean {
  if (typeof cls !== 'function') return false;
  for (let p = (cls as { prototype: unknown }).prototype; p && p !== Object.prototype;) {
    if (Object.prototype.hasOwnProperty.call(p, name)) return true;
    p = Object.getPrototypeOf(p) as unknown;
  }
  return false;
}

export interface InternalUse {
  file: string;
  line: number;
  what: string;
}

/**
 * Uses of futoin-* objects' underscore members in `files` that are outside `futoinDir`:
 * - reading or calling one (`x._pool`, `this._setUser()`) that futoin's typings declare, that
 *   src/futoin declares, that an interface or type literal declares (a cast to reach it), or
 *   that nothing declares (through `any`);
 * - declaring one in a class that extends a futoin class: overriding what the runtime class has
 *   (`_isSecureChannel`), or what its typings declare;
 * - declaring one in an interface or type literal (the shape of a cast);
 * - naming one as a string (`Reflect.get(x, '_ifaces')`, `x['_impls']`, `'_pool' in x`).
 * Underscore members of our own classes (a service's `_close`) are ours to use.
 */
export function futoinInternalUses(
  program: ts.Program,
  files: readonly string[],
  futoinDir = path.join(SRC, 'futoin'),
): InternalUse[] {
  const checker = program.getTypeChecker();
  const out: InternalUse[] = [];
  const inFutoinDir = (f: string): boolean => !path.relative(futoinDir, f).startsWith('..');

  /** Why a member symbol is futoin's, or null if it is ours. */
  const foreign = (symbol: ts.Symbol | undefined): string | null => {
    const decls = symbol?.declarations ?? [];
    if (decls.length === 0) return 'an undeclared member';
    for (const d of decls) {
      const f = d.getSourceFile().fileName;
      if (futoinModuleOf(d)) return `a member of ${futoinModuleOf(d)}`;
      if (f.includes('/node_modules/')) return 'a member declared by a package';
      if (inFutoinDir(f)) return 'a member of src/futoin';
      if (ts.isPropertySignature(d) || ts.isMethodSignature(d)) return 'a member of a cast shape';
    }
    return null;
  };

  interface Base {
    type: ts.Type;
    /** What it is: `futoin-executor NodeExecutor`, or a class of src/futoin. */
    label: string;
    /** The runtime class, for a class of a futoin-* package. */
    runtime: unknown;
  }

  /** The classes a class extends that are futoin's (packages' or src/futoin's), nearest first. */
  const futoinBases = (cls: ts.ClassLikeDeclaration): Base[] => {
    const found: Base[] = [];
    const walk = (t: ts.Type): void => {
      for (const base of checker.getBaseTypes(t as ts.InterfaceType)) {
        const decl = base.getSymbol()?.declarations?.[0];
        if (decl && ts.isClassDeclaration(decl) && decl.name) {
          const module = futoinModuleOf(decl);
          if (module) {
            const name = decl.name.text;
            found.push({
              type: base,
              label: `${module} ${name}`,
              runtime: runtimeClass(module, name),
            });
          } else if (inFutoinDir(decl.getSourceFile().fileName)) {
            found.push({ type: base, label: `src/futoin ${decl.name.text}`, runtime: null });
          }
        }
        walk(base);
      }
    };
    walk(checker.getTypeAtLocation(cls));
    return found;
  };

  /** Whether `base` has a member `name` of futoin's: at runtime, or in the declarations. */
  const baseHas = (base: Base, name: string): boolean => {
    if (hasProtoMember(base.runtime, name)) return true;
    const prop = base.type.getProperty(name);
    return prop !== undefined && foreign(prop) !== null;
  };

  for (const file of files) {
    if (inFutoinDir(file)) continue;
    const sf = program.getSourceFile(file);
    if (!sf) throw new Error(`${file} is not in the program`);
    const report = (node: ts.Node, what: string): void => {
      out.push({ file: rel(file), line: lineOf(sf, node), what });
    };
    const visit = (node: ts.Node): void => {
      if (ts.isPropertyAccessExpression(node) && UNDERSCORE.test(node.name.text)) {
        const why = foreign(checker.getSymbolAtLocation(node.name));
        if (why) report(node.name, `.${node.name.text}: ${why}`);
      } else if (
        ts.isBindingElement(node) &&
        ts.isObjectBindingPattern(node.parent) &&
        !node.dotDotDotToken
      ) {
        const key = node.propertyName ?? node.name;
        if (ts.isIdentifier(key) && UNDERSCORE.test(key.text)) {
          const prop = checker.getTypeAtLocation(node.parent).getProperty(key.text);
          const why = foreign(prop);
          if (why) report(node, `destructuring ${key.text}: ${why}`);
        }
      } else if ((ts.isPropertySignature(node) || ts.isMethodSignature(node)) && node.name) {
        if (ts.isIdentifier(node.name) && UNDERSCORE.test(node.name.text))
          report(node, `a shape with ${node.name.text}`);
      } else if (ts.isClassLike(node)) {
        const bases = futoinBases(node);
        if (bases.length > 0) {
          for (const member of node.members) {
            const name = member.name && ts.isIdentifier(member.name) ? member.name.text : null;
            if (!name || !UNDERSCORE.test(name)) continue;
            const hit = bases.find((b) => baseHas(b, name));
            if (hit) report(member, `${name} overrides a member of ${hit.label}`);
          }
        }
      } else if (ts.isStringLiteralLike(node) && UNDERSCORE.test(node.text)) {
        const p = node.parent;
        const named =
          (ts.isElementAccessExpression(p) && p.argumentExpression === node) ||
          (ts.isBinaryExpression(p) &&
            p.operatorToken.kind === ts.SyntaxKind.InKeyword &&
            p.left === node) ||
          (ts.isCallExpression(p) &&
            ts.isPropertyAccessExpression(p.expression) &&
            ts.isIdentifier(p.expression.expression) &&
            ['Reflect', 'Object'].includes(p.expression.expression.text));
        if (named) report(node, `'${node.text}' named as a string`);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

/** The compiler options of tsconfig.json (what the rest of the checks compile with). */
export function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(path.join(ROOT, 'tsconfig.json'), ts.sys.readFile.bind(ts.sys));
  return ts.parseJsonConfigFileContent(config.config, ts.sys, ROOT).options;
}

/** A program over `files` plus our futoin typings; `overlay` replaces or adds file texts. */
export function createProgram(
  files: readonly string[],
  overlay: ReadonlyMap<string, string> = new Map(),
): ts.Program {
  const options = compilerOptions();
  const host = ts.createCompilerHost(options, true);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) => {
    const text = overlay.get(path.resolve(name));
    return text !== undefined
      ? ts.createSourceFile(name, text, lang, true)
      : getSourceFile(name, lang, onError, create);
  };
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => overlay.has(path.resolve(name)) || fileExists(name);
  const dirs = new Set([...overlay.keys()].map((f) => path.dirname(f)));
  const directoryExists = host.directoryExists?.bind(host);
  host.directoryExists = (name) =>
    dirs.has(path.resolve(name)) || (directoryExists ? directoryExists(name) : true);
  return ts.createProgram([...files, ...tsFiles(path.join(ROOT, 'types'))], options, host);
}

// --- messages ------------------------------------------------------------------------------

/**
 * String literals (and template texts) in `files` that name an `evtstream` command: below the
 * app, log lines and errors say what to do, the app says with which command.
 */
export function cliCommandMentions(files: ReadonlyMap<string, string>): InternalUse[] {
  const out: InternalUse[] = [];
  const command = /\bevtstream\s+[a-z]/;
  for (const [file, text] of files) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const visit = (node: ts.Node): void => {
      if (
        (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) &&
        command.test(node.text)
      )
        out.push({ file: rel(file), line: lineOf(sf, node), what: node.text });
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}

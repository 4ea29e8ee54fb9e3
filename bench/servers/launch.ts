/**
 * Starts either server on a fresh database, each in its own `node` process.
 *
 * The reference script (reference.ts) is transpiled to JavaScript once per benchmark run and
 * run with plain `node`: under `node --import tsx` the loader's own thread and esbuild would add
 * some 30 MB to its peak memory, which is not the reference's.
 */
import fs from 'fs';
import path from 'path';
import ts from 'typescript';
import { CREDENTIALS } from '../client';
import type { DbKind, FreshDb } from '../db';
import { startOurs } from './ours';
import { childEnv, ServerProcess, type Side } from './process';

const ROOT = path.resolve(__dirname, '..', '..');
/** Under node_modules, so that the script resolves the project's packages as from bench/. */
const BUILD_DIR = path.join(ROOT, 'node_modules', '.cache', 'ftn18-bench');

let referenceJs: string | null = null;

function buildReference(): string {
  if (referenceJs) return referenceJs;
  const source = fs.readFileSync(path.join(__dirname, 'reference.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
    },
    fileName: 'reference.ts',
  });
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  const file = path.join(BUILD_DIR, 'reference.js');
  fs.writeFileSync(file, outputText);
  referenceJs = file;
  return file;
}

const schemaDir = (kind: DbKind): string =>
  path.join(
    path.dirname(require.resolve('futoin-eventstream/package.json')),
    'sql',
    'active',
    kind,
  );

export function startReference(
  db: FreshDb,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  return ServerProcess.start(
    'reference',
    [buildReference()],
    childEnv({
      ...db.referenceEnv,
      BENCH_USERS: CREDENTIALS,
      BENCH_SCHEMA_DIR: schemaDir(db.kind),
    }),
    nodeArgs,
  );
}

/** `nodeArgs` go to `node` before the script (e.g. --cpu-prof). */
export function startServer(
  side: Side,
  db: FreshDb,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  return side === 'ours' ? startOurs(db, nodeArgs) : startReference(db, nodeArgs);
}

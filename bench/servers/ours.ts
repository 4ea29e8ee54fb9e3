/**
 * Our service as it ships: `node bin/evtstream.js serve` on a free loopback port (built first
 * when dist/ is older than src/), with the bench user in EVTSTREAM_USERS and an admin (for
 * /metrics and ftn18es.admin) in EVTSTREAM_ADMINS.
 */
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { ADMIN_CREDENTIALS, CREDENTIALS } from '../client';
import type { FreshDb } from '../db';
import { childEnv, ServerProcess } from './process';

const ROOT = path.resolve(__dirname, '..', '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Runs `npm run build`'s compiler when dist/ is missing or older than src/. */
export function ensureBuilt(say: (line: string) => void): void {
  const built = path.join(ROOT, 'dist', 'index.js');
  const sources = Math.max(
    newestMtime(path.join(ROOT, 'src')),
    fs.statSync(path.join(ROOT, 'tsconfig.build.json')).mtimeMs,
  );
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= sources) return;
  say('dist/ is older than src/: building (tsc -p tsconfig.build.json)');
  const tsc = require.resolve('typescript/bin/tsc');
  const res = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (res.status !== 0) throw new Error('The build failed: fix it or run npm run build');
}

/** Our `serve` on `db`, on a free loopback port; `serveArgs` go after its own options. */
export function startOurs(
  db: FreshDb,
  nodeArgs: readonly string[] = [],
  serveArgs: readonly string[] = [],
): Promise<ServerProcess> {
  const args = [
    path.join(ROOT, 'bin', 'evtstream.js'),
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--db',
    db.ourUrl,
    '--log-level',
    'warn',
    ...serveArgs,
  ];
  return ServerProcess.start(
    'ours',
    args,
    childEnv({ EVTSTREAM_USERS: CREDENTIALS, EVTSTREAM_ADMINS: ADMIN_CREDENTIALS }),
    nodeArgs,
  );
}

import fs from 'fs';
import type { IncomingMessage, ServerResponse } from 'http';
import path from 'path';
import type { EvtNodeExecutor } from '../transport/executor';

/** The console's files: plain HTML, JavaScript and CSS, served as they are (no build step). */
export const CONSOLE_DIR = path.resolve(__dirname, '..', '..', 'console');

/** Where the console is served. */
export const CONSOLE_PATH = '/console';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The file a request names under CONSOLE_PATH, or null if it names none. */
function fileOf(url: string): string | null {
  const q = url.search(/[?#]/);
  let rel: string;
  try {
    rel = decodeURIComponent((q < 0 ? url : url.slice(0, q)).slice(CONSOLE_PATH.length));
  } catch {
    return null;
  }
  if (rel === '' || rel === '/') rel = '/index.html';
  // Plain names only: no way out of the folder, no hidden files.
  if (!/^(\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)+$/.test(rel) || rel.includes('..')) return null;
  const ext = path.extname(rel);
  return TYPES[ext] ? path.join(CONSOLE_DIR, rel) : null;
}

/**
 * Serves the console's static files. They hold nothing secret: the page asks for an admin's
 * name and secret and makes every call (ftn18es.admin over WebSocket) with them, so anyone
 * without the admin right sees a login form and nothing else.
 */
export function consoleRoute(req: IncomingMessage, rsp: ServerResponse): void {
  const url = req.url ?? CONSOLE_PATH;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    rsp.writeHead(405, { Allow: 'GET, HEAD' }).end();
    return;
  }
  if (url === CONSOLE_PATH || url.startsWith(`${CONSOLE_PATH}?`)) {
    // Relative links in the page resolve under /console/.
    rsp.writeHead(301, { Location: `${CONSOLE_PATH}/` }).end();
    return;
  }
  const file = fileOf(url);
  if (!file) {
    rsp.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found\n');
    return;
  }
  fs.readFile(file, (err, body) => {
    if (err) {
      rsp.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found\n');
      return;
    }
    rsp.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)]!,
      'Content-Length': body.length,
      'Cache-Control': 'no-cache',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy':
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
    });
    rsp.end(req.method === 'HEAD' ? undefined : body);
  });
}

/** Serves the console at /console on the executor's HTTP server. */
export function serveConsole(executor: EvtNodeExecutor): void {
  executor.route(CONSOLE_PATH, consoleRoute);
}

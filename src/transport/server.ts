import http from 'http';
import https from 'https';
import type { AddressInfo } from 'net';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** A plain or TLS HTTP server, not listening yet. */
export function createHttpServer(tls?: TlsFiles): http.Server {
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }) : http.createServer();
  // Slow or idle clients must not pin sockets for ever.
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 30_000;
  return server;
}

export function listen(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** `http://host:port/` (or https), with IPv6 hosts bracketed. */
export function serverUrl(addr: AddressInfo, tls: boolean, scheme: 'http' | 'ws' = 'http'): string {
  const host =
    addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return `${scheme}${tls ? 's' : ''}://${host}:${addr.port}/`;
}

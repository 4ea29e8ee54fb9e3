import type { IncomingMessage } from 'http';

/** Where a FutoIn request came from, as the transport saw it (none: an in-process call). */
export interface RequestSource {
  /** The Origin header of its HTTP request or WebSocket upgrade (browsers send it), if any. */
  origin: string | null;
  /** No Origin (not a browser), or the service's own origin, or one allowed. */
  sameOrigin: boolean;
  /**
   * Called in the URL form (`/iface/version/func?params`, GET or POST): credentials may then
   * come from an HTTP Authorization header, which a browser sends by itself once it knows them.
   */
  urlForm: boolean;
}

const sources = new WeakMap<object, RequestSource>();

/** Notes where the request (the object that becomes RequestInfo's RAW_REQUEST) came from. */
export function recordRequestSource(rawRequest: object, source: RequestSource): void {
  sources.set(rawRequest, source);
}

/** Where the request came from, or null for one the transport did not see (in process). */
export function requestSourceOf(rawRequest: unknown): RequestSource | null {
  return typeof rawRequest === 'object' && rawRequest !== null
    ? (sources.get(rawRequest) ?? null)
    : null;
}

/** An origin as browsers write it (`scheme://host[:port]`, lower case), or null. */
export function normalOrigin(text: string): string | null {
  try {
    const u = new URL(text);
    return u.protocol === 'http:' || u.protocol === 'https:' ? `${u.protocol}//${u.host}` : null;
  } catch {
    return null;
  }
}

/**
 * The request's Origin header and whether it is the service's own: the host (and port) the
 * browser connected to, as the Host header (or, behind a trusted proxy, X-Forwarded-Host) says,
 * or one of `allowed` (normalOrigin form). A request without an Origin is no browser's cross-site
 * request; Origin `null` (sandboxed frames, files) never matches.
 */
export function originOf(
  req: IncomingMessage,
  allowed: ReadonlySet<string>,
  trustProxy: boolean,
): { origin: string | null; sameOrigin: boolean } {
  const header = req.headers.origin;
  if (header === undefined) return { origin: null, sameOrigin: true };
  const origin = normalOrigin(header);
  if (origin === null) return { origin: header, sameOrigin: false };
  if (allowed.has(origin)) return { origin, sameOrigin: true };
  const forwarded = trustProxy ? req.headers['x-forwarded-host'] : undefined;
  const host = (typeof forwarded === 'string' ? forwarded.split(',')[0]! : (req.headers.host ?? ''))
    .trim()
    .toLowerCase();
  return { origin, sameOrigin: host !== '' && new URL(origin).host === host };
}

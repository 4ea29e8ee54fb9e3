import type { ConnectionOptions } from 'tls';
import { describeConnection, type ConnectionConfig, type DbTls } from './config';

/*
 * DbTls as each driver takes it. pg (ours and futoin-database's) hands Node's TLS options to
 * tls.connect; mysql2 and mysqljs (futoin-database's MySQL driver) take their own `ssl` object.
 */

/** libpq's rule: `require` checks the certificate's chain only when a CA is given. */
const checksChain = (t: DbTls): boolean => t.mode !== 'require' || t.ca !== undefined;

const material = (t: DbTls): { ca?: string; cert?: string; key?: string } => ({
  ...(t.ca !== undefined ? { ca: t.ca } : {}),
  ...(t.cert !== undefined ? { cert: t.cert } : {}),
  ...(t.key !== undefined ? { key: t.key } : {}),
});

/** The host check of modes below verify-full: none (one function, so it can be recognised). */
export const skipHostCheck = (): undefined => undefined;

/** Node's TLS options (pg's `ssl`). */
export function nodeTlsOptions(t: DbTls): ConnectionOptions {
  return {
    ...material(t),
    rejectUnauthorized: checksChain(t),
    // Only verify-full checks that the certificate names the host.
    ...(t.mode === 'verify-full' ? {} : { checkServerIdentity: skipHostCheck }),
  };
}

/** mysql2's `ssl` (mysqljs reads the same fields but for verifyIdentity: see the README). */
export function mysqlTlsOptions(t: DbTls): {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  verifyIdentity: boolean;
} {
  return {
    ...material(t),
    rejectUnauthorized: checksChain(t),
    verifyIdentity: t.mode === 'verify-full',
  };
}

/** Node's codes (`X509_V_ERR_*` names) and messages of a certificate that does not check out. */
const CERT_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
]);
const CERT_TEXT =
  /self[- ]signed certificate|unable to (get|verify) .*(certificate|issuer)|certificate (has expired|is not yet valid|signature failure)/i;
/** mysql2 says TLS errors with its own code and Node's message. */
const ALTNAME_TEXT = /does not match certificate's altnames/i;
/** pg and mysql2 when the server does not speak TLS. */
const NO_TLS = /does not support SSL|does not support secure connection/i;

/**
 * The error of a connection whose TLS failed, said as such, with the connection and what to
 * check; undefined for other errors. The driver's error stays as `cause`, and its code.
 */
export function tlsFailure(err: unknown, config: ConnectionConfig): Error | undefined {
  if (!config.tls || typeof err !== 'object' || err === null) return undefined;
  const { code, message } = err as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : 'no message';
  const ca = config.dialect === 'postgresql' ? 'sslrootcert' : 'ssl-ca';
  let hint: string;
  if ((typeof code === 'string' && CERT_CODES.has(code)) || CERT_TEXT.test(text)) {
    hint = `the server's certificate is not signed by the CA of ${ca}`;
  } else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID' || ALTNAME_TEXT.test(text)) {
    hint =
      "the server's certificate does not name the host of the URL: connect by a name it holds " +
      `(or, to check the CA only, ${config.dialect === 'postgresql' ? 'sslmode=verify-ca' : 'ssl-mode=VERIFY_CA'})`;
  } else if (NO_TLS.test(text) || code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    hint = 'the server does not accept TLS connections';
  } else if (
    (typeof code === 'string' && code.startsWith('ERR_SSL_')) ||
    code === 'HANDSHAKE_SSL_ERROR' ||
    /\b(SSL|TLS) alert\b/i.test(text)
  ) {
    hint = 'the server refused the TLS handshake (its CA or the client certificate?)';
  } else {
    return undefined;
  }
  const wrapped = new Error(
    `TLS connection to ${describeConnection(config)} failed: ${text} (${hint})`,
    { cause: err },
  );
  if (code !== undefined) (wrapped as Error & { code?: unknown }).code = code;
  return wrapped;
}

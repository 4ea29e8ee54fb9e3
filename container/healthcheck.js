'use strict';
// Healthy when the service answers a FutoIn call on its port: an anonymous ping is refused
// with SecurityError, which still shows that the service is up and serving.
const tls = !!process.env.EVTSTREAM_TLS_CERT;
const { request } = require(tls ? 'https' : 'http');

const body = JSON.stringify({ f: 'futoin.evt.poll:1.1:ping', p: { echo: 1 }, rid: 'C1' });
const req = request(
  {
    host: '127.0.0.1',
    port: Number(process.env.EVTSTREAM_PORT || 8080),
    path: '/',
    method: 'POST',
    headers: { 'Content-Type': 'application/futoin+json' },
    timeout: 4000,
    // The certificate names the service's public host, not 127.0.0.1.
    rejectUnauthorized: false,
  },
  (rsp) => {
    let text = '';
    rsp.setEncoding('utf8');
    rsp.on('data', (d) => (text += d));
    rsp.on('end', () => {
      try {
        process.exit(JSON.parse(text).rid === 'C1' ? 0 : 1);
      } catch {
        process.exit(1);
      }
    });
  },
);
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
req.end(body);

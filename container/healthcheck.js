'use strict';
// Healthy when the service is ready: /readyz answers 200 (the database answers, migrations are
// applied, not shutting down); 503 or no answer is unhealthy.
const tls = !!process.env.EVTSTREAM_TLS_CERT;
const { request } = require(tls ? 'https' : 'http');

const req = request(
  {
    host: '127.0.0.1',
    port: Number(process.env.EVTSTREAM_PORT || 8080),
    path: '/readyz',
    method: 'GET',
    timeout: 4000,
    // The certificate names the service's public host, not 127.0.0.1.
    rejectUnauthorized: false,
  },
  (rsp) => {
    rsp.resume();
    process.exit(rsp.statusCode === 200 ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy());
req.on('error', () => process.exit(1));
req.end();

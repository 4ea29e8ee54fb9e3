/**
 * FTN18 requires a secure channel for futoin.evt.gen: TLS served by us, TLS terminated by a
 * trusted proxy (X-Forwarded-Proto), or loopback. Anything else gets SecurityError.
 */
import fs from 'fs';
import https from 'https';
import path from 'path';
import { expect } from 'chai';
import type { StreamService } from '../../src/app/service';
import { describeDatabases } from '../support/db';
import { GenFace } from '../../src/common/faces/GenFace';
import {
  clientCcm,
  expectFutoinError,
  startService,
  steps,
  TEST_CREDENTIALS,
} from '../support/service';

const TLS_DIR = path.join(__dirname, '..', 'fixtures', 'tls');
const cert = fs.readFileSync(path.join(TLS_DIR, 'cert.pem'));
const key = fs.readFileSync(path.join(TLS_DIR, 'key.pem'));

const addEvent = (rid: string): string =>
  JSON.stringify({
    f: 'futoin.evt.gen:1.1:addEvent',
    p: { type: 'SECURE', data: {} },
    rid,
    sec: TEST_CREDENTIALS,
  });

/** POST over HTTPS, trusting our test certificate (and checking it). */
function httpsPost(url: string, body: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'POST', ca: cert }, (rsp) => {
      let text = '';
      rsp.setEncoding('utf8').on('data', (d: string) => (text += d));
      rsp.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function httpPost(
  url: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>> {
  const rsp = await fetch(url, { method: 'POST', body, headers });
  return (await rsp.json()) as Record<string, unknown>;
}

describeDatabases(
  'secure channels',
  (fx) => {
    const services: StreamService[] = [];
    after(() => Promise.all(services.map((s) => s.close())));

    it('serves TLS with --tls-cert/--tls-key, and TLS makes the channel secure', async () => {
      const service = await startService(fx, { tls: { cert, key }, secureLoopback: false });
      services.push(service);
      expect(service.url).to.match(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const reply = await httpsPost(service.url, addEvent('C1'));
      expect(reply['r']).to.match(/^[1-9]\d*$/);
    });

    it('behind a trusted proxy, X-Forwarded-Proto: https makes it secure; plain HTTP does not', async () => {
      const service = await startService(fx, { trustProxy: true, secureLoopback: false });
      services.push(service);
      const viaProxy = await httpPost(service.url, addEvent('C2'), {
        'x-forwarded-proto': 'https',
      });
      expect(viaProxy['r']).to.match(/^[1-9]\d*$/);
      const plain = await httpPost(service.url, addEvent('C3'));
      expect(plain).to.include({ e: 'SecurityError', edesc: 'Insecure channel' });
    });

    it('without trust, a forged X-Forwarded-Proto changes nothing', async () => {
      const service = await startService(fx, { secureLoopback: false });
      services.push(service);
      const forged = await httpPost(service.url, addEvent('C4'), { 'x-forwarded-proto': 'https' });
      expect(forged).to.include({ e: 'SecurityError', edesc: 'Insecure channel' });
    });
  },
  ['sqlite'],
);

describeDatabases(
  'authentication',
  (fx) => {
    let service: StreamService;
    before(async () => {
      service = await startService(fx);
    });
    after(() => service?.close());

    for (const transport of ['http', 'ws'] as const) {
      it(`accepts FTN3 HMAC-signed calls and signs the answers (${transport})`, async () => {
        const ccm = clientCcm();
        try {
          const url = transport === 'http' ? service.url : service.wsUrl;
          const hmacKey = Buffer.from('alice-secret').toString('base64');
          await steps((as) => {
            GenFace.register(as, ccm, 'gen', url, '-hmac:alice', {
              hmacKey,
              hmacAlgo: 'SHA256',
              secureChannel: true,
            });
            GenFace.register(as, ccm, 'bad', url, '-hmac:alice', {
              hmacKey: Buffer.from('wrong').toString('base64'),
              hmacAlgo: 'SHA256',
              secureChannel: true,
            });
          });
          // The client checks the response signature too: a success proves both ways.
          const id = await steps<string>((as) =>
            ccm.iface<GenFace>('gen').addEvent(as, 'HMAC', { ok: true }),
          );
          expect(id).to.match(/^[1-9]\d*$/);
          await expectFutoinError(
            steps((as) => ccm.iface<GenFace>('bad').addEvent(as, 'HMAC', {})),
            'SecurityError',
          );
        } finally {
          ccm.close();
        }
      });
    }
  },
  ['sqlite'],
);

/**
 * The web console (/console): its static files over plain HTTP, then the page itself in a real
 * headless Chromium (playwright-core) against a running service — login and refusals, events
 * appearing live, the event JSON, filters, a consumer's lag and its sparkline.
 */
import { expect } from 'chai';
import fs from 'fs';
import http from 'http';
import path from 'path';
import { SPEC_DIRS } from '@futoin/specs';
import type { AdvancedCCM, NativeIface } from 'futoin-invoker';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from 'playwright-core';
import type { StreamService } from '../../src/app/service';
import { CONSOLE_DIR } from '../../src/ops/console';
import { describeDatabases } from '../support/db';
import { clientCcm, startService, steps, TEST_CREDENTIALS } from '../support/service';

const ADMIN = 'root';
const ADMIN_SECRET = 'console-root-secret';
const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
/** Bounded waits for the page (it refreshes about every second). */
const UI_TIMEOUT_MS = 10_000;
/** Browser time zone: not UTC, so the since/until conversion to UTC is exercised. */
const TIME_ZONE = 'Asia/Tokyo';
const TZ_OFFSET_MS = 9 * 3600_000;

/** What the row predicate uses of the page's document (the tests compile without the DOM lib). */
interface PageDocument {
  querySelectorAll(selector: string): ArrayLike<{ dataset: Record<string, string | undefined> }>;
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GET with the path sent exactly as given (no client-side normalisation of ".."). */
function rawGet(baseUrl: string, rawPath: string): Promise<RawResponse> {
  const u = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path: rawPath, method: 'GET' },
      (rsp) => {
        const chunks: Buffer[] = [];
        rsp.on('data', (c: Buffer) => chunks.push(c));
        rsp.on('end', () =>
          resolve({
            status: rsp.statusCode ?? 0,
            headers: rsp.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        rsp.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A datetime-local value ("YYYY-MM-DDTHH:MM:SS") for `ms` in TIME_ZONE. */
const localInput = (ms: number): string => new Date(ms + TZ_OFFSET_MS).toISOString().slice(0, 19);

describeDatabases(
  'web console',
  (fx) => {
    let service: StreamService;
    let ccm: AdvancedCCM;

    const addEvent = (type: string, data: unknown): Promise<string> =>
      steps<string>((as) => ccm.iface<NativeIface>('gen').call(as, 'addEvent', { type, data }));
    const poll = (component: string, lastId?: string): Promise<Array<{ id: string }>> =>
      steps((as) =>
        ccm
          .iface<NativeIface>('poll')
          .call(as, 'pollEvents', lastId ? { component, last_id: lastId } : { component }),
      );

    before(async () => {
      service = await startService(fx, { admins: new Map([[ADMIN, ADMIN_SECRET]]) });
      ccm = clientCcm();
      await steps((as) => {
        for (const [name, iface] of [
          ['gen', 'futoin.evt.gen:1.1'],
          ['poll', 'futoin.evt.poll:1.1'],
        ] as const) {
          ccm.register(as, name, iface, service.wsUrl, TEST_CREDENTIALS, {
            specDirs: SPEC_DIRS,
            secureChannel: true,
          });
        }
      });
    });
    after(async () => {
      ccm?.close();
      await service?.close();
    });

    describe('static files', () => {
      it('serves index.html at /console/ with a strict CSP and no inline code', async () => {
        const rsp = await rawGet(service.url, '/console/');
        expect(rsp.status).to.equal(200);
        expect(rsp.headers['content-type']).to.match(/^text\/html/);
        const csp = String(rsp.headers['content-security-policy']);
        expect(csp).to.include("default-src 'self'");
        expect(csp).to.include("connect-src 'self' ws: wss:");
        expect(csp).to.not.include('unsafe-inline');
        expect(rsp.body).to.include('<script src="console.js"');
        expect(rsp.body).to.include('href="console.css"');
        // The CSP would block these: everything must come from console.js / console.css.
        expect(rsp.body).to.not.match(/<script(?![^>]*\ssrc=)/);
        expect(rsp.body).to.not.match(/<style|\sstyle=|\son[a-z]+=/i);
      });

      it('redirects /console to /console/', async () => {
        const rsp = await rawGet(service.url, '/console');
        expect(rsp.status).to.equal(301);
        expect(rsp.headers.location).to.equal('/console/');
      });

      it('serves the script and the stylesheet with their types', async () => {
        const js = await rawGet(service.url, '/console/console.js');
        expect(js.status).to.equal(200);
        expect(js.headers['content-type']).to.match(/^text\/javascript/);
        const css = await rawGet(service.url, '/console/console.css');
        expect(css.status).to.equal(200);
        expect(css.headers['content-type']).to.match(/^text\/css/);
      });

      it('answers 404 for paths outside the console folder and for unknown files', async () => {
        for (const p of [
          '/console/../package.json',
          '/console/%2e%2e/package.json',
          '/console/..%2fpackage.json',
          '/console/%2e%2e%2fsrc%2fops%2fconsole.ts',
          '/console//etc/passwd',
          '/console/.hidden.html',
          '/console/missing.html',
          '/console/index.html.bak',
        ]) {
          const rsp = await rawGet(service.url, p);
          expect(rsp.status, p).to.equal(404);
          expect(rsp.body, p).to.not.include('"name"');
        }
      });

      it('stays small: the whole console under 56 KB', () => {
        const total = fs
          .readdirSync(CONSOLE_DIR)
          .reduce((n, f) => n + fs.statSync(path.join(CONSOLE_DIR, f)).size, 0);
        expect(total).to.be.below(56 * 1024);
      });
    });

    describe('in headless Chromium', function () {
      let browser: Browser | undefined;
      let context: BrowserContext;
      let page: Page;
      const sockets: string[] = [];
      const problems: string[] = [];

      before(async function () {
        if (!fs.existsSync(CHROMIUM_PATH)) {
          const msg = `Chromium not found at ${CHROMIUM_PATH} (install chromium, or set CHROMIUM_PATH)`;
          if (process.env['CI'] === 'true') throw new Error(`${msg}: required with CI=true`);
          process.stderr.write(`NOTE: skipping the console browser tests: ${msg}\n`);
          this.skip();
        }
        browser = await chromium.launch({
          executablePath: CHROMIUM_PATH,
          headless: true,
          args: ['--no-sandbox'],
        });
        context = await browser.newContext({
          timezoneId: TIME_ZONE,
          viewport: { width: 1280, height: 900 },
        });
        context.setDefaultTimeout(UI_TIMEOUT_MS);
        page = await context.newPage();
        page.on('websocket', (ws) => sockets.push(ws.url()));
        page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
        page.on('console', (m) => {
          if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text()))
            problems.push(`console: ${m.text()}`);
        });
      });
      after(async () => {
        await browser?.close();
      });

      const login = async (name: string, secret: string): Promise<void> => {
        await page.fill('#login-name', name);
        await page.fill('#login-secret', secret);
        await page.click('#login-submit');
      };
      const loginError = async (): Promise<string> => {
        await page.locator('#login-error').waitFor({ state: 'visible' });
        return (await page.locator('#login-error').textContent()) ?? '';
      };
      const storedCredentials = (): Promise<unknown> =>
        page.evaluate("sessionStorage.getItem('evtstream.console.credentials')");

      it('asks for credentials first and shows nothing admin anonymously', async () => {
        const rsp = await page.goto(`${service.url}console`);
        expect(rsp?.status()).to.equal(200);
        expect(page.url()).to.equal(`${service.url}console/`);
        await page.locator('#login-form').waitFor({ state: 'visible' });
        expect(await page.locator('#app').isHidden()).to.equal(true);
        expect(await page.locator('#stats').isHidden()).to.equal(true);
        expect(await page.locator('#consumers tbody tr').count()).to.equal(0);
        expect(await page.locator('#events tbody tr').count()).to.equal(0);
        // The page makes no call (opens no WebSocket) without credentials...
        expect(sockets).to.deep.equal([]);
        // ...and an anonymous admin call from the page's origin is refused.
        const answer = await page.evaluate(`new Promise((resolve, reject) => {
          const ws = new WebSocket(${JSON.stringify(service.wsUrl)});
          ws.binaryType = 'arraybuffer';
          ws.onopen = () => ws.send(JSON.stringify(
            { f: 'ftn18es.admin:1.0:listConsumers', p: {}, rid: 'C1' }));
          ws.onmessage = (m) => {
            ws.close();
            resolve(typeof m.data === 'string' ? m.data : new TextDecoder().decode(m.data));
          };
          ws.onerror = () => reject(new Error('WebSocket error'));
        })`);
        const msg = JSON.parse(String(answer)) as { e?: string; r?: unknown };
        expect(msg.e).to.equal('SecurityError');
        expect(msg.r).to.equal(undefined);
      });

      it('refuses a wrong secret with SecurityError and asks again', async () => {
        await login(ADMIN, 'not-the-secret');
        expect(await loginError()).to.match(/^SecurityError\b/);
        expect(await page.locator('#login-form').isVisible()).to.equal(true);
        expect(await page.locator('#app').isHidden()).to.equal(true);
        expect(await storedCredentials()).to.equal(null);
      });

      it('refuses a user without the admin right with SecurityError', async () => {
        await login('alice', 'alice-secret');
        // The message changes from the wrong secret's to the missing right's.
        const error = page.locator('#login-error', { hasText: /admin right/ });
        await error.waitFor({ state: 'visible' });
        expect(await error.textContent()).to.match(/^SecurityError\b/);
        expect(await page.locator('#app').isHidden()).to.equal(true);
        expect(await page.locator('#consumers tbody tr').count()).to.equal(0);
        expect(await storedCredentials()).to.equal(null);
      });

      it('asks again when the credentials kept for the tab are refused', async () => {
        await page.evaluate(
          `sessionStorage.setItem('evtstream.console.credentials',
            JSON.stringify({ name: 'alice', secret: 'alice-secret' }))`,
        );
        await page.reload();
        expect(await loginError()).to.match(/^SecurityError\b/);
        expect(await page.locator('#app').isHidden()).to.equal(true);
        expect(await storedCredentials()).to.equal(null);
      });

      it('logs an admin in and shows the stream stats', async () => {
        await login(ADMIN, ADMIN_SECRET);
        await page.locator('#app').waitFor({ state: 'visible' });
        expect(await page.locator('#login').isHidden()).to.equal(true);
        await page.locator('#conn[data-state="online"]').waitFor();
        await page.locator('#st-newest', { hasText: /^\d+$/ }).waitFor();
        expect(await page.locator('#who').textContent()).to.equal(ADMIN);
        expect(await storedCredentials()).to.be.a('string');
      });

      let eventId = '';
      let since = 0;

      it('shows a newly added event live, and its JSON when clicked', async () => {
        const data = { hello: '<b>world</b>', n: 42, nested: { ok: true } };
        since = Date.now() - 60_000;
        eventId = await addEvent('CONSOLE_TEST', data);
        const row = page.locator(`#events tbody tr[data-id="${eventId}"]`);
        await row.waitFor({ state: 'visible' });
        expect(await row.locator('td.type').textContent()).to.equal('CONSOLE_TEST');
        expect(await row.locator('td.id').textContent()).to.equal(eventId);
        await page.locator('#st-newest', { hasText: new RegExp(`^${eventId}$`) }).waitFor();

        await row.click();
        const json = page.locator('#detail-json');
        await json.waitFor({ state: 'visible' });
        const shown = JSON.parse((await json.textContent()) ?? '') as Record<string, unknown>;
        expect(shown).to.include({ id: eventId, type: 'CONSOLE_TEST' });
        expect(shown['data']).to.deep.equal(data);
        expect(await json.textContent()).to.include('\n  "data": {\n');
        expect(await page.locator('#detail-title').textContent()).to.include(eventId);
        // Event data is text, never markup.
        expect(await page.locator('#detail b, #events b').count()).to.equal(0);
        expect(await row.getAttribute('class')).to.include('sel');
      });

      /**
       * Waits until the event rows shown are exactly `ids` (in this order; with `prefix`, the
       * first rows), or, with `type`, all of that type. The predicate runs in the page.
       */
      const waitForRows = (want: { ids?: string[]; prefix?: boolean; type?: string }) =>
        page.waitForFunction(
          (w) => {
            const doc = (globalThis as unknown as { document: PageDocument }).document;
            const rows = Array.from(doc.querySelectorAll('#events tbody tr[data-id]'));
            if (w.type !== undefined) {
              return rows.length > 0 && rows.every((r) => r.dataset['type'] === w.type);
            }
            const shown = rows.map((r) => r.dataset['id']);
            const ids = w.ids ?? [];
            return (
              (w.prefix ? shown.length >= ids.length : shown.length === ids.length) &&
              ids.every((id, i) => shown[i] === id)
            );
          },
          want,
          { timeout: UI_TIMEOUT_MS },
        );

      it('filters events by type, ID range and time', async () => {
        const otherId = await addEvent('CONSOLE_OTHER', { other: true });
        await page.locator(`#events tbody tr[data-id="${otherId}"]`).waitFor();

        await page.fill('#f-types', 'CONSOLE_OTHER');
        await page.click('#f-apply');
        await waitForRows({ type: 'CONSOLE_OTHER' });

        await page.fill('#f-types', '');
        await page.fill('#f-from', eventId);
        await page.fill('#f-to', eventId);
        await page.click('#f-apply');
        await waitForRows({ ids: [eventId] });

        // since/until are the browser's local time (Asia/Tokyo), sent as UTC.
        await page.fill('#f-from', '');
        await page.fill('#f-to', '');
        await page.fill('#f-since', localInput(since));
        await page.click('#f-apply');
        const sinceUtc = new Date(Math.floor(since / 1000) * 1000).toISOString();
        await page.locator('#events-status', { hasText: `${sinceUtc} to …` }).waitFor();
        await waitForRows({ ids: [otherId, eventId] });
        await page.fill('#f-since', localInput(Date.now() + 3600_000));
        await page.click('#f-apply');
        await waitForRows({ ids: [] });
        await page.locator('#events tbody td', { hasText: 'No events match.' }).waitFor();

        await page.fill('#f-types', 'not a type');
        await page.click('#f-apply');
        const typeError = page.locator('#events-status.error', { hasText: 'Invalid event type' });
        await typeError.waitFor();
        // Breaking change it catches: the live refresh of the last query (every second) wiping
        // the error out while the filters still hold the bad type. Two new events shown in the
        // stats one after the other: a whole refresh, with its events reload, ran in between.
        const ticks: string[] = [];
        for (const n of [1, 2]) {
          const id = await addEvent('CONSOLE_TICK', { n });
          await page.locator('#st-newest', { hasText: new RegExp(`^${id}$`) }).waitFor();
          ticks.unshift(id);
        }
        expect(await typeError.count(), 'the error stays while the filters hold it').to.equal(1);

        await page.click('#f-reset');
        await waitForRows({ ids: [...ticks, otherId, eventId], prefix: true });
        expect(await page.locator('#events-status').getAttribute('class')).to.not.include('error');
      });

      const consumer = `alice:CONSOLE_C`;
      const consumerRow = (): Locator =>
        page.locator(`#consumers tbody tr[data-ident="${consumer}"]`);

      it("shows a consumer's lag, which drops once it has polled", async () => {
        await steps((as) =>
          ccm.iface<NativeIface>('poll').call(as, 'registerConsumer', { component: 'CONSOLE_C' }),
        );
        // Catch up with what earlier tests added: lag 0.
        const backlog = await poll('CONSOLE_C');
        expect(backlog.length).to.be.above(0);
        await poll('CONSOLE_C', backlog[backlog.length - 1]!.id);
        const row = consumerRow();
        await row.locator('td.lag', { hasText: /^0$/ }).waitFor();

        const ids: string[] = [];
        for (let i = 0; i < 5; i++) ids.push(await addEvent('CONSOLE_LAG', { i }));
        await row.locator('td.lag', { hasText: /^5$/ }).waitFor();
        expect(await row.locator('td.lag').getAttribute('class')).to.include('behind');
        expect(await row.locator('td.pointer').textContent()).to.equal(
          backlog[backlog.length - 1]!.id,
        );
        await row.locator('td.mode[data-mode="poll"][data-connected="true"]').waitFor();

        const got = await poll('CONSOLE_C');
        expect(got.map((e) => e.id)).to.deep.equal(ids);
        await poll('CONSOLE_C', ids[4]);
        await row.locator('td.lag', { hasText: /^0$/ }).waitFor();
        await row.locator('td.pointer', { hasText: new RegExp(`^${ids[4]}$`) }).waitFor();
        expect(await row.locator('td.lagtime').textContent()).to.equal('0 s');
      });

      it('draws a sparkline of the lag kept since the page opened', async () => {
        const svg = consumerRow().locator('svg.spark');
        await svg.locator('polyline').waitFor({ state: 'attached' });
        expect(Number(await svg.getAttribute('data-peak'))).to.be.at.least(5);
        expect(Number(await svg.getAttribute('data-samples'))).to.be.at.least(2);
        const points = (await svg.locator('polyline').getAttribute('points')) ?? '';
        expect(points.trim().split(/\s+/).length).to.be.at.least(2);
        expect(await svg.locator('title').textContent()).to.match(/now 0, peak \d+/);
      });

      it('logs out: credentials and data are gone, the login form is back', async () => {
        await page.click('#logout');
        await page.locator('#login-form').waitFor({ state: 'visible' });
        expect(await page.locator('#app').isHidden()).to.equal(true);
        expect(await page.locator('#consumers tbody tr').count()).to.equal(0);
        expect(await page.locator('#events tbody tr').count()).to.equal(0);
        expect(await storedCredentials()).to.equal(null);
        await page.locator('#conn[data-state="off"]').waitFor();
      });

      it('met no CSP violation or script error', () => {
        expect(problems).to.deep.equal([]);
      });
    });
  },
  ['sqlite'],
);

/**
 * The console's actions in a real headless Chromium (playwright-core), on each database: a reset
 * previewed, confirmed, and the pointer and lag it changed; max_attempts; the parked events of a
 * consumer, marked on its row, replayed and skipped; a drop after confirmation. Refused: every
 * action of a user without the admin right, and admin calls from a page of another origin.
 */
import { expect } from 'chai';
import fs from 'fs';
import http from 'http';
import type { AddressInfo } from 'net';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from 'playwright-core';
import type { StreamService } from '../../src/app/service';
import type { EventStore, ParkRecord } from '../../src/storage/store';
import { describeDatabases } from '../support/db';
import { startService, TEST_USER } from '../support/service';
import { waitForValue } from '../support/wait';

const ADMIN = 'root';
const ADMIN_SECRET = 'console-root-secret';
const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const UI_TIMEOUT_MS = 10_000;
/**
 * A page of another origin: served on another port of the loopback address, since Chromium keeps
 * pages of public addresses (and pages it made up itself) from reaching local ones at all.
 */
async function serveOtherOrigin(): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><p>elsewhere</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Every ftn18es.admin action, as the console calls it. */
const ACTIONS: [string, Record<string, unknown>][] = [
  ['moveConsumer', { ident: `${TEST_USER}:CA_KEEP`, to: 'newest' }],
  ['moveConsumer', { ident: `${TEST_USER}:CA_KEEP`, to: 'start', dry_run: true }],
  ['dropConsumer', { ident: `${TEST_USER}:CA_KEEP` }],
  ['setMaxAttempts', { ident: `${TEST_USER}:CA_KEEP`, max_attempts: 7 }],
  ['replayParked', { ident: `${TEST_USER}:CA_KEEP` }],
  ['skipParked', { ident: `${TEST_USER}:CA_KEEP`, reason: 'x' }],
  ['listParked', {}],
];

/** Script for the page: one admin call over a new WebSocket; resolves with the answer. */
const callScript = (wsUrl: string, f: string, p: unknown, sec: string): string => `
  new Promise((resolve, reject) => {
    const ws = new WebSocket(${JSON.stringify(wsUrl)});
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(JSON.stringify({ f: ${JSON.stringify(f)}, p: ${JSON.stringify(p)},
      rid: 'C1', sec: ${JSON.stringify(sec)} }));
    ws.onmessage = (m) => {
      ws.close();
      resolve(typeof m.data === 'string' ? m.data : new TextDecoder().decode(m.data));
    };
    ws.onerror = () => reject(new Error('WebSocket error'));
  })`;

const park = (id: string, info: string): ParkRecord => ({
  event: { id, type: 'CA_POISON', data: JSON.stringify({ id }), ts: '2026-01-01T00:00:00Z' },
  attempts: 3,
  firstFailureMs: Date.now() - 1000,
  lastFailureMs: Date.now(),
  errorCode: 'InternalError',
  errorInfo: info,
});

describeDatabases('web console actions', (fx) => {
  let service: StreamService;
  let store: EventStore;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  before(async function () {
    this.timeout(60_000);
    if (!fs.existsSync(CHROMIUM_PATH)) {
      const msg = `Chromium not found at ${CHROMIUM_PATH} (install chromium, or set CHROMIUM_PATH)`;
      if (process.env['CI'] === 'true') throw new Error(`${msg}: required with CI=true`);
      process.stderr.write(`NOTE: skipping the console action tests: ${msg}\n`);
      this.skip();
    }
    service = await startService(fx, { admins: new Map([[ADMIN, ADMIN_SECRET]]) });
    store = service.store;
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: ['--no-sandbox'],
    });
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    context.setDefaultTimeout(UI_TIMEOUT_MS);
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text()))
        problems.push(`console: ${m.text()}`);
    });
    await page.goto(`${service.url}console/`);
    await page.fill('#login-name', ADMIN);
    await page.fill('#login-secret', ADMIN_SECRET);
    await page.click('#login-submit');
    await page.locator('#app').waitFor({ state: 'visible' });
  });
  after(async () => {
    await browser?.close();
    await service?.close();
  });

  const row = (ident: string): Locator =>
    page.locator(`#consumers tbody tr[data-ident="${ident}"]`);
  const dialog = (): Locator => page.locator('#act');
  const effect = (): Locator => page.locator('#act-effect');

  // Breaking changes it catches: a reset without a preview of its effect; the confirm button
  // enabled before the preview.
  it('resets a consumer after showing where its pointer goes: the pointer moves, the lag changes', async () => {
    const ident = `${TEST_USER}:CA_RESET`;
    const ids = await store.addEvents(
      Array.from({ length: 6 }, (_v, i) => ({ type: 'CA', data: JSON.stringify({ i }) })),
    );
    await store.registerConsumer(ident);
    await store.advanceConsumer(ident, ids[5]!);
    const r = row(ident);
    // The row as of after the move (a refresh between the registration and the move shows the
    // pointer at the start, and may show a lag of 0 too while the new events settle).
    await r.locator('td.pointer', { hasText: new RegExp(`^${ids[5]}$`) }).waitFor();
    await r.locator('td.lag', { hasText: /^0$/ }).waitFor();

    await r.locator('button', { hasText: 'Reset…' }).click();
    await dialog().waitFor({ state: 'visible' });
    expect(await effect().textContent()).to.equal(`Pointer ${ids[5]}, 0 events behind.`);
    expect(await page.locator('#act-ok').isDisabled(), 'confirmed only after a preview').to.equal(
      true,
    );
    await page.selectOption('#act-to', 'id');
    await page.fill('#act-id', ids[1]!);
    await page.fill('#act-reason', 'rebuild the report');
    expect(await page.locator('#act-ok').isDisabled(), 'no confirmation before a preview').to.equal(
      true,
    );
    await page.click('#act-preview');
    await effect().filter({ hasText: 'would move' }).waitFor();
    expect(await effect().textContent()).to.equal(
      `The pointer would move from ${ids[5]} to ${ids[1]}: 4 events to deliver from there (now 0).`,
    );
    expect(await store.consumerPointer(ident), 'a preview moves nothing').to.equal(ids[5]);
    // Changing the input asks for a new preview.
    await page.fill('#act-id', ids[2]!);
    expect(await page.locator('#act-ok').isDisabled()).to.equal(true);
    await page.click('#act-preview');
    await effect()
      .filter({ hasText: `to ${ids[2]}:` })
      .waitFor();
    await page.click('#act-ok');
    await effect().filter({ hasText: 'Moved from' }).waitFor();
    expect(await effect().textContent()).to.equal(
      `Moved from ${ids[5]} to ${ids[2]}: 3 events to deliver from there.`,
    );
    await page.click('#act-cancel');
    await dialog().waitFor({ state: 'hidden' });

    expect(await store.consumerPointer(ident)).to.equal(ids[2]);
    await r.locator('td.pointer', { hasText: new RegExp(`^${ids[2]}$`) }).waitFor();
    await r.locator('td.lag', { hasText: /^3$/ }).waitFor();
    const [move] = await store.listMoves(ident, 1);
    expect(move).to.include({
      action: 'move',
      by: ADMIN,
      reason: 'rebuild the report',
      to: ids[2],
    });

    // Cancelled after a preview: nothing moves.
    await r.locator('button', { hasText: 'Reset…' }).click();
    await page.selectOption('#act-to', 'newest');
    await page.click('#act-preview');
    await effect().filter({ hasText: 'would move' }).waitFor();
    await page.click('#act-cancel');
    expect(await store.consumerPointer(ident)).to.equal(ids[2]);
  });

  it('marks consumers with parked events, lists them, replays one and skips one with a reason', async () => {
    const ident = `${TEST_USER}:CA_PARK`;
    const ids = await store.addEvents([
      { type: 'CA_POISON', data: '1' },
      { type: 'CA_POISON', data: '2' },
    ]);
    await store.registerConsumer(ident);
    await store.advanceConsumer(ident, ids[1]!);
    await store.setMaxAttempts(ident, 3, ADMIN, '');
    await store.parkEvent(ident, park(ids[0]!, 'no such customer <b>7</b>'));
    await store.parkEvent(ident, park(ids[1]!, 'bad amount'));

    const r = row(ident);
    await r.locator('td.parked .badge.parked', { hasText: /^2$/ }).waitFor();
    expect(await r.getAttribute('data-parked')).to.equal('2');
    await r.locator('td.parked .badge.parked').click();
    expect(await page.locator('#p-consumer').inputValue()).to.equal(ident);
    const parkedRow = (id: string): Locator => page.locator(`#parked tbody tr[data-id="${id}"]`);
    await parkedRow(ids[1]!).waitFor();
    expect(await page.locator('#parked tbody tr').count()).to.equal(2);
    expect(await parkedRow(ids[0]!).locator('td.err').textContent()).to.equal(
      'InternalError: no such customer <b>7</b>',
    );
    expect(await page.locator('#parked b').count(), 'text, never markup').to.equal(0);

    await parkedRow(ids[0]!).locator('button', { hasText: 'Replay…' }).click();
    expect(await effect().textContent()).to.include('marked "replayed"');
    await page.fill('#act-reason', 'fixed the lookup');
    await page.click('#act-ok');
    await effect().filter({ hasText: '1 event to replay.' }).waitFor();
    await page.click('#act-cancel');
    await parkedRow(ids[0]!).locator('td.state', { hasText: 'replay' }).waitFor();

    await parkedRow(ids[1]!).locator('button', { hasText: 'Skip…' }).click();
    await page.click('#act-ok');
    await page.locator('#act-error', { hasText: 'Say why' }).waitFor();
    await page.fill('#act-reason', 'test data');
    await page.click('#act-ok');
    await effect().filter({ hasText: '1 event skipped.' }).waitFor();
    await page.click('#act-cancel');
    await parkedRow(ids[1]!).waitFor({ state: 'detached' });
    await r.locator('td.parked .badge.parked', { hasText: /^1$/ }).waitFor();

    const list = await store.listParked({ ident, unresolvedOnly: false, limit: 10 });
    expect(list.map((p) => [p.event.id, p.state, p.actedBy, p.actedReason])).to.deep.equal([
      [ids[0], 'replay', ADMIN, 'fixed the lookup'],
      [ids[1], 'skipped', ADMIN, 'test data'],
    ]);
  });

  it('sets max_attempts, and drops a consumer after confirmation', async () => {
    const ident = `${TEST_USER}:CA_DROP`;
    await store.registerConsumer(ident);
    const r = row(ident);
    await r.waitFor();
    await r.locator('button', { hasText: 'Parking…' }).click();
    expect(await effect().textContent()).to.equal('Parks nothing.');
    await page.fill('#act-max', '4');
    await page.click('#act-ok');
    await effect().filter({ hasText: 'parks an event after 4 failed calls' }).waitFor();
    await page.click('#act-cancel');
    expect(await store.parkingRule(ident)).to.deep.equal({ maxAttempts: 4, streak: 0 });

    await r.locator('button', { hasText: 'Drop…' }).click();
    expect(await effect().textContent()).to.match(
      /^Pointer 0, \d+ events not delivered\. It is unregistered/,
    );
    expect(await store.consumerPointer(ident), 'asks first').to.equal('0');
    await page.fill('#act-reason', 'retired');
    await page.click('#act-ok');
    await effect()
      .filter({ hasText: `${ident} was dropped.` })
      .waitFor();
    await page.click('#act-cancel');
    await r.waitFor({ state: 'detached' });
    expect(await store.consumerPointer(ident)).to.equal(null);
  });

  it('lets a user without the admin right call no action, from the console itself', async () => {
    await store.registerConsumer(`${TEST_USER}:CA_KEEP`);
    for (const [fn, p] of ACTIONS) {
      const answer = await page.evaluate(
        callScript(service.wsUrl, `ftn18es.admin:1.1:${fn}`, p, `${TEST_USER}:alice-secret`),
      );
      const msg = JSON.parse(String(answer)) as { e?: string; edesc?: string };
      expect(msg, fn).to.include({ e: 'SecurityError', edesc: 'The admin right is required' });
    }
    expect(await store.consumerPointer(`${TEST_USER}:CA_KEEP`)).to.equal('0');
    expect(await store.parkingRule(`${TEST_USER}:CA_KEEP`)).to.deep.equal({
      maxAttempts: null,
      streak: 0,
    });
  });

  // Breaking change it catches: no Origin check (a page elsewhere drops a consumer with the
  // admin's credentials through a no-cors POST, or calls over its own WebSocket).
  it('refuses admin calls from a page of another origin, over WebSocket and HTTP', async () => {
    const ident = `${TEST_USER}:CA_KEEP`;
    const other = await serveOtherOrigin();
    const evil = await context.newPage();
    try {
      await evil.goto(`${other.origin}/`);
      for (const [fn, p] of ACTIONS) {
        const answer = await evil.evaluate(
          callScript(service.wsUrl, `ftn18es.admin:1.1:${fn}`, p, `${ADMIN}:${ADMIN_SECRET}`),
        );
        const msg = JSON.parse(String(answer)) as { e?: string; edesc?: string };
        expect(msg.e, fn).to.equal('SecurityError');
        expect(msg.edesc).to.equal(`Admin calls from another origin (${other.origin}) are refused`);
      }
      // A form-like POST a page may send anywhere (it cannot read the answer).
      await evil.evaluate(`fetch(${JSON.stringify(service.url)}, {
        method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' },
        body: JSON.stringify({ f: 'ftn18es.admin:1.1:dropConsumer', p: { ident: ${JSON.stringify(ident)} },
          rid: 'C1', sec: ${JSON.stringify(`${ADMIN}:${ADMIN_SECRET}`)} }) })`);
      // Its answer was sent before fetch resolved: the consumer is still there.
      expect(await store.consumerPointer(ident)).to.equal('0');
      expect((await store.listMoves(ident, 10)).map((m) => m.action)).to.deep.equal([]);
    } finally {
      await evil.close();
      await other.close();
    }
    // The console's own calls are served all along.
    await waitForValue(
      'the console refreshing',
      () => page.locator('#conn').getAttribute('data-state'),
      (s) => s === 'online',
    );
  });

  it('met no CSP violation or script error', () => {
    expect(problems).to.deep.equal([]);
  });
});

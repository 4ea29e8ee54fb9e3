/**
 * DBServiceApp embedded in a host application (test/app/fixtures/host.js) that loaded its own
 * libraries first and serves its own HTTP and WebSocket routes on the same server. Pins what
 * futoin-executor's freezing of Object.prototype does to such a host, and that
 * `secureObjectPrototype: false` embeds without it. README: "Embedding in your application".
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import WebSocket from 'ws';
import { Child, ROOT, requireFreshDist, killChildren, rawCall } from '../support/cli';

const HOST = path.join(__dirname, 'fixtures', 'host.js');
const ALICE = 'alice:alice-secret';
const STRICT_ASSIGN_ERROR = "TypeError: Cannot assign to read only property 'toString'";

interface HostReport {
  port: number;
  frozen: boolean;
  found: Record<string, boolean | string>;
}

async function startHost(
  tmp: string,
  nodeArgs: string[],
  mode: string,
): Promise<{ child: Child; report: HostReport }> {
  const db = path.join(tmp, `${mode}.sqlite`);
  const child = new Child(process.execPath, [...nodeArgs, HOST, ROOT, db, mode]);
  const m = await child.waitForOutput(/^(\{.*\})$/m, 60_000);
  return { child, report: JSON.parse(m[1] ?? '') as HostReport };
}

/** The host's own routes and the event stream, served side by side by one server. */
async function checkServes(port: number): Promise<void> {
  const health = await fetch(`http://127.0.0.1:${port}/host/health`, {
    signal: AbortSignal.timeout(10_000),
  });
  expect(await health.text()).to.equal('host ok');

  const echo = await new Promise<string>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/host/ws`);
    const timer = setTimeout(() => reject(new Error('no echo from the host')), 10_000);
    ws.on('open', () => ws.send('hi'));
    ws.on('message', (data: Buffer) => {
      clearTimeout(timer);
      ws.close();
      resolve(data.toString());
    });
    ws.on('error', reject);
  });
  expect(echo).to.equal('echo hi');

  const url = `http://127.0.0.1:${port}/evt/`;
  const added = await rawCall(
    url,
    'futoin.evt.gen:1.1:addEvent',
    { type: 'HOSTED', data: 1 },
    ALICE,
  );
  expect(added['r']).to.equal('1');
  const reg = await rawCall(url, 'futoin.evt.poll:1.1:registerConsumer', { component: 'C' }, ALICE);
  expect(reg['r']).to.equal(true);
  const polled = await rawCall(url, 'futoin.evt.poll:1.1:pollEvents', { component: 'C' }, ALICE);
  const events = polled['r'] as Array<{ id: string; type: string }>;
  expect(events.map((e) => [e.id, e.type])).to.deep.equal([['1', 'HOSTED']]);
}

describe('DBServiceApp embedded in a host application', function () {
  this.timeout(120_000);
  let tmp = '';

  before(function () {
    requireFreshDist();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-embed-'));
  });
  afterEach(killChildren);
  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('by default freezes Object.prototype for the whole process', async function () {
    const { child, report } = await startHost(tmp, [], 'frozen');
    expect(report.frozen).to.equal(true);
    // Libraries loaded before keep working, with the host's own routes beside the service.
    expect(report.found).to.include({
      lodash: true,
      ajv: true,
      commander: true,
      yargs: true,
      debug: true,
    });
    // Assigning toString & co. on an object: a TypeError in strict code, silently dropped in
    // sloppy code, and a library evaluated after the freeze that does so fails to load.
    expect(report.found['assignToString']).to.have.string(STRICT_ASSIGN_ERROR);
    expect(report.found['sloppyAssignToString']).to.equal(false);
    expect(report.found['lateRequireLong']).to.have.string(STRICT_ASSIGN_ERROR);
    await checkServes(report.port);
    expect(await child.stop('SIGTERM', 30_000)).to.deep.equal({ code: 0, signal: null });
  });

  it('with secureObjectPrototype: false leaves Object.prototype alone', async function () {
    // --disable-proto=delete: Node's own guard against __proto__ pollution, which breaks no
    // library that does not use __proto__ itself.
    const { child, report } = await startHost(tmp, ['--disable-proto=delete'], 'unfrozen');
    expect(report.frozen).to.equal(false);
    expect(report.found).to.deep.equal({
      lodash: true,
      ajv: true,
      commander: true,
      yargs: true,
      debug: true,
      assignToString: true,
      sloppyAssignToString: true,
      protoAccessor: 'undefined',
      lateRequireLong: true,
    });
    await checkServes(report.port);
    expect(await child.stop('SIGTERM', 30_000)).to.deep.equal({ code: 0, signal: null });
  });
});

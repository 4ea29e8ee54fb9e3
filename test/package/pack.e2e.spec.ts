/**
 * The package as a user gets it: `npm pack` of this tree, installed into a throw-away project.
 * Checks what the tarball holds, that the entry points (`.`, `./receiver` and futoin-eventstream's
 * per-class modules, `./DBServiceApp` and the like) resolve through `exports`, that the consumer entry loads no database driver, and that a strict TypeScript
 * project compiles the README's quick start, a push consumer and an `addXferEvent` example
 * against the shipped declarations alone. Uses dist/ as built (npm test builds first).
 */
import { expect } from 'chai';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { ROOT, requireFreshDist, run, type RunResult } from '../support/cli';

/** Bounds a hung npm (an install from the warm cache takes seconds). */
const NPM_TIMEOUT_MS = 240_000;

/** Every file a user needs, and nothing else (the sources, tests, benches, maps stay home). */
const SHIPPED =
  /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|bin\/evtstream\.js|types\/futoin\.d\.ts|dist\/[\w/.-]+\.(js|d\.ts)|specs\/[\w.-]+-iface\.json|sql\/(active|dwh)\/(sqlite|postgresql|mysql)\/\d{4}-[\w-]+\.sql|console\/(index\.html|console\.js|console\.css))$/;

const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'bin/evtstream.js',
  'types/futoin.d.ts',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/receiving/index.js',
  'dist/receiving/index.d.ts',
  'dist/app/cli.js',
  'specs/futoin.evt.push-1.1-iface.json',
  'specs/ftn18es.admin-1.0-iface.json',
  'specs/ftn18es.admin-1.1-iface.json',
  'sql/active/postgresql/0001-tables.sql',
  'sql/dwh/mysql/0001-history.sql',
  'console/index.html',
];

async function ok(p: Promise<RunResult>, what: string): Promise<RunResult> {
  const r = await p;
  if (r.code !== 0) {
    throw new Error(`${what} failed (${r.code ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

/** The README's quick start, as a user pastes it. */
const QUICK_START = `
import $as from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { GenFace, PollFace } from 'ftn18-eventstream';

const ccm = new AdvancedCCM();
const url = 'secure+ws://127.0.0.1:8080/';
$as()
  .add((as) => {
    GenFace.register(as, ccm, '#evtgen', url, 'demo:SECRET');
    PollFace.register(as, ccm, '#evtpoll', url, 'demo:SECRET');
  })
  .add((as) => ccm.iface<GenFace>('#evtgen').addEvent(as, 'USER_CREATED', { id: 42 }))
  .add((as, id: string) => console.log('event', id))
  .add((as) => ccm.iface<PollFace>('#evtpoll').registerConsumer(as, 'MAILER'))
  .add((as) => ccm.iface<PollFace>('#evtpoll').pollEvents(as, 'MAILER'))
  .add((as, events) => {
    console.log(events);
    ccm.close();
  })
  .execute();
`;

/** A reliable push consumer from the consumer entry. */
const PUSH_CONSUMER = `
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { ReliableReceiver, type Event } from 'ftn18-eventstream/receiver';

class Printer extends ReliableReceiver {
  protected override _onEvents(_as: AsyncSteps, events: Event[]): void {
    for (const event of events) console.log(event.id, event.type, event.ts, event.data);
  }
}

const ccm = new AdvancedCCM();
const receiver = new Printer(ccm);
receiver.on('ready', () => console.log('receiving'));
receiver.on('workerError', (code, info) => console.error(code, info));
receiver.start('secure+ws://127.0.0.1:8080/', 'alice:secret', { component: 'pusher', want: null });
process.once('SIGTERM', () => ccm.close());
`;

/** An event inside the user's own transaction. */
const XFER_EVENT = `
import $as from 'futoin-asyncsteps';
import type { L2Face } from 'futoin-database';
import AutoConfig from 'futoin-database/AutoConfig';
import { AdvancedCCM } from 'futoin-invoker';
import { DBGenFace } from 'ftn18-eventstream';

const ccm = new AdvancedCCM();
$as()
  .add((as) => {
    AutoConfig(as, ccm, { evt: {} });
    DBGenFace.register(as, ccm, '#evtgen', 'secure+ws://127.0.0.1:8080/', 'alice:secret');
  })
  .add((as) => {
    const db = ccm.iface<L2Face>('#db.evt');
    const xfer = db.newXfer();
    xfer.insert('accounts').set({ id: 'acc-1', owner: 'Ada' });
    ccm.iface<DBGenFace>('#evtgen').addXferEvent(xfer, 'ACCOUNT_OPENED', { account: 'acc-1' });
    xfer.execute(as);
  })
  .add(() => ccm.close())
  .execute();
`;

/** futoin-eventstream's per-class modules: ours under the same names (`ftn18-eventstream/X`). */
const REFERENCE_MODULES = [
  'DBEventArchiver',
  'DBEventDiscarder',
  'DBGenFace',
  'DBGenService',
  'DBPollService',
  'DBPushService',
  'DBServiceApp',
  'GenFace',
  'GenService',
  'LiveReceiver',
  'PollFace',
  'PollService',
  'PushFace',
  'PushService',
  'ReceiverFace',
  'ReceiverService',
  'ReliableReceiver',
  'ReliableReceiverService',
];

/** Code written for futoin-eventstream, its package name changed. */
const REFERENCE_STYLE = `
import $as from 'futoin-asyncsteps';
import type { AsyncSteps } from 'futoin-asyncsteps';
import { AdvancedCCM } from 'futoin-invoker';
import { specDirs, GEN_FACE } from 'ftn18-eventstream';
import { DB_EVTTABLE, cmpIds } from 'ftn18-eventstream/common';
import DBServiceApp from 'ftn18-eventstream/DBServiceApp';
import ReliableReceiver from 'ftn18-eventstream/ReliableReceiver';
import GenFace from 'ftn18-eventstream/GenFace';

class Printer extends ReliableReceiver {
  protected override _onEvents(_as: AsyncSteps, events: { id: string }[]): void {
    console.log(events.map((e) => e.id), cmpIds('2', '10'));
  }
}

const ccm = new AdvancedCCM({ specDirs });
$as()
  .add((as) => {
    const app = new DBServiceApp(as, { ccm, databaseConfig: { DB_EVT_TYPE: 'sqlite' } });
    as.add((as) => {
      ccm.iface<GenFace>(GEN_FACE).addEvent(as, 'TABLE', DB_EVTTABLE);
      new Printer(ccm).start(app.executor(), null, { component: 'PRINTER' });
    });
  })
  .execute();
`;

describe('the packed package', function () {
  this.timeout(2 * NPM_TIMEOUT_MS);
  let tmp = '';
  let consumer = '';
  let files: string[] = [];

  before(async function () {
    requireFreshDist();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-pack-'));
    // dist/ is built already: no prepare script, so the test never rewrites the working tree.
    const packed = await ok(
      run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], {
        cwd: ROOT,
        timeoutMs: NPM_TIMEOUT_MS,
      }),
      'npm pack',
    );
    const [info] = JSON.parse(packed.stdout) as Array<{
      filename: string;
      files: Array<{ path: string }>;
    }>;
    if (!info) throw new Error(`npm pack said nothing: ${packed.stdout}`);
    files = info.files.map((f) => f.path).sort();

    consumer = path.join(tmp, 'consumer');
    fs.mkdirSync(consumer);
    fs.writeFileSync(
      path.join(consumer, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
    );
    // The @types/node we build with, so the install is served from the npm cache; no install
    // scripts: nothing here loads sqlite3, and building it would only cost time.
    const typesNode = (
      JSON.parse(
        fs.readFileSync(path.join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8'),
      ) as { version: string }
    ).version;
    await ok(
      run(
        'npm',
        [
          'install',
          path.join(tmp, info.filename),
          `@types/node@${typesNode}`,
          '--prefer-offline',
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
        ],
        { cwd: consumer, timeoutMs: NPM_TIMEOUT_MS },
      ),
      'npm install of the tarball',
    );
  });

  after(function () {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('holds what a user needs and nothing else', function () {
    expect(files.filter((f) => !SHIPPED.test(f))).to.deep.equal([]);
    expect(files).to.include.members(REQUIRED);
    // Every migration and spec of the tree is in it.
    for (const dir of ['specs', 'sql']) {
      const mine = fs
        .readdirSync(path.join(ROOT, dir), { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
      expect(files).to.include.members(mine);
    }
  });

  it('resolves the entry points through exports, and nothing inside dist', async function () {
    const script = `
      const main = require('ftn18-eventstream');
      const receiver = require('ftn18-eventstream/receiver');
      const reference = Object.fromEntries(${JSON.stringify(REFERENCE_MODULES)}.map(
        (n) => [n, require('ftn18-eventstream/' + n).name]));
      const common = require('ftn18-eventstream/common');
      let deep = '';
      try { require.resolve('ftn18-eventstream/dist/storage/store'); } catch (e) { deep = e.code; }
      process.stdout.write(JSON.stringify({
        main: Object.keys(main),
        receiver: Object.keys(receiver),
        receiverPath: require.resolve('ftn18-eventstream/receiver'),
        reference,
        common: Object.keys(common),
        version: require('ftn18-eventstream/package.json').version,
        spec: require.resolve('ftn18-eventstream/specs/futoin.evt.gen-1.1-iface.json'),
        deep,
      }));
    `;
    const r = await ok(run(process.execPath, ['-e', script], { cwd: consumer }), 'require');
    const out = JSON.parse(r.stdout) as Record<string, string | string[] | Record<string, string>>;
    expect(out['main']).to.include.members(['DBServiceApp', 'DBGenService', 'GenFace']);
    // What futoin-eventstream's main, common and per-class modules export.
    expect(out['main']).to.include.members(['specDirs', 'GEN_FACE', 'POLL_FACE', 'PUSH_FACE']);
    expect(out['reference']).to.deep.equal(
      Object.fromEntries(REFERENCE_MODULES.map((n) => [n, n])),
    );
    expect(out['common']).to.include.members([
      'FTN18_VERSION',
      'PING_VERSION',
      'DB_IFACEVER',
      'DB_EVTTABLE',
      'DB_EVTCONSUMERS',
      'DB_EVTHISTORY',
      'GEN_FACE',
      'POLL_FACE',
      'PUSH_FACE',
      'cmpIds',
    ]);
    expect(out['receiver']).to.include.members(['ReliableReceiver', 'LiveReceiver', 'PushFace']);
    expect(out['receiverPath']).to.equal(
      path.join(consumer, 'node_modules', 'ftn18-eventstream', 'dist', 'receiving', 'index.js'),
    );
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(out['version']).to.equal(pkg.version);
    expect(out['spec']).to.match(/ftn18-eventstream\/specs\/futoin\.evt\.gen-1\.1-iface\.json$/);
    expect(out['deep']).to.equal('ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it('loads no database driver through the receiver entry', async function () {
    const script = `
      require('ftn18-eventstream/receiver');
      process.stdout.write(JSON.stringify(Object.keys(require.cache)));
    `;
    const r = await ok(run(process.execPath, ['-e', script], { cwd: consumer }), 'require');
    const loaded = JSON.parse(r.stdout) as string[];
    expect(loaded.some((f) => f.includes('/node_modules/ftn18-eventstream/'))).to.equal(true);
    const drivers = loaded.filter((f) =>
      /\/node_modules\/(pg|mysql2|sqlite3|futoin-database)\//.test(f),
    );
    expect(drivers).to.deep.equal([]);
  });

  it('runs the evtstream command it installs', async function () {
    const r = await ok(
      run(path.join(consumer, 'node_modules', '.bin', 'evtstream'), ['--help'], { cwd: consumer }),
      'evtstream --help',
    );
    expect(r.stdout).to.match(/^evtstream [\d.]+: FutoIn FTN18 event stream service\n/);
    expect(r.stdout).to.match(/^ {2}serve {2,}run the service/m);
  });

  const MODULE = {
    node16: 'node16',
    nodenext: 'nodenext',
    bundler: 'preserve',
    node10: 'commonjs',
  };
  for (const [resolution, module] of Object.entries(MODULE)) {
    it(`compiles strict consumer code with moduleResolution ${resolution}`, async function () {
      const dir = path.join(consumer, `src-${resolution}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(path.join(dir, 'quick-start.ts'), QUICK_START);
      fs.writeFileSync(path.join(dir, 'push-consumer.ts'), PUSH_CONSUMER);
      fs.writeFileSync(path.join(dir, 'xfer-event.ts'), XFER_EVENT);
      fs.writeFileSync(path.join(dir, 'reference-style.ts'), REFERENCE_STYLE);
      const tsconfig = path.join(consumer, `tsconfig.${resolution}.json`);
      fs.writeFileSync(
        tsconfig,
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module,
            moduleResolution: resolution,
            strict: true,
            esModuleInterop: true,
            skipLibCheck: false,
            noEmit: true,
            types: ['node'],
          },
          include: [`src-${resolution}`],
        }),
      );
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = await run(process.execPath, [tsc, '-p', tsconfig, '--pretty', 'false'], {
        cwd: consumer,
        timeoutMs: NPM_TIMEOUT_MS,
      });
      expect(r.stdout + r.stderr).to.equal('');
      expect(r.code).to.equal(0);
    });
  }
});

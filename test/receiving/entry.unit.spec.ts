/**
 * The consumer entry point (src/receiving, published as ftn18-eventstream/receiver) loads no
 * database code: a consumer process needs none of the services' drivers.
 */
import { expect } from 'chai';
import { execFileSync } from 'child_process';
import path from 'path';

const ROOT = path.resolve(__dirname, '..', '..');
const DATABASE_CODE =
  /node_modules\/(pg|pg-[a-z-]+|mysql2|sqlite3|futoin-database|umzug)\/|\/src\/(storage|app|transport)\/|\/src\/generation\/(DB|GenService|GroupCommit)|\/src\/delivery\/(poll\/(DB)?PollService|push\/\w*Service)/;

describe('receiving entry point', function () {
  it('exports the receivers and faces without loading database code', function () {
    const script = `
      const entry = require('./src/receiving');
      const loaded = Object.keys(require.cache);
      process.stdout.write(JSON.stringify({ exports: Object.keys(entry), loaded }));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const { exports, loaded } = JSON.parse(out) as { exports: string[]; loaded: string[] };
    expect(exports).to.include.members([
      'LiveReceiver',
      'ReliableReceiver',
      'ReceiverService',
      'ReliableReceiverService',
      'ReceiverFace',
      'PushFace',
      'PollFace',
      'GenFace',
    ]);
    expect(loaded.filter((f) => DATABASE_CODE.test(f))).to.deep.equal([]);
  });

  it("so do futoin-eventstream's per-class modules of the consumer side", function () {
    const modules = [
      'LiveReceiver',
      'ReliableReceiver',
      'ReceiverService',
      'ReliableReceiverService',
      'ReceiverFace',
      'GenFace',
      'PollFace',
      'PushFace',
      'common',
    ];
    const script = `
      const names = ${JSON.stringify(modules)}.map((m) => {
        const mod = require('./src/compat/' + m);
        return typeof mod === 'function' ? mod.name : Object.keys(mod).join();
      });
      process.stdout.write(JSON.stringify({ names, loaded: Object.keys(require.cache) }));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const { names, loaded } = JSON.parse(out) as { names: string[]; loaded: string[] };
    expect(names.slice(0, -1)).to.deep.equal(modules.slice(0, -1));
    expect(names[names.length - 1]).to.include('GEN_FACE');
    expect(loaded.filter((f) => DATABASE_CODE.test(f))).to.deep.equal([]);
  });
});

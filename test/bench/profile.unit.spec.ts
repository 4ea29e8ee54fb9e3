/**
 * bench/profile.ts, the CPU profile summary the benchmark's --cpu-prof results are read with: a
 * real profile from `node --cpu-prof`, and a made-up one for the start-up cut and the areas.
 */
import { expect } from 'chai';
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { areaOf, report, summarise, type CpuProfile } from '../../bench/profile';

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });

describe('bench/profile: CPU profile summary', () => {
  it('finds the hot function of a real node --cpu-prof profile', function () {
    this.timeout(20_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evt-prof-'));
    try {
      const script = path.join(dir, 'burn.js');
      fs.writeFileSync(
        script,
        'function burnCpuHere() { let x = 0; const end = Date.now() + 300;' +
          ' while (Date.now() < end) x += Math.sqrt(x + 1); return x; }\nburnCpuHere();\n',
      );
      execFileSync(process.execPath, [
        '--cpu-prof',
        '--cpu-prof-dir',
        dir,
        '--cpu-prof-name',
        'sqlite-burn-ours-1.cpuprofile',
        script,
      ]);
      const file = path.join(dir, 'sqlite-burn-ours-1.cpuprofile');
      const groups = summarise([
        { file, profile: JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile },
      ]);
      const g = groups.get('sqlite-burn-ours')!;
      expect(g.files).to.equal(1);
      expect(g.startupUs).to.equal(0); // no request handler in it: nothing left out
      const [hottest] = [...g.functions.entries()].sort((a, b) => b[1] - a[1]);
      expect(hottest![0]).to.match(/^burnCpuHere .*burn\.js:1$/);
      // Most of the busy time, though the profile also holds Node's own start-up.
      expect(hottest![1]).to.be.greaterThan((g.totalUs - g.idleUs) / 2);
      expect(report('sqlite-burn-ours', g, 3)).to.contain('`burnCpuHere');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves out start-up, merges runs and sorts time into areas', () => {
    // root -> compile (start-up) ; root -> handleWSRequest -> insert (ours) -> writev (native)
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 3, 6, 7] },
        { id: 2, callFrame: frame('compile', 'file:///app/node_modules/ajv/lib/x.js') },
        {
          id: 3,
          callFrame: frame('handleWSRequest', 'file:///app/node_modules/futoin-executor/N.js'),
          children: [4],
        },
        { id: 4, callFrame: frame('insert', 'file:///app/dist/storage/store.js'), children: [5] },
        { id: 5, callFrame: frame('writev') },
        { id: 6, callFrame: frame('(idle)') },
        { id: 7, callFrame: frame('(garbage collector)') },
      ],
      samples: [2, 2, 3, 4, 5, 5, 6, 7, 2],
      timeDeltas: [100, 100, 10, 20, 30, 30, 500, 10, 40],
    };
    const g = summarise([
      { file: '/x/pg-add1-ours-1.cpuprofile', profile },
      { file: '/x/pg-add1-ours-2.cpuprofile', profile },
    ]).get('pg-add1-ours')!;
    expect(g.files).to.equal(2);
    expect(g.startupUs).to.equal(2 * 200); // the two compile samples before the first request
    expect(g.idleUs).to.equal(2 * 500);
    expect(g.totalUs).to.equal(2 * (10 + 20 + 30 + 30 + 500 + 10 + 40));
    expect(Object.fromEntries(g.areas)).to.deep.equal({
      'futoin-executor': 20,
      'ours: storage': 40,
      'native (V8, libuv, addons)': 120,
      'garbage collection': 20,
      ajv: 80, // compiling after the first request counts: it is not start-up any more
    });
  });

  it('names areas by package, our dist folder, Node or V8', () => {
    expect(areaOf(frame('f', 'file:///a/node_modules/@futoin/specs/x.js'))).to.equal(
      '@futoin/specs',
    );
    expect(areaOf(frame('f', 'file:///a/node_modules/.cache/ftn18-bench/reference.js'))).to.equal(
      'benchmark harness',
    );
    expect(areaOf(frame('f', 'file:///a/dist/delivery/reader.js'))).to.equal('ours: delivery');
    expect(areaOf(frame('f', 'node:internal/streams/writable'))).to.equal('node internals');
    expect(areaOf(frame('(garbage collector)'))).to.equal('garbage collection');
    expect(areaOf(frame('(program)'))).to.equal('native (V8, libuv, addons)');
  });
});

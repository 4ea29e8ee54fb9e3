#!/usr/bin/env node
'use strict';

let cli;
try {
  cli = require('../dist/app/cli');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    process.stderr.write('evtstream: not built yet; run "npm run build" (npm ci does it)\n');
    process.exit(1);
  }
  throw err;
}

let settled = false;
// If the event loop empties before the command finishes, something it waited on was lost:
// never let that pass as a clean exit.
process.on('beforeExit', () => {
  if (!settled) {
    process.stderr.write('evtstream: stopped before the command finished\n');
    process.exitCode = 1;
  }
});
cli.main(process.argv.slice(2)).then((code) => {
  settled = true;
  process.exitCode = code;
  // The command has finished: what it left open (connections a shutdown timeout cut off) must
  // not keep the process, though what is closing anyway gets a moment.
  setTimeout(() => process.exit(code), 1000).unref();
});

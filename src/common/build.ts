import fs from 'fs';
import path from 'path';

/** Our npm package's name: also the OpenTelemetry tracer's. */
export const PACKAGE_NAME = 'ftn18-eventstream';

/** Our version, from package.json (two folders up from both src/common and dist/common). */
export const PACKAGE_VERSION: string = (
  JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')) as {
    version: string;
  }
).version;

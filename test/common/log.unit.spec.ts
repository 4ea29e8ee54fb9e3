/**
 * The console logger: text lines with fields appended as key=value, or one JSON object per
 * line with time, level, name, msg and the fields; levels below the chosen one are dropped.
 */
import { expect } from 'chai';
import { consoleLogger, type LogFormat, type LogLevel } from '../../src/common/log';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

function capture(
  level: LogLevel,
  format: LogFormat,
): { lines: string[]; log: ReturnType<typeof consoleLogger> } {
  const lines: string[] = [];
  const log = consoleLogger(level, 'svc', format, (line) => lines.push(line));
  return { lines, log };
}

describe('consoleLogger', function () {
  it('text: the message, then each field as key=value, quoted when it must be', function () {
    const { lines, log } = capture('debug', 'text');
    log.warn('Push: onEvents failed', {
      consumer: 'alice:ORDERS',
      session: 'r7',
      event_id: '123456789012345678',
      seq: 4,
      retry: true,
      none: null,
      skipped: undefined,
      big: 2n ** 64n,
      err: new Error('connection "lost"\nat once'),
      empty: '',
      eq: 'a=b',
    });
    expect(lines).to.have.length(1);
    const [time, rest] = [lines[0]!.slice(0, 24), lines[0]!.slice(25)];
    expect(time).to.match(ISO);
    expect(rest).to.equal(
      'WARN [svc] Push: onEvents failed consumer=alice:ORDERS session=r7 ' +
        'event_id=123456789012345678 seq=4 retry=true none=null big=18446744073709551616 ' +
        'err="connection \\"lost\\"\\nat once" empty="" eq="a=b"\n',
    );
  });

  it('text without fields is the line it always was', function () {
    const { lines, log } = capture('info', 'text');
    log.info('Stopped');
    expect(lines[0]!.slice(24)).to.equal(' INFO [svc] Stopped\n');
  });

  it('json: one object per line with time, level, name, msg and the fields', function () {
    const { lines, log } = capture('debug', 'json');
    log.error('Archiver: writing events failed', {
      consumer: 'ARCHIVER',
      event_id: '42',
      events: 3,
      err: new Error('deadlock'),
      skipped: undefined,
      // The line's own keys are not overwritten by fields.
      msg: 'not this',
      level: 'nor this',
    });
    log.debug('plain');
    expect(lines).to.have.length(2);
    for (const line of lines) {
      expect(line.endsWith('\n')).to.equal(true);
      expect(line.slice(0, -1)).to.not.include('\n');
    }
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(Object.keys(first)).to.deep.equal([
      'time',
      'level',
      'name',
      'msg',
      'consumer',
      'event_id',
      'events',
      'err',
    ]);
    expect(first['time']).to.match(ISO);
    expect(first).to.deep.include({
      level: 'error',
      name: 'svc',
      msg: 'Archiver: writing events failed',
      consumer: 'ARCHIVER',
      event_id: '42',
      events: 3,
      err: 'deadlock',
    });
    expect(JSON.parse(lines[1]!)).to.deep.include({ level: 'debug', msg: 'plain' });
  });

  it('drops what is below its level, and everything when silent', function () {
    for (const [level, expected] of [
      ['debug', ['debug', 'info', 'warn', 'error']],
      ['info', ['info', 'warn', 'error']],
      ['warn', ['warn', 'error']],
      ['error', ['error']],
      ['silent', []],
    ] as const) {
      const { lines, log } = capture(level, 'json');
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error('e');
      expect(
        lines.map((l) => (JSON.parse(l) as { level: string }).level),
        level,
      ).to.deep.equal(expected);
    }
  });
});

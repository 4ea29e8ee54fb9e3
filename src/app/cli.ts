import {
  CONSUMER_HELP,
  consumerCommand,
  CONSUMERS_HELP,
  consumersCommand,
  STATS_HELP,
  statsCommand,
} from './commands/admin';
import { EVENTS_HELP, eventsCommand } from './commands/events';
import { EvtError } from '../common/errors';
import { MIGRATE_HELP, migrateCommand } from './commands/migrate';
import { SERVE_HELP, serve } from './commands/serve';
import { processIO, UsageError, VERSION, type CliIO } from './commands/common';

export type { CliIO } from './commands/common';

const MAIN_HELP = `evtstream ${VERSION}: FutoIn FTN18 event stream service

Usage: evtstream <command> [options]

Commands:
  serve      run the service (HTTP and WebSocket), applying pending migrations first
  migrate    apply pending database migrations and exit
  events     list events of the active store or the warehouse (by ID, type, time)
  consumers  list the reliable consumers with their lag and how they read
  consumer   reset (move the pointer of), drop, or show the moves of a consumer
  stats      stream statistics: newest event, sizes, events per second
  help       show help for a command: evtstream help serve

Options for every command:
  -h, --help       show help
  -v, --version    print the version

Run "evtstream <command> --help" for the command's options.
`;

const COMMAND_HELP: Record<string, string> = {
  serve: SERVE_HELP,
  migrate: MIGRATE_HELP,
  events: EVENTS_HELP,
  consumers: CONSUMERS_HELP,
  consumer: CONSUMER_HELP,
  stats: STATS_HELP,
};

/** Runs a command, naming it in usage errors (parseArgs' own included). */
async function withCommand(command: string, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.message, command);
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))
      throw new UsageError((err as Error).message, command);
    throw err;
  }
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        io.err(MAIN_HELP);
        return 2;
      case '-h':
      case '--help':
        io.out(MAIN_HELP);
        return 0;
      case '-v':
      case '--version':
        io.out(VERSION);
        return 0;
      case 'help': {
        const help = rest[0] === undefined ? MAIN_HELP : COMMAND_HELP[rest[0]];
        if (help === undefined) throw new UsageError(`Unknown command "${rest[0]}"`);
        io.out(help);
        return 0;
      }
      case 'serve':
        return await withCommand('serve', () => serve(rest, io));
      case 'migrate':
        return await withCommand('migrate', () => migrateCommand(rest, io));
      case 'events':
        return await withCommand('events', () => eventsCommand(rest, io));
      case 'consumers':
        return await withCommand('consumers', () => consumersCommand(rest, io));
      case 'consumer':
        return await withCommand('consumer', () => consumerCommand(rest, io));
      case 'stats':
        return await withCommand('stats', () => statsCommand(rest, io));
      default:
        throw new UsageError(`Unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`evtstream: ${err.message}`);
      io.err(`Run "evtstream ${err.command ? `${err.command} ` : ''}--help" for usage.`);
      return 2;
    }
    io.err(
      `evtstream: ${err instanceof EvtError ? err.toString() : ((err as Error).message ?? String(err))}`,
    );
    return 1;
  }
}

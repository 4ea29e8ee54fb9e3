// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ships the futoin-* typings with ours
/// <reference path="../types/futoin.d.ts" preserve="true" />
/**
 * ftn18-eventstream: the FutoIn FTN18 Event Stream. Class names follow the reference
 * implementation (futoin-eventstream) so FutoIn users find what they know.
 */
export * from './common/constants';
export { ErrorCode, EvtError } from './common/errors';
export { cmpIds, isEventId, type EventId } from './common/ids';
export { consoleLogger, type Logger, type LogLevel } from './common/log';

export { GenFace } from './generation/GenFace';
export { DBGenFace } from './generation/DBGenFace';
export { GenService, type GenServiceOptions } from './generation/GenService';
export { DBGenService, type DBGenServiceOptions } from './generation/DBGenService';

export { PollFace } from './delivery/poll/PollFace';
export { PollService, type Event, type PollServiceOptions } from './delivery/poll/PollService';
export { DBPollService, type DBPollServiceOptions } from './delivery/poll/DBPollService';

export { PushFace } from './delivery/push/PushFace';
export { PushService, type PushServiceOptions } from './delivery/push/PushService';
export { DBPushService, type DBPushServiceOptions } from './delivery/push/DBPushService';

export {
  ReceiverFace,
  ReceiverService,
  ReliableReceiverService,
  LiveReceiver,
  ReliableReceiver,
  type ReceiverEvents,
  type ReceiverServiceOptions,
  type ReceiverStartOptions,
} from './receiving';

export {
  DBEventArchiver,
  type ArchiverMode,
  type ArchiverStartOptions,
  type DBEventArchiverOptions,
} from './maintenance/DBEventArchiver';
export {
  DBEventDiscarder,
  parseDuration,
  type DBEventDiscarderOptions,
  type DiscarderEvents,
  type DiscardResult,
} from './maintenance/DBEventDiscarder';

export { EventStore, type StoreOptions, type StoredEvent } from './storage/store';
export { listEvents, type ListQuery } from './storage/list';
export { loadDatabaseModules } from './storage/preload';
export { bindStore, resolveStore } from './storage/ccm';
export { registerFutoinDb } from './storage/futoin-db';
export {
  parseDbUrl,
  configFromEnv,
  describeConnection,
  type ConnectionConfig,
} from './storage/config';
export { migrate, pendingMigrations, MigrationError, type SchemaKind } from './storage/migrate';

export { EvtNodeExecutor, type EvtExecutorOptions, type HttpRoute } from './transport/executor';
export { UsersSecurityProvider, parseUsers, type Users } from './transport/auth';
export { DBServiceApp, type DBServiceAppOptions, type DatabaseSpec } from './app/DBServiceApp';
export { StreamService, type ServiceConfig } from './app/service';

export {
  AdminCore,
  type AdminCoreOptions,
  type ConsumerInfo,
  type DeliveryMode,
  type MoveRecord,
  type MoveTarget,
  type ReadQuery,
  type StreamStats,
} from './ops/admin';
export { AdminService, hasAdminRight } from './ops/AdminService';
export { AdminFace, type ReadEventsParams } from './ops/AdminFace';
export { serveConsole, CONSOLE_PATH } from './ops/console';

// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ships the futoin-* typings with ours
/// <reference path="../types/futoin.d.ts" preserve="true" />
/**
 * ftn18-eventstream: the FutoIn FTN18 Event Stream. Class names follow the reference
 * implementation (futoin-eventstream) so FutoIn users find what they know.
 */
export * from './common/constants';
export { ErrorCode, EvtError } from './common/errors';
export type { Event } from './common/event';
export { cmpIds, isEventId, type EventId } from './common/ids';
export { consoleLogger, type Logger, type LogLevel } from './common/log';
export { parseDuration } from './common/time';

export { GenFace } from './common/faces/GenFace';
export { DBGenFace } from './generation/DBGenFace';
export { GEN_DEFAULTS } from './generation/options';
export { GenService, type GenServiceOptions } from './generation/GenService';
export { DBGenService, type DBGenServiceOptions } from './generation/DBGenService';

export { PollFace } from './common/faces/PollFace';
export { POLL_DEFAULTS } from './delivery/poll/options';
export {
  PollService,
  UnsupportedHookError,
  type PollHookRequest,
  type PollServiceOptions,
} from './delivery/poll/PollService';
export { DBPollService, type DBPollServiceOptions } from './delivery/poll/DBPollService';

export { PushFace } from './common/faces/PushFace';
export { PUSH_DEFAULTS } from './delivery/push/options';
export { PushService, type PushServiceOptions } from './delivery/push/PushService';
export { DBPushService, type DBPushServiceOptions } from './delivery/push/DBPushService';
export { ADMIN_HINTS, type OperatorHints } from './delivery/push/hub';

export {
  ReceiverFace,
  ReceiverService,
  ReliableReceiverService,
  LiveReceiver,
  ReliableReceiver,
  RECEIVER_DEFAULTS,
  TransactionalReceiver,
  TRANSACTIONAL_DEFAULTS,
  CONSUMER_STATE_TABLE,
  consumerStateDdl,
  futoinDatabase,
  mysqlDatabase,
  pgDatabase,
  sqliteDatabase,
  sqlStateStore,
  type ConsumerStateStore,
  type ReceiverEvents,
  type ReceiverServiceOptions,
  type ReceiverStartOptions,
  type TransactionalReceiverOptions,
} from './receiving';

export { ARCHIVER_DEFAULTS, DISCARDER_DEFAULTS } from './maintenance/options';
export {
  DBEventArchiver,
  type ArchiverMode,
  type ArchiverStartOptions,
  type DBEventArchiverOptions,
} from './maintenance/DBEventArchiver';
export {
  DBEventDiscarder,
  type DBEventDiscarderOptions,
  type DiscarderEvents,
  type DiscardResult,
} from './maintenance/DBEventDiscarder';

export {
  EventStore,
  type ListQuery,
  type MoveRecord,
  type StoreOptions,
  type StoredEvent,
} from './storage/store';
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
export {
  UsersSecurityProvider,
  parseUsers,
  AUTH_DEFAULTS,
  type AuthOptions,
  type Users,
} from './transport/auth';
export { APP_DEFAULTS, SERVICE_DEFAULTS } from './app/options';
export { COORDINATION_DEFAULTS, type CoordinationOptions } from './storage/coordination/options';
export { DBServiceApp, type DBServiceAppOptions, type DatabaseSpec } from './app/DBServiceApp';
export { StreamService, type ServiceConfig } from './app/service';

export {
  AdminCore,
  type AdminCoreOptions,
  type ConsumerInfo,
  type DeliveryMode,
  type ReadQuery,
  type StreamStats,
} from './ops/admin';
export { AdminService, hasAdminRight } from './ops/AdminService';
export { AdminFace, type MoveTarget, type ReadEventsParams } from './common/faces/AdminFace';
export { serveConsole, CONSOLE_PATH } from './ops/console';

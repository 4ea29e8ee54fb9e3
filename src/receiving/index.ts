// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ships the futoin-* typings with ours
/// <reference path="../../types/futoin.d.ts" preserve="true" />
/**
 * Entry point for consumer processes (`ftn18-eventstream/receiver`): the receivers and the
 * client faces, without the services and their database code.
 */
export * from '../common/constants';
export { ErrorCode, EvtError } from '../common/errors';
export { cmpIds, isEventId, type EventId } from '../common/ids';
export type { Event } from '../common/event';

export { GenFace } from '../common/faces/GenFace';
export { PollFace } from '../common/faces/PollFace';
export { PushFace } from '../common/faces/PushFace';

export { ReceiverFace } from '../common/faces/ReceiverFace';
export {
  ReceiverService,
  type ReceiverServiceClass,
  type ReceiverServiceOptions,
} from './ReceiverService';
export { ReliableReceiverService } from './ReliableReceiverService';
export { LiveReceiver, type ReceiverEvents, type ReceiverStartOptions } from './LiveReceiver';
export { ReliableReceiver } from './ReliableReceiver';
export {
  TransactionalReceiver,
  TRANSACTIONAL_DEFAULTS,
  type TransactionalReceiverOptions,
} from './TransactionalReceiver';
export {
  CONSUMER_STATE_TABLE,
  consumerStateDdl,
  futoinDatabase,
  mysqlDatabase,
  pgDatabase,
  sqliteDatabase,
  sqlStateStore,
  type ConsumerDialect,
  type ConsumerStateStore,
  type MysqlConnectionLike,
  type MysqlPoolLike,
  type PgClientLike,
  type PgPoolLike,
  type SqlDriver,
  type SqliteDatabaseLike,
  type SqlTransaction,
} from './consumer-state';
export { RECEIVER_DEFAULTS } from './connect';
export { Backoff } from '../common/backoff';

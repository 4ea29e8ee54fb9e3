// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ships the futoin-* typings with ours
/// <reference path="../../types/futoin.d.ts" preserve="true" />
/**
 * Entry point for consumer processes (`ftn18-eventstream/receiver`): the receivers and the
 * client faces, without the services and their database code.
 */
export * from '../common/constants';
export { ErrorCode, EvtError } from '../common/errors';
export { cmpIds, isEventId, type EventId } from '../common/ids';
export type { Event } from '../delivery/poll/PollService';

export { GenFace } from '../generation/GenFace';
export { PollFace } from '../delivery/poll/PollFace';
export { PushFace } from '../delivery/push/PushFace';

export { ReceiverFace } from './ReceiverFace';
export {
  ReceiverService,
  type ReceiverServiceClass,
  type ReceiverServiceOptions,
} from './ReceiverService';
export { ReliableReceiverService } from './ReliableReceiverService';
export { LiveReceiver, type ReceiverEvents, type ReceiverStartOptions } from './LiveReceiver';
export { ReliableReceiver } from './ReliableReceiver';
export { Backoff } from '../common/backoff';

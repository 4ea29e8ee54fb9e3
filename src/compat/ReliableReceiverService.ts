// `require('ftn18-eventstream/ReliableReceiverService')`, as futoin-eventstream's per-class module.
import { ReliableReceiverService } from '../receiving/ReliableReceiverService';

export = ReliableReceiverService;

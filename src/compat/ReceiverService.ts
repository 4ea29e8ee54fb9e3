// `require('ftn18-eventstream/ReceiverService')`, as futoin-eventstream's per-class module.
import { ReceiverService } from '../receiving/ReceiverService';

export = ReceiverService;

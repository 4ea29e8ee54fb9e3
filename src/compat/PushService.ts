// `require('ftn18-eventstream/PushService')`, as futoin-eventstream's per-class module.
import { PushService } from '../delivery/push/PushService';

export = PushService;

// `require('ftn18-eventstream/DBPushService')`, as futoin-eventstream's per-class module.
import { DBPushService } from '../delivery/push/DBPushService';

export = DBPushService;

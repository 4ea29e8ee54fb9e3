// `require('ftn18-eventstream/DBPollService')`, as futoin-eventstream's per-class module.
import { DBPollService } from '../delivery/poll/DBPollService';

export = DBPollService;

// `require('ftn18-eventstream/PollService')`, as futoin-eventstream's per-class module.
import { PollService } from '../delivery/poll/PollService';

export = PollService;

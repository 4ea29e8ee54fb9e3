// `require('ftn18-eventstream/PollFace')`, as futoin-eventstream's per-class module.
import { PollFace } from '../common/faces/PollFace';

export = PollFace;

// `require('ftn18-eventstream/ReceiverFace')`, as futoin-eventstream's per-class module.
import { ReceiverFace } from '../common/faces/ReceiverFace';

export = ReceiverFace;

// `require('ftn18-eventstream/LiveReceiver')`, as futoin-eventstream's per-class module.
import { LiveReceiver } from '../receiving/LiveReceiver';

export = LiveReceiver;

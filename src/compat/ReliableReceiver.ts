// `require('ftn18-eventstream/ReliableReceiver')`, as futoin-eventstream's per-class module.
import { ReliableReceiver } from '../receiving/ReliableReceiver';

export = ReliableReceiver;

// `require('ftn18-eventstream/DBEventArchiver')`, as futoin-eventstream's per-class module.
import { DBEventArchiver } from '../maintenance/DBEventArchiver';

export = DBEventArchiver;

// `require('ftn18-eventstream/DBEventDiscarder')`, as futoin-eventstream's per-class module.
import { DBEventDiscarder } from '../maintenance/DBEventDiscarder';

export = DBEventDiscarder;

// `require('ftn18-eventstream/DBGenService')`, as futoin-eventstream's per-class module.
import { DBGenService } from '../generation/DBGenService';

export = DBGenService;

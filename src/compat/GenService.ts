// `require('ftn18-eventstream/GenService')`, as futoin-eventstream's per-class module.
import { GenService } from '../generation/GenService';

export = GenService;

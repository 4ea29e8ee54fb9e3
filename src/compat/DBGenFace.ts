// `require('ftn18-eventstream/DBGenFace')`, as futoin-eventstream's per-class module.
import { DBGenFace } from '../generation/DBGenFace';

export = DBGenFace;

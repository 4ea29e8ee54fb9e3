// `require('ftn18-eventstream/GenFace')`, as futoin-eventstream's per-class module.
import { GenFace } from '../common/faces/GenFace';

export = GenFace;

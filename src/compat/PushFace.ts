// `require('ftn18-eventstream/PushFace')`, as futoin-eventstream's per-class module.
import { PushFace } from '../common/faces/PushFace';

export = PushFace;

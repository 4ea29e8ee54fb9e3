// `require('ftn18-eventstream/DBServiceApp')`, as futoin-eventstream's per-class module.
import { DBServiceApp } from '../app/DBServiceApp';

export = DBServiceApp;

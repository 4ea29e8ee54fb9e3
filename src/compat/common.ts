// `require('ftn18-eventstream/common')`: the constants of futoin-eventstream's common module.
export {
  DB_EVTCONSUMERS,
  DB_EVTHISTORY,
  DB_EVTTABLE,
  DB_IFACEVER,
  FTN18_VERSION,
  GEN_FACE,
  PING_VERSION,
  POLL_FACE,
  PUSH_FACE,
} from '../common/constants';
export { cmpIds } from '../common/ids';

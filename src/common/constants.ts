import path from 'path';
import { SPEC_DIRS } from '@futoin/specs';

/** The FTN18 version our faces and services speak by default. */
export const FTN18_VERSION = '1.1';
export const PING_VERSION = '1.0';

export const IFACE = {
  types: 'futoin.evt.types',
  gen: 'futoin.evt.gen',
  poll: 'futoin.evt.poll',
  push: 'futoin.evt.push',
  receiver: 'futoin.evt.receiver',
} as const;

/** Our own administration interface (never inside futoin.evt.*). */
export const ADMIN_IFACE = 'ftn18es.admin';
export const ADMIN_VERSION = '1.1';

/** Table names the reference implementation uses; kept so its deployments can switch. */
export const TABLES = {
  events: 'evt_queue',
  consumers: 'evt_consumers',
  history: 'evt_history',
  /** Administrators' pointer moves and drops (ftn18es.admin). */
  moves: 'evt_consumer_moves',
  /** Events parked for push consumers whose receiver kept failing on them (copies). */
  parked: 'evt_parked',
  /** Each push consumer's parking rule (max_attempts) and streak of parks. */
  parking: 'evt_consumer_parking',
  /** Control messages between the nodes of a cluster, where the database has no notifications. */
  control: 'evt_control',
} as const;

/** CCM names FutoIn users know from the reference. */
export const FACE_NAMES = {
  gen: '#evtgen',
  poll: '#evtpoll',
  push: '#evtpush',
} as const;

/**
 * The names futoin-eventstream's main and `common` modules export, with the same values and
 * meaning, so code written for it finds them here.
 */
export const GEN_FACE = FACE_NAMES.gen;
export const POLL_FACE = FACE_NAMES.poll;
export const PUSH_FACE = FACE_NAMES.push;
export const DB_EVTTABLE = TABLES.events;
export const DB_EVTCONSUMERS = TABLES.consumers;
export const DB_EVTHISTORY = TABLES.history;

/** The futoin-database connection the services use: `#db.evt` (and `#db.evtdwh`). */
export const DB_CONN = { active: 'evt', warehouse: 'evtdwh' } as const;
export const DB_IFACEVER = 'futoin.db.l2:1.0';

/** The component name reserved for best-effort live consumers. */
export const LIVE_COMPONENT = 'LIVE';

/** FTN18 limits. */
export const MAX_EVENTS_PER_LIST = 1000;
/** FTN3's default message limit, which FTN18 1.0 calls and all non-FTN18-1.1 calls keep. */
export const DEFAULT_MESSAGE_LIMIT = 64 * 1024;
/** FTN18 1.1 raises poll results and onEvents requests to 8M (FTN3 "8M" = 8 MiB). */
export const FTN18_1_1_MESSAGE_LIMIT = 8 * 1024 * 1024;

/** Our copies of the FTN18 specs, then the official ones for what they import (futoin.ping). */
export const SPECS_DIR = path.resolve(__dirname, '..', '..', 'specs');
export const SPEC_DIRS_ALL: string[] = [SPECS_DIR, ...SPEC_DIRS];
/**
 * futoin-eventstream's name for the spec folders to give `ccm.register()` and executors:
 * SPEC_DIRS_ALL (the official FTN18 specs, and our ftn18es.admin besides).
 */
export const specDirs: string[] = SPEC_DIRS_ALL;

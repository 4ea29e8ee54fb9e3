import { TABLES } from '../common/constants';

export const ACTIVE_TABLE = TABLES.events;
export const HISTORY_TABLE = TABLES.history;

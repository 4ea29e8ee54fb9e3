import type { OperatorHints } from '../delivery/push/hub';

/** The evtstream commands that do what log lines below the app advise. */
export const CLI_HINTS: Required<OperatorHints> = {
  readEvent: (_table, id) => `evtstream events --from ${id} --to ${id} --json`,
  skipTo: (consumer, id) => `evtstream consumer reset ${consumer} --to ${id}`,
  replayParked: (consumer, id) => `evtstream consumer replay ${consumer} ${id}`,
  skipParked: (consumer, id) => `evtstream consumer skip ${consumer} ${id} --reason TEXT`,
  setMaxAttempts: (consumer) => `evtstream consumer max-attempts ${consumer} N`,
};

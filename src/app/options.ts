import { normalOrigin } from '../transport/origin';
import { OptionChecks } from '../common/options';
import { pollSettings, storeOptionsOf } from '../delivery/poll/options';
import { pushSettings } from '../delivery/push/options';
import { dbGenSettings, genMaxEventBytes, GEN_DEFAULTS } from '../generation/options';
import { archiverSettings, discarderSettings } from '../maintenance/options';
import { READY_TIMEOUT_MS } from '../ops/health';
import { coordinationSettings } from '../storage/coordination/options';
import type { MetricsAccess } from '../ops/metrics';
import type { DBServiceAppOptions } from './DBServiceApp';
import type { ServiceConfig } from './service';

/** Defaults of DBServiceApp's options (the services' own: GEN_, POLL_, PUSH_DEFAULTS...). */
export const APP_DEFAULTS = Object.freeze({
  enableArchiver: false,
  enableDiscarder: false,
  /** Serve ftn18es.admin, when the app opens the active store. */
  enableAdmin: true,
});

export interface AppSettings {
  enableArchiver: boolean;
  enableDiscarder: boolean;
  enableAdmin: boolean;
}

/**
 * Checks DBServiceApp's options, and those it hands to the services, the archiver and the
 * discarder, so that a mistake fails the app's construction before anything is opened.
 */
export function appSettings(options: DBServiceAppOptions): AppSettings {
  const check = new OptionChecks('app');
  const settings: AppSettings = {
    enableArchiver: check.bool(
      'enableArchiver',
      options.enableArchiver,
      APP_DEFAULTS.enableArchiver,
    ),
    enableDiscarder: check.bool(
      'enableDiscarder',
      options.enableDiscarder,
      APP_DEFAULTS.enableDiscarder,
    ),
    enableAdmin: check.bool('enableAdmin', options.enableAdmin, APP_DEFAULTS.enableAdmin),
  };
  const evt = options.evtOptions ?? {};
  genMaxEventBytes(evt);
  dbGenSettings(evt);
  pollSettings(evt);
  pushSettings(evt);
  storeOptionsOf('push', evt);
  coordinationSettings(options.coordination);
  if (settings.enableArchiver) archiverSettings(options.archiverOptions ?? {});
  if (settings.enableDiscarder) discarderSettings(options.discarderOptions ?? {});
  return settings;
}

/** Defaults of StreamService's configuration (what `evtstream serve` runs) and of its flags. */
export const SERVICE_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  /** /metrics: for admins, with HTTP Basic auth. */
  metrics: 'admins',
  /** Serve the web console at /console. */
  console: true,
  trustProxy: false,
  /** Count loopback connections as secure channels (`serve` turns it on: see its help). */
  secureLoopback: false,
  maxEventBytes: GEN_DEFAULTS.max_event_bytes,
  /** How long shutdown() (SIGTERM) may take: draining push batches in flight, then closing. */
  shutdownTimeoutMs: 10_000,
  /** /readyz: how long the database may take to answer before the service counts as not ready. */
  readyTimeoutMs: READY_TIMEOUT_MS,
});

const METRICS_ACCESS: readonly MetricsAccess[] = ['admins', 'open', 'off'];

/** Checks StreamService's configuration (the services' options are checked by appSettings). */
export function serviceSettings(config: ServiceConfig): {
  metrics: MetricsAccess;
  console: boolean;
  trustProxy: boolean;
  secureLoopback: boolean;
  shutdownTimeoutMs: number;
  readyTimeoutMs: number;
  adminOrigins: readonly string[];
} {
  const check = new OptionChecks('service');
  const adminOrigins = config.adminOrigins ?? [];
  if (!Array.isArray(adminOrigins) || adminOrigins.some((o) => normalOrigin(String(o)) === null))
    throw new TypeError(
      `service option adminOrigins must be a list of http(s) origins, got ${JSON.stringify(adminOrigins)}`,
    );
  check.int('port', config.port, SERVICE_DEFAULTS.port, { min: 0, max: 65_535 });
  check.string('host', config.host, 'a host name or address');
  return {
    metrics: check.oneOf('metrics', config.metrics, SERVICE_DEFAULTS.metrics, METRICS_ACCESS),
    console: check.bool('console', config.console, SERVICE_DEFAULTS.console),
    trustProxy: check.bool('trustProxy', config.trustProxy, SERVICE_DEFAULTS.trustProxy),
    secureLoopback: check.bool(
      'secureLoopback',
      config.secureLoopback,
      SERVICE_DEFAULTS.secureLoopback,
    ),
    shutdownTimeoutMs: check.ms(
      'shutdownTimeoutMs',
      config.shutdownTimeoutMs,
      SERVICE_DEFAULTS.shutdownTimeoutMs,
      true,
    ),
    readyTimeoutMs: check.ms(
      'readyTimeoutMs',
      config.readyTimeoutMs,
      SERVICE_DEFAULTS.readyTimeoutMs,
    ),
    adminOrigins,
  };
}

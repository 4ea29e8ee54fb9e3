#!/bin/sh
# Runs `evtstream serve` from environment variables alone (README "Container image").
set -eu
set -- serve --host "${EVTSTREAM_HOST:-0.0.0.0}" --port "${EVTSTREAM_PORT:-8080}"
if [ -n "${EVTSTREAM_DB:-}" ]; then set -- "$@" --db "$EVTSTREAM_DB"; fi
if [ -n "${EVTSTREAM_DWH:-}" ]; then set -- "$@" --dwh "$EVTSTREAM_DWH"; fi
if [ -n "${EVTSTREAM_KEEP_FOR:-}" ]; then set -- "$@" --discard --keep-for "$EVTSTREAM_KEEP_FOR"; fi
if [ -n "${EVTSTREAM_TLS_CERT:-}" ]; then
  set -- "$@" --tls-cert "$EVTSTREAM_TLS_CERT" --tls-key "${EVTSTREAM_TLS_KEY:?EVTSTREAM_TLS_KEY must go with EVTSTREAM_TLS_CERT}"
fi
if [ "${EVTSTREAM_TRUST_PROXY:-}" = 1 ]; then set -- "$@" --trust-proxy; fi
if [ "${EVTSTREAM_METRICS_OPEN:-}" = 1 ]; then set -- "$@" --metrics-open; fi
# exec: the service is PID 1 and gets SIGTERM itself, which stops it cleanly.
exec node /app/bin/evtstream.js "$@"

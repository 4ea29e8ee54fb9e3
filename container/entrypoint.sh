#!/bin/sh
# Runs `evtstream serve` from environment variables alone: serve reads every option from its
# EVTSTREAM_* twin (README "Running the service"; the image sets EVTSTREAM_HOST=0.0.0.0).
set -eu
# Images configured before EVTSTREAM_DISCARD existed turned discarding on with the age alone.
if [ -n "${EVTSTREAM_KEEP_FOR:-}" ] && [ -z "${EVTSTREAM_DISCARD:-}" ]; then
  export EVTSTREAM_DISCARD=1
fi
# exec: the service is PID 1 and gets SIGTERM itself, which stops it cleanly.
exec node /app/bin/evtstream.js serve "$@"

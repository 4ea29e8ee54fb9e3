#!/usr/bin/env bash
# Builds the container image and uses it as an operator would: started against PostgreSQL with
# configuration by environment only, healthy by its HEALTHCHECK, an event added and polled
# through it, then stopped with SIGTERM, which must end it with exit code 0.
# Needs the PostgreSQL server of EVT_TEST_PG_URL (postgres://USER@HOST:PORT/DB) and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/.ci/containers.conf}
major=${EVT_IMAGE_NODE:-26}
image=localhost/ftn18-eventstream:ci
name=ftn18es-ci-$$
database=evt_image_$$
t0=$(date +%s)

base=$(.ci/container-base.sh "$major")
echo "base image $base ready in $(($(date +%s) - t0)) s"

# Behind a TLS-inspecting proxy npm needs its CA bundle inside the build too.
build_args=(--format docker --build-arg "BASE=$base" -t "$image")
cafile=$(npm config get cafile)
if [ -f "$cafile" ]; then build_args+=(--secret "id=npm_ca,src=$cafile"); fi
t1=$(date +%s)
podman build "${build_args[@]}" . >"${TMPDIR:-/tmp}/$name-build.log" 2>&1 || {
  tail -n 40 "${TMPDIR:-/tmp}/$name-build.log" >&2
  exit 1
}
echo "image $image built in $(($(date +%s) - t1)) s"

[[ $EVT_TEST_PG_URL =~ ^postgres://([^@:]+)@([^:/]+):([0-9]+)/ ]] || {
  echo "EVT_TEST_PG_URL must be postgres://USER@HOST:PORT/DB" >&2
  exit 1
}
pg_user=${BASH_REMATCH[1]} pg_host=${BASH_REMATCH[2]} pg_port=${BASH_REMATCH[3]}
psql -q "$EVT_TEST_PG_URL" -c "CREATE DATABASE $database"
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  psql -q "$EVT_TEST_PG_URL" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  rm -f "${TMPDIR:-/tmp}/$name-build.log"
}
trap cleanup EXIT

# Host network: the client connects over loopback, which the service counts as a secure
# channel (FTN18 requires one for addEvent). No systemd here: the health check runs on demand.
t2=$(date +%s)
if ! out=$(podman run -d --name "$name" --network host --health-interval disable \
  -e EVTSTREAM_HOST=127.0.0.1 -e EVTSTREAM_PORT="$port" -e EVTSTREAM_USERS=ci:ci-secret \
  -e DB_EVT_TYPE=postgresql -e DB_EVT_HOST="$pg_host" -e DB_EVT_PORT="$pg_port" \
  -e DB_EVT_USER="$pg_user" -e DB_EVT_DB="$database" "$image" 2>&1); then
  echo "$out" >&2
  exit 1
fi

healthy=
for _ in $(seq 1 120); do
  if podman healthcheck run "$name" >/dev/null 2>&1; then healthy=1; break; fi
  [ "$(podman inspect -f '{{.State.Running}}' "$name")" = true ] || break
  sleep 0.5
done
if [ -z "$healthy" ]; then
  podman logs "$name" >&2
  echo "the container never became healthy" >&2
  exit 1
fi
echo "container healthy in $(($(date +%s) - t2)) s"

uid=$(podman exec "$name" id -u)
[ "$uid" != 0 ] || { echo "the service runs as root" >&2; exit 1; }

node - "http://127.0.0.1:$port/" <<'JS'
const url = process.argv[2];
let n = 0;
async function call(f, p) {
  const rsp = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/futoin+json' },
    body: JSON.stringify({ f, p, rid: `C${++n}`, sec: 'ci:ci-secret' }),
    signal: AbortSignal.timeout(10000),
  });
  const answer = await rsp.json();
  if (answer.e) throw new Error(`${f}: ${answer.e} ${answer.edesc ?? ''}`);
  return answer.r;
}
(async () => {
  if ((await call('futoin.evt.poll:1.1:registerConsumer', { component: 'CI' })) !== true)
    throw new Error('registerConsumer did not answer true');
  const id = await call('futoin.evt.gen:1.1:addEvent', { type: 'IMAGE_CHECK', data: { ok: 1 } });
  const events = await call('futoin.evt.poll:1.1:pollEvents', { component: 'CI' });
  const got = JSON.stringify(events.map((e) => [e.id, e.type, e.data]));
  if (got !== JSON.stringify([[id, 'IMAGE_CHECK', { ok: 1 }]])) throw new Error(`polled ${got}`);
  console.log(`event ${id} added and polled through the container`);
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
JS

podman kill --signal TERM "$name" >/dev/null
if ! code=$(timeout 60 podman wait "$name"); then
  podman logs "$name" >&2
  echo "the container still ran 60 s after SIGTERM" >&2
  exit 1
fi
if [ "$code" != 0 ]; then
  podman logs "$name" >&2
  echo "the container exited with $code after SIGTERM" >&2
  exit 1
fi
logs=$(podman logs "$name" 2>&1)
[[ $logs == *'SIGTERM: stopping'* ]] || { echo "no clean stop logged: $logs" >&2; exit 1; }
echo "container stopped by SIGTERM with exit code 0; image check done in $(($(date +%s) - t0)) s"

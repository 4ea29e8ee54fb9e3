#!/usr/bin/env bash
# Starts (or stops/restarts) throw-away PostgreSQL and MariaDB servers on local ports for the
# test suite. Data lives under $EVT_DB_DIR (default: a folder in $TMPDIR); nothing touches the
# system's own database clusters. Prints the URLs the tests read (EVT_TEST_PG_URL,
# EVT_TEST_MYSQL_URL) in `export` form, so `eval "$(.ci/databases.sh start)"` sets them up.
#
# Both servers also accept TLS, with a throw-away CA and server certificate made with openssl
# under $EVT_DB_DIR/tls at the first start (the certificate names `localhost` only, so that
# sslmode=verify-full passes for localhost and fails for 127.0.0.1). Plain connections keep
# working for the users above; two more users exist for the TLS tests: `evt_tls` (TLS only; on
# MariaDB with the password evt_tls) and `evt_cert` (signed in by the client certificate
# tls/client.pem + tls/client.key). The CA's file is printed as EVT_TEST_DB_CA.
#
#   .ci/databases.sh start [pg|mysql]     start both (or one), print the exports
#   .ci/databases.sh stop [pg|mysql]      stop both (or one)
#   .ci/databases.sh restart pg|mysql     stop and start one (fault tests use it)
#   .ci/databases.sh status [pg|mysql]    exit 0 if both (or the one) run, else 1
#   .ci/databases.sh env                  print the exports only
set -euo pipefail

DIR=${EVT_DB_DIR:-${TMPDIR:-/tmp}/ftn18es-dbs}
PG_PORT=${EVT_PG_PORT:-55432}
MY_PORT=${EVT_MYSQL_PORT:-53306}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}

# PostgreSQL and MariaDB refuse to run as root: drop to their system users when we are root.
as_user() {
  local user=$1; shift
  if [ "$(id -u)" = 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}
owner_of() { if [ "$(id -u)" = 0 ]; then echo "$1"; else id -un; fi; }

TLS=$DIR/tls
# Signs a certificate for `cn` with the test CA: <name>.pem and <name>.key in $TLS.
tls_issue() {
  local name=$1 cn=$2 ext=$3
  openssl req -new -newkey rsa:2048 -nodes -keyout "$TLS/$name.key" -out "$TLS/$name.csr" \
    -subj "/CN=$cn" 2>/dev/null
  printf '%s\n' "$ext" >"$TLS/$name.ext"
  openssl x509 -req -in "$TLS/$name.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$TLS/$name.ext" \
    -out "$TLS/$name.pem" 2>/dev/null
  rm -f "$TLS/$name.csr" "$TLS/$name.ext"
}
# The CA, the server's certificate and the client certificate of evt_cert, once per folder.
tls_files() {
  [ -f "$TLS/client.pem" ] && return 0
  mkdir -p "$TLS"; chmod 755 "$TLS"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TLS/ca.key" -out "$TLS/ca.pem" -days 3650 \
    -subj "/CN=ftn18-eventstream test CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  tls_issue server localhost $'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth'
  tls_issue client evt_cert 'extendedKeyUsage=clientAuth'
  # libpq refuses a client key others can read.
  chmod 644 "$TLS"/*.pem
  chmod 600 "$TLS/ca.key" "$TLS/server.key" "$TLS/client.key"
}
# The server's certificate and key in `dir`, owned by the server's user (both refuse a key
# others can read).
tls_install() {
  local dir=$1 user=$2
  cp "$TLS/server.pem" "$TLS/server.key" "$dir/"
  chown "$(owner_of "$user")" "$dir/server.pem" "$dir/server.key"
  chmod 600 "$dir/server.key"
}

pg_running() {
  [ -f "$DIR/pg/PG_VERSION" ] && as_user postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" status >/dev/null 2>&1
}
pg_start() {
  local data=$DIR/pg
  mkdir -p "$DIR"; chmod 755 "$DIR"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"; chown "$(owner_of postgres)" "$data"
    as_user postgres "$PG_BIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if ! pg_running; then
    tls_files
    tls_install "$data" postgres
    # First match wins: the TLS users' rules go before initdb's "trust everyone" ones.
    if ! grep -q '^hostssl all evt_cert' "$data/pg_hba.conf"; then
      { printf '%s\n' 'hostssl all evt_cert 127.0.0.1/32 cert' 'hostssl all evt_tls 127.0.0.1/32 trust' \
          'hostnossl all evt_tls 127.0.0.1/32 reject'; cat "$data/pg_hba.conf"; } >"$data/pg_hba.new"
      mv "$data/pg_hba.new" "$data/pg_hba.conf"; chown "$(owner_of postgres)" "$data/pg_hba.conf"
    fi
    as_user postgres "$PG_BIN/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
      -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on \
          -c ssl=on -c ssl_cert_file=$data/server.pem -c ssl_key_file=$data/server.key \
          -c ssl_ca_file=$TLS/ca.pem" start >/dev/null
    as_user postgres "$PG_BIN/psql" -q -h "$data" -p "$PG_PORT" -U postgres -d postgres -c "
      DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evt_tls') THEN
          CREATE ROLE evt_tls LOGIN SUPERUSER; END IF;
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'evt_cert') THEN
          CREATE ROLE evt_cert LOGIN SUPERUSER; END IF;
      END \$\$;" >/dev/null
  fi
}
pg_stop() {
  [ -f "$DIR/pg/PG_VERSION" ] || return 0
  as_user postgres "$PG_BIN/pg_ctl" -D "$DIR/pg" -w -t 60 -m fast stop >/dev/null 2>&1 || true
}

my_running() { [ -f "$DIR/mysql/mysqld.pid" ] && kill -0 "$(cat "$DIR/mysql/mysqld.pid")" 2>/dev/null; }
my_start() {
  local data=$DIR/mysql/data
  mkdir -p "$DIR/mysql"; chmod 755 "$DIR" "$DIR/mysql"; chown "$(owner_of mysql)" "$DIR/mysql"
  if [ ! -d "$data/mysql" ]; then
    as_user mysql mariadb-install-db --no-defaults --datadir="$data" --auth-root-authentication-method=normal \
      --skip-test-db >/dev/null
  fi
  if ! my_running; then
    tls_files
    tls_install "$DIR/mysql" mysql
    as_user mysql mariadbd --no-defaults --datadir="$data" --port="$MY_PORT" --bind-address=127.0.0.1 \
      --ssl-ca="$TLS/ca.pem" --ssl-cert="$DIR/mysql/server.pem" --ssl-key="$DIR/mysql/server.key" \
      --socket="$DIR/mysql/mysqld.sock" --pid-file="$DIR/mysql/mysqld.pid" \
      --log-error="$DIR/mysql/server.log" --max-connections=300 --innodb-buffer-pool-size=256M \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
      if mariadb --no-defaults -uroot --socket="$DIR/mysql/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1; then break; fi
      sleep 0.5
    done
    mariadb --no-defaults -uroot --socket="$DIR/mysql/mysqld.sock" -e "
      CREATE USER IF NOT EXISTS 'evt'@'127.0.0.1' IDENTIFIED BY 'evt';
      GRANT ALL PRIVILEGES ON *.* TO 'evt'@'127.0.0.1' WITH GRANT OPTION;
      CREATE USER IF NOT EXISTS 'evt_tls'@'127.0.0.1' IDENTIFIED BY 'evt_tls' REQUIRE SSL;
      GRANT ALL PRIVILEGES ON *.* TO 'evt_tls'@'127.0.0.1';
      CREATE USER IF NOT EXISTS 'evt_cert'@'127.0.0.1' REQUIRE SUBJECT '/CN=evt_cert';
      GRANT ALL PRIVILEGES ON *.* TO 'evt_cert'@'127.0.0.1';" >/dev/null
  fi
}
my_stop() {
  my_running || return 0
  local pid; pid=$(cat "$DIR/mysql/mysqld.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
}

print_env() {
  echo "export EVT_TEST_PG_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "export EVT_TEST_MYSQL_URL=mysql://evt:evt@127.0.0.1:$MY_PORT/mysql"
  # Servers started before they had TLS have no CA here: the TLS tests then say so.
  if [ -f "$TLS/ca.pem" ]; then echo "export EVT_TEST_DB_CA=$TLS/ca.pem"; fi
}

cmd=${1:-start}; which=${2:-all}
case "$cmd" in
  start)
    case "$which" in pg) pg_start ;; mysql) my_start ;; all) pg_start; my_start ;; esac
    print_env ;;
  stop)
    case "$which" in pg) pg_stop ;; mysql) my_stop ;; all) pg_stop; my_stop ;; esac ;;
  restart)
    case "$which" in pg) pg_stop; pg_start ;; mysql) my_stop; my_start ;; *) echo "restart pg|mysql" >&2; exit 2 ;; esac ;;
  status)
    case "$which" in pg) pg_running ;; mysql) my_running ;; all) pg_running && my_running ;; esac ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|restart|status|env [pg|mysql]" >&2; exit 2 ;;
esac

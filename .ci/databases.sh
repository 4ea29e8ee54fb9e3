#!/usr/bin/env bash
# Starts (or stops/restarts) throw-away PostgreSQL and MariaDB servers on local ports for the
# test suite. Data lives under $EVT_DB_DIR (default: a folder in $TMPDIR); nothing touches the
# system's own database clusters. Prints the URLs the tests read (EVT_TEST_PG_URL,
# EVT_TEST_MYSQL_URL) in `export` form, so `eval "$(.ci/databases.sh start)"` sets them up.
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
    as_user postgres "$PG_BIN/pg_ctl" -D "$data" -w -t 60 -l "$data/server.log" \
      -o "-p $PG_PORT -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start >/dev/null
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
    as_user mysql mariadbd --no-defaults --datadir="$data" --port="$MY_PORT" --bind-address=127.0.0.1 \
      --socket="$DIR/mysql/mysqld.sock" --pid-file="$DIR/mysql/mysqld.pid" \
      --log-error="$DIR/mysql/server.log" --max-connections=300 --innodb-buffer-pool-size=256M \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci >/dev/null 2>&1 &
    for _ in $(seq 1 120); do
      if mariadb --no-defaults -uroot --socket="$DIR/mysql/mysqld.sock" -e 'SELECT 1' >/dev/null 2>&1; then break; fi
      sleep 0.5
    done
    mariadb --no-defaults -uroot --socket="$DIR/mysql/mysqld.sock" -e "
      CREATE USER IF NOT EXISTS 'evt'@'127.0.0.1' IDENTIFIED BY 'evt';
      GRANT ALL PRIVILEGES ON *.* TO 'evt'@'127.0.0.1' WITH GRANT OPTION;" >/dev/null
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

#!/usr/bin/env bash
# A PostgreSQL cluster of the machine's own packages, in a folder, on a loopback port, with no
# password (trust): for CI and for tests that stop and start a real server.
#   throwaway-postgres.sh start DIR PORT   (initdb on first use)
#   throwaway-postgres.sh stop DIR
set -euo pipefail

command=${1:?usage: throwaway-postgres.sh start DIR PORT | stop DIR}
dir=${2:?folder}
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
if [ -z "$bindir" ]; then
  echo "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 1
fi

# initdb and postgres refuse to run as root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
  start)
    port=${3:?port}
    if [ ! -f "$dir/PG_VERSION" ]; then
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres: "$dir"
      as_postgres "$bindir/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    as_postgres "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300" >/dev/null
    ;;
  stop)
    as_postgres "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  *)
    echo "unknown command: $command" >&2
    exit 2
    ;;
esac

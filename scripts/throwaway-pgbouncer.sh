#!/usr/bin/env bash
# PgBouncer from the machine's Debian package, in transaction mode, in front of a PostgreSQL server
# on a loopback port: every database of that server, no password (trust). For CI.
#   throwaway-pgbouncer.sh start DIR PORT SERVER_PORT
#   throwaway-pgbouncer.sh stop DIR
set -euo pipefail

command=${1:?usage: throwaway-pgbouncer.sh start DIR PORT SERVER_PORT | stop DIR}
dir=${2:?folder}
bouncer=$(command -v pgbouncer || ls /usr/sbin/pgbouncer 2>/dev/null || true)
if [ -z "$bouncer" ]; then
  echo "no pgbouncer (apt-get install pgbouncer)" >&2
  exit 1
fi

# PgBouncer refuses to run as root.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$command" in
  start)
    port=${3:?port}
    server_port=${4:?server port}
    mkdir -p "$dir"
    cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=$server_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
max_db_connections = 40
server_reset_query =
# dbmate (lib/pq) sends it; harmless to drop.
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    echo '"postgres" ""' > "$dir/users.txt"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$dir"
    as_postgres "$bouncer" -d "$dir/pgbouncer.ini"
    # Listening once it answers.
    for _ in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then exit 0; fi
      sleep 0.1
    done
    echo "pgbouncer did not start: see $dir/pgbouncer.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/pgbouncer.pid" ]; then kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true; fi
    ;;
  *)
    echo "unknown command: $command" >&2
    exit 2
    ;;
esac

# Sourced by tools/dev (postgres) and bench/postgres.sh: a throwaway PostgreSQL 15
# cluster on loopback. initdb refuses root, so as root the cluster runs as the
# postgres user; its socket lives in its own directory, its port is a free one.
#   pg_init             make it: sets PG_DIR, PG_PORT, PG_CONNINFO
#   pg_start [OPTS]     start it; OPTS are extra server options ("-c fsync=off")
#   pg_stop             stop it (fast)
#   pg_remove           stop it and remove its directory
PG_BIN=/usr/lib/postgresql/15/bin
pg_as=()

pg_init() {
    PG_DIR=$(mktemp -d /tmp/flowy-pg-XXXXXX)
    PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    PG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$PG_DIR"
        pg_as=(runuser -u postgres --)
    fi
    "${pg_as[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U postgres >"$PG_DIR/initdb.log"
}

pg_start() {
    "${pg_as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/log" \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR $*" start >/dev/null
}

pg_stop() {
    "${pg_as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast stop >/dev/null 2>&1 || true
}

pg_remove() {
    [ -n "${PG_DIR:-}" ] || return 0
    pg_stop
    rm -rf "$PG_DIR"
    PG_DIR=
}

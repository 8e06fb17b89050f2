#!/usr/bin/env bash
# The object-store servers the test suite runs every backend against, on loopback only:
#   Azurite 3.35.0   Azure Blob                        127.0.0.1:${LRB_AZURITE_PORT:-10000}
#   moto 5.2.5       S3 (conditional writes made atomic: moto_serial.py) 127.0.0.1:${LRB_MOTO_PORT:-5000}
#   s3s-fs 0.14.1    S3 that checks signatures, on disk 127.0.0.1:${LRB_S3S_PORT:-5002}
# and the databases LightRAG keeps graphs in, from Debian:
#   PostgreSQL 15    KV, doc status, table graph        127.0.0.1:${LRB_PG_PORT:-55432}
# and PostgreSQL 16 with pgvector 0.6 from the PyPI wheel pgserver 0.1.4 (vectors too):
#                                                       127.0.0.1:${LRB_PGVECTOR_PORT:-55433}
#   Redis 7          KV, doc status                     127.0.0.1:${LRB_REDIS_PORT:-56379}
#
#   bash scripts/test-servers.sh install   # idempotent; npm, a venv and cargo install
#   bash scripts/test-servers.sh start     # starts all three, creates the test bucket/container
#   bash scripts/test-servers.sh env       # prints the exports the tests read
#   bash scripts/test-servers.sh stop
#
# Everything lives under $LRB_SERVERS_DIR (default ~/.cache/lightrag-backup-test-servers).
# Each server is started by its own binary so the saved PID is the server's.
set -euo pipefail

DIR=${LRB_SERVERS_DIR:-$HOME/.cache/lightrag-backup-test-servers}
AZURITE_PORT=${LRB_AZURITE_PORT:-10000}
MOTO_PORT=${LRB_MOTO_PORT:-5000}
S3S_PORT=${LRB_S3S_PORT:-5002}
PG_PORT=${LRB_PG_PORT:-55432}
REDIS_PORT=${LRB_REDIS_PORT:-56379}
# PostgreSQL runs as the postgres user, which cannot enter root's home: its data lives here.
PG_DIR=${LRB_PG_DIR:-/var/tmp/lightrag-backup-test-pg}
PG_BIN=${LRB_PG_BIN:-/usr/lib/postgresql/15/bin}
PGVECTOR_PORT=${LRB_PGVECTOR_PORT:-55433}
PGVECTOR_DIR=${LRB_PGVECTOR_DIR:-/var/tmp/lightrag-backup-test-pgvector}
# The wheel's binaries find their libraries relative to themselves (../../../pgserver.libs).
PGVECTOR_BIN=$PGVECTOR_DIR/site/pgserver/pginstall/bin
BUCKET=lrb-test
CONTAINER=lrb-test
# s3s-fs checks signatures against these (test-only credentials).
S3S_KEY=lrb-test-access-key
S3S_SECRET=lrb-test-secret-key
PYTHON=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")" && pwd)

install() {
    mkdir -p "$DIR"
    if [ ! -x "$PG_BIN/initdb" ] || ! command -v redis-server >/dev/null; then
        echo "== installing PostgreSQL 15 and Redis (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 redis-server >/dev/null
    fi
    if [ ! -x "$PGVECTOR_BIN/postgres" ]; then
        echo "== installing PostgreSQL 16 + pgvector (the pgserver 0.1.4 wheel) for the postgres user"
        rm -rf "$DIR/pgserver-site"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps \
            --target "$DIR/pgserver-site" pgserver==0.1.4
        mkdir -p "$PGVECTOR_DIR/site"
        cp -r "$DIR/pgserver-site/pgserver" "$DIR/pgserver-site/pgserver.libs" "$PGVECTOR_DIR/site/"
    fi
    if [ ! -x "$DIR/node_modules/.bin/azurite-blob" ]; then
        echo "== installing Azurite 3.35.0 (npm)"
        (cd "$DIR" && npm install --no-audit --no-fund --silent azurite@3.35.0 >/dev/null)
    fi
    if [ ! -x "$DIR/moto/bin/moto_server" ]; then
        echo "== installing moto 5.2.5 in its own venv"
        "$PYTHON" -m venv "$DIR/moto"
        "$DIR/moto/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
    fi
    if [ ! -x "$DIR/bin/s3s-fs" ]; then
        echo "== installing s3s-fs 0.14.1 (cargo)"
        cargo install --quiet --locked --root "$DIR" s3s-fs@0.14.1 --features binary
    fi
}

wait_port() { # name port pid
    for _ in $(seq 1 150); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && kill -0 "$3" 2>/dev/null; then return 0; fi
        if ! kill -0 "$3" 2>/dev/null; then
            echo "$1 exited; its log:" >&2
            cat "$DIR/$1.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$1 did not listen on 127.0.0.1:$2 within 15 s" >&2
    return 1
}

start_one() { # name port command...
    local name=$1 port=$2
    shift 2
    if [ -f "$DIR/$name.pid" ] && kill -0 "$(cat "$DIR/$name.pid")" 2>/dev/null; then
        return 0
    fi
    # Another process on the port would answer in our server's place: refuse.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "127.0.0.1:$port is already in use (not by this script's $name); stop that process or pick another port (LRB_*_PORT)" >&2
        return 1
    fi
    "$@" >"$DIR/$name.log" 2>&1 &
    echo $! >"$DIR/$name.pid"
    wait_port "$name" "$port" "$!"
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

start_postgres() { # name dir bin port
    local name=$1 dir=$2 bin=$3 port=$4
    if [ -f "$dir/data/postmaster.pid" ] && as_postgres "$bin/pg_ctl -D $dir/data status" >/dev/null 2>&1; then
        return 0
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "127.0.0.1:$port is already in use (not by this script's $name); pick another port (LRB_*_PORT)" >&2
        return 1
    fi
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; fi
    chmod 700 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_postgres "$bin/initdb -D $dir/data -U postgres --auth=trust -E UTF8 >$dir/initdb.log 2>&1"
    fi
    # Test data only: fsync off keeps the many small LightRAG commits fast on a shared disk.
    as_postgres "$bin/pg_ctl -D $dir/data -l $dir/server.log -w -t 60 \
        -o '-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200' start" >/dev/null
}

stop_postgres() { # dir bin
    if [ -f "$1/data/postmaster.pid" ]; then
        as_postgres "$2/pg_ctl -D $1/data -m fast -w stop" >/dev/null 2>&1 || true
    fi
}

start() {
    install
    mkdir -p "$DIR/azurite-data" "$DIR/s3s-data/$BUCKET"
    start_one azurite "$AZURITE_PORT" "$DIR/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$AZURITE_PORT" --location "$DIR/azurite-data" \
        --skipApiVersionCheck --loose --disableTelemetry --silent
    # moto's conditional writes are check-then-write: served one request at a time (see the script).
    start_one moto "$MOTO_PORT" "$DIR/moto/bin/python" "$HERE/moto_serial.py" 127.0.0.1 "$MOTO_PORT"
    start_one s3s "$S3S_PORT" "$DIR/bin/s3s-fs" --host 127.0.0.1 --port "$S3S_PORT" \
        --access-key "$S3S_KEY" --secret-key "$S3S_SECRET" "$DIR/s3s-data"
    start_one redis "$REDIS_PORT" redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR" \
        --save "" --appendonly no --daemonize no
    start_postgres PostgreSQL "$PG_DIR" "$PG_BIN" "$PG_PORT"
    start_postgres "PostgreSQL with pgvector" "$PGVECTOR_DIR" "$PGVECTOR_BIN" "$PGVECTOR_PORT"
    PGOPTIONS="-c client_min_messages=warning" "$PGVECTOR_BIN/psql" -h 127.0.0.1 -p "$PGVECTOR_PORT" -U postgres \
        -v ON_ERROR_STOP=1 -q -c "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    # The test bucket and container (creating an existing one is fine).
    curl -sS -o /dev/null -X PUT "http://127.0.0.1:$MOTO_PORT/$BUCKET"
    "$PYTHON" "$HERE/azurite_container.py" "http://127.0.0.1:$AZURITE_PORT" "$CONTAINER"
    echo "== test servers up: Azurite :$AZURITE_PORT, moto :$MOTO_PORT, s3s-fs :$S3S_PORT, PostgreSQL :$PG_PORT, pgvector :$PGVECTOR_PORT, Redis :$REDIS_PORT"
}

stop() {
    stop_postgres "$PG_DIR" "$PG_BIN"
    stop_postgres "$PGVECTOR_DIR" "$PGVECTOR_BIN"
    for name in azurite moto s3s redis; do
        if [ -f "$DIR/$name.pid" ]; then
            kill "$(cat "$DIR/$name.pid")" 2>/dev/null || true
            rm -f "$DIR/$name.pid"
        fi
    done
}

env_exports() {
    cat <<EOF
export LRB_TEST_S3_ENDPOINT=http://127.0.0.1:$MOTO_PORT
export LRB_TEST_S3_BUCKET=$BUCKET
export LRB_TEST_S3S_ENDPOINT=http://127.0.0.1:$S3S_PORT
export LRB_TEST_S3S_BUCKET=$BUCKET
export LRB_TEST_S3S_KEY=$S3S_KEY
export LRB_TEST_S3S_SECRET=$S3S_SECRET
export LRB_TEST_S3S_BIN=$DIR/bin/s3s-fs
export LRB_TEST_S3S_DATA=$DIR/s3s-data
export LRB_TEST_AZURITE_ENDPOINT=http://127.0.0.1:$AZURITE_PORT
export LRB_TEST_AZURITE_CONTAINER=$CONTAINER
export LRB_TEST_AZURITE_DATA=$DIR/azurite-data
export LRB_TEST_AZURITE_BIN=$DIR/node_modules/.bin/azurite-blob
export LRB_TEST_MOTO_BIN=$DIR/moto/bin/moto_server
export LRB_TEST_MOTO_LOG=$DIR/moto.log
export LRB_TEST_PG_HOST=127.0.0.1
export LRB_TEST_PG_PORT=$PG_PORT
export LRB_TEST_PG_USER=postgres
export LRB_TEST_PG_BIN=$PG_BIN
export LRB_TEST_PGVECTOR_PORT=$PGVECTOR_PORT
export LRB_TEST_PGVECTOR_PG_DUMP=$PGVECTOR_BIN/pg_dump
export LRB_TEST_REDIS_URI=redis://127.0.0.1:$REDIS_PORT
export LRB_TEST_REDIS_BIN=$(command -v redis-server || echo redis-server)
EOF
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
env) env_exports ;;
*)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# bench/stream.sh: how far `walvault stream` trails a primary under full
# pgbench load, into a local MinIO. This is a benchmark, not a test: it fails
# only when a tool fails, never on a missed target.
#
# Usage (as root, from anywhere):
#   bench/stream.sh                   # pgbench -c 4 -j 2 -T 60 at scale 10
#   DURATION=20 bench/stream.sh       # quick run
#
# Knobs (environment):
#   SCALE=10            pgbench -i scale
#   DURATION=60         pgbench -T seconds (the sampling window)
#   CLIENTS=4 JOBS=2    pgbench -c / -j
#   INTERVAL=250ms      flush LSN sampling interval
#   POLL=50ms           /metrics scraping interval (the lag's resolution)
#   STREAM_ARGS=        more walvault stream flags (e.g. --synchronous, --partial-interval 500ms)
#   BENCH_DIR=          working directory (default: mktemp -d /tmp/walvault-stream-bench.XXXXXX);
#                       removed at the end unless KEEP=1
#   KEEP=0              1 keeps BENCH_DIR (data, logs, samples.csv)
#   WALVAULT_BIN=       use this walvault binary instead of building ./cmd/walvault
#   PGBIN=/usr/lib/postgresql/15/bin
#   WALVAULT_MINIO_BIN=$HOME/.cache/walvault/bin/minio
#
# What runs: PostgreSQL 15 (initdb defaults plus wal_level=replica,
# archive_mode=off) on 127.0.0.1 as the postgres user; MinIO on 127.0.0.1 with
# random credentials; `walvault stream --create-slot` with its defaults
# (--partial-interval 1s, zstd level 1, age X25519) and --metrics-addr; and
# bench/streamlag, which samples pg_current_wal_flush_lsn() every INTERVAL and
# walvault_stream_uploaded_lsn_bytes every POLL, then prints the WAL
# throughput generated and uploaded and, for each flush sample, the time until
# the repository held it (median, p90, p99, max). All on the same machine:
# pgbench, PostgreSQL, the streamer and MinIO share its cores.
set -euo pipefail

SCALE=${SCALE:-10}
DURATION=${DURATION:-60}
CLIENTS=${CLIENTS:-4}
JOBS=${JOBS:-2}
INTERVAL=${INTERVAL:-250ms}
POLL=${POLL:-50ms}
STREAM_ARGS=${STREAM_ARGS:-}
KEEP=${KEEP:-0}
WALVAULT_BIN=${WALVAULT_BIN:-}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
MINIO_BIN=${WALVAULT_MINIO_BIN:-$HOME/.cache/walvault/bin/minio}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL runs as postgres through runuser)"
[[ $SCALE =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ && $CLIENTS =~ ^[1-9][0-9]*$ && $JOBS =~ ^[1-9][0-9]*$ ]] ||
	die "SCALE, DURATION, CLIENTS and JOBS must be positive integers"
[[ -x $PGBIN/postgres ]] || die "no PostgreSQL in $PGBIN"
[[ -x $MINIO_BIN ]] || die "no MinIO binary at $MINIO_BIN (set WALVAULT_MINIO_BIN)"
id postgres >/dev/null 2>&1 || die "no postgres user"

if [[ -z ${BENCH_DIR:-} ]]; then
	BENCH_DIR=$(mktemp -d /tmp/walvault-stream-bench.XXXXXX)
else
	[[ ! -e $BENCH_DIR || -z $(ls -A "$BENCH_DIR") ]] || die "BENCH_DIR=$BENCH_DIR is not empty"
	mkdir -p "$BENCH_DIR"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fi
chmod 755 "$BENCH_DIR"
PGDATA=$BENCH_DIR/pgdata
SOCK=$BENCH_DIR/sock
LOGS=$BENCH_DIR/logs
SPOOL=$BENCH_DIR/spool
KEYS=$BENCH_DIR/keys
mkdir -p "$PGDATA" "$SOCK" "$LOGS" "$SPOOL" "$KEYS" "$BENCH_DIR/bin"
chown postgres: "$PGDATA" "$SOCK" "$LOGS" "$SPOOL" "$KEYS"
chmod 700 "$PGDATA" "$SPOOL" "$KEYS"

PG_STARTED=0
MINIO_PID=
STREAM_PID=
LAG_PID=
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	[[ -n $LAG_PID ]] && kill "$LAG_PID" 2>/dev/null && wait "$LAG_PID" 2>/dev/null
	if [[ -n $STREAM_PID ]]; then
		kill -TERM "$STREAM_PID" 2>/dev/null
		wait "$STREAM_PID" 2>/dev/null
	fi
	if ((PG_STARTED)); then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1
	fi
	if [[ -n $MINIO_PID ]]; then
		kill "$MINIO_PID" 2>/dev/null
		wait "$MINIO_PID" 2>/dev/null
	fi
	if [[ $KEEP == 1 ]]; then
		log "kept $BENCH_DIR"
	else
		rm -rf "$BENCH_DIR"
	fi
	((rc == 0)) || log "FAILED (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_pg() { runuser -u postgres -- "$@"; }
sql() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PGPORT" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return; }
	done
}
randhex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

log "bench dir $BENCH_DIR; SCALE=$SCALE, pgbench -c $CLIENTS -j $JOBS -T $DURATION"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# Binaries: walvault, the bucket helper and the sampler.
WV=$BENCH_DIR/bin/walvault
if [[ -n $WALVAULT_BIN ]]; then
	install -m 755 "$WALVAULT_BIN" "$WV"
else
	log "building walvault, bench/mkbucket and bench/streamlag"
	(cd "$SRC" && go build -o "$WV" ./cmd/walvault) >"$LOGS/build.log" 2>&1 ||
		die "walvault does not build: $(tail -n 5 "$LOGS/build.log")"
fi
(cd "$SRC" && go build -o "$BENCH_DIR/bin/mkbucket" ./bench/mkbucket && go build -o "$BENCH_DIR/bin/streamlag" ./bench/streamlag) \
	>>"$LOGS/build.log" 2>&1 || die "bench helpers do not build: $(tail -n 5 "$LOGS/build.log")"
chmod 755 "$BENCH_DIR/bin" "$WV"
WV_VERSION=$("$WV" --version 2>/dev/null | head -n1 || echo unknown)

# ---------------------------------------------------------------------------
# MinIO and the bucket.
MINIO_PORT=$(free_port)
MINIO_CPORT=$(free_port)
MINIO_USER=bench$(randhex 6)
MINIO_PASS=$(randhex 20)
mkdir -p "$BENCH_DIR/minio/data" "$BENCH_DIR/minio/certs"
log "MinIO on 127.0.0.1:$MINIO_PORT"
env -i PATH=/usr/bin:/bin HOME="$BENCH_DIR/minio" MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASS" \
	MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=us-east-1 \
	"$MINIO_BIN" server "$BENCH_DIR/minio/data" --address "127.0.0.1:$MINIO_PORT" \
	--console-address "127.0.0.1:$MINIO_CPORT" --certs-dir "$BENCH_DIR/minio/certs" \
	>"$LOGS/minio.log" 2>&1 &
MINIO_PID=$!
MKBUCKET_ENDPOINT=127.0.0.1:$MINIO_PORT AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASS \
	"$BENCH_DIR/bin/mkbucket" walvault-bench || { tail "$LOGS/minio.log"; die "could not create the bucket"; }

# ---------------------------------------------------------------------------
# PostgreSQL: replication on, archiving off (the stream carries the WAL).
PGPORT=$(free_port)
log "PostgreSQL on 127.0.0.1:$PGPORT"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$LOGS/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -n 5 "$LOGS/initdb.log")"
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCK'
wal_level = replica
archive_mode = off
max_wal_senders = 4
max_wal_size = 4GB
shared_buffers = 256MB
log_line_prefix = '%m [%p] '
log_checkpoints = on
EOF
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgresql.log" -w -t 120 start >/dev/null ||
	die "PostgreSQL did not start: $(tail -n 5 "$LOGS/postgresql.log")"
PG_STARTED=1

# walvault's settings: the repository in MinIO, encrypted to a fresh key.
as_pg "$WV" keygen "$KEYS/identity.txt" >"$BENCH_DIR/recipient.txt" 2>"$LOGS/keygen.log" ||
	die "walvault keygen failed: $(cat "$LOGS/keygen.log")"
as_pg "$WV" writer issue --age-identity-file "$KEYS/identity.txt" --name bench "$KEYS/writer.key" >>"$LOGS/keygen.log" 2>&1 ||
	die "walvault writer issue failed: $(cat "$LOGS/keygen.log")"
WVENV=(
	"WALVAULT_WRITER_KEY_FILE=$KEYS/writer.key"
	"WALVAULT_REPO=s3://walvault-bench/stream"
	"WALVAULT_S3_ENDPOINT=http://127.0.0.1:$MINIO_PORT"
	"WALVAULT_S3_PATH_STYLE=true"
	"WALVAULT_S3_REGION=us-east-1"
	"AWS_ACCESS_KEY_ID=$MINIO_USER"
	"AWS_SECRET_ACCESS_KEY=$MINIO_PASS"
	"WALVAULT_AGE_RECIPIENTS=$(cat "$BENCH_DIR/recipient.txt")"
	"PGHOST=127.0.0.1" "PGPORT=$PGPORT" "PGUSER=postgres" "PGDATABASE=postgres" "PGSSLMODE=disable"
)
wv() { as_pg env -i PATH=/usr/bin:/bin HOME="$KEYS" "${WVENV[@]}" "$WV" "$@"; }
wv init >"$LOGS/init.log" 2>&1 || die "walvault init failed: $(tail -n 5 "$LOGS/init.log")"

log "pgbench -i -s $SCALE"
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -i -q -s "$SCALE" postgres >"$LOGS/pgbench-init.log" 2>&1 ||
	die "pgbench -i failed: $(tail -n 5 "$LOGS/pgbench-init.log")"
sql "CHECKPOINT" >/dev/null

# ---------------------------------------------------------------------------
# The streamer.
METRICS_PORT=$(free_port)
log "walvault stream --create-slot --metrics-addr 127.0.0.1:$METRICS_PORT $STREAM_ARGS"
# shellcheck disable=SC2086 # STREAM_ARGS is a list of flags
# setpriv execs (runuser would stay the parent and turn SIGTERM into exit 143).
setpriv --reuid=postgres --regid=postgres --init-groups env -i PATH=/usr/bin:/bin HOME="$KEYS" "${WVENV[@]}" \
	"$WV" stream --spool "$SPOOL" --create-slot --metrics-addr "127.0.0.1:$METRICS_PORT" $STREAM_ARGS >"$LOGS/stream.log" 2>&1 &
STREAM_PID=$!
for ((i = 0; i < 240; i++)); do
	kill -0 "$STREAM_PID" 2>/dev/null || die "walvault stream exited: $(tail -n 5 "$LOGS/stream.log")"
	grep -q 'msg=streaming' "$LOGS/stream.log" && break
	sleep 0.25
done
grep -q 'msg=streaming' "$LOGS/stream.log" || die "walvault stream does not stream after 60 s: $(tail -n 5 "$LOGS/stream.log")"
# Wait for a first upload (the uploaded LSN is unknown until then).
sql "CREATE TABLE streambench_warmup AS SELECT 1 AS x" >/dev/null
for ((i = 0; i < 240; i++)); do
	curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" 2>/dev/null | grep -q '^walvault_stream_uploaded_lsn_bytes ' && break
	sleep 0.25
done

# ---------------------------------------------------------------------------
# The load and the sampler.
log "sampling for ${DURATION}s under pgbench -c $CLIENTS -j $JOBS"
"$BENCH_DIR/bin/streamlag" -pg-url "postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable" \
	-metrics "http://127.0.0.1:$METRICS_PORT/metrics" -interval "$INTERVAL" -poll "$POLL" \
	-duration "${DURATION}s" -drain 120s -csv "$BENCH_DIR/samples.csv" >"$BENCH_DIR/streamlag.out" 2>&1 &
LAG_PID=$!
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -n -c "$CLIENTS" -j "$JOBS" -T "$DURATION" postgres \
	>"$LOGS/pgbench.log" 2>&1 || die "pgbench failed: $(tail -n 5 "$LOGS/pgbench.log")"
rc=0
wait "$LAG_PID" || rc=$?
LAG_PID=
((rc == 0)) || die "streamlag failed: $(cat "$BENCH_DIR/streamlag.out")"

METRICS=$(curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" || true)
metric() { awk -v n="$1" '$1 == n { print $2 }' <<<"$METRICS"; }
kill -TERM "$STREAM_PID"
rc=0
wait "$STREAM_PID" || rc=$?
STREAM_PID=
((rc == 0)) || die "walvault stream exited $rc on SIGTERM: $(tail -n 5 "$LOGS/stream.log")"

# ---------------------------------------------------------------------------
TPS=$(awk -F'= ' '/^tps/ { split($2, a, " "); print a[1] }' "$LOGS/pgbench.log")
echo
echo "## walvault stream: lag behind the primary under pgbench load"
echo
echo "$WV_VERSION; PostgreSQL $("$PGBIN/postgres" --version | awk '{ print $3 }'); MinIO on 127.0.0.1; $(nproc) CPUs;"
echo "load average before $LOAD_START, after $(cut -d' ' -f1-3 /proc/loadavg)."
echo "pgbench -s $SCALE -c $CLIENTS -j $JOBS -T $DURATION: ${TPS:-?} tps. walvault stream ${STREAM_ARGS:-with its defaults}."
echo
sed 's/^/    /' "$BENCH_DIR/streamlag.out"
echo
echo "    streamer counters: $(metric walvault_stream_uploads_total) uploads, $(metric walvault_stream_upload_retries_total) retries," \
	"$(metric walvault_stream_upload_errors_total) errors, $(metric walvault_stream_reconnects_total) reconnects"
echo "    streamer warnings/errors logged: $(grep -c 'level=WARN\|level=ERROR' "$LOGS/stream.log" || true)"

#!/usr/bin/env bash
# bench/dbcopy.sh: how long `walvault restore --database` takes to bring one
# pgbench database back beside the live one: a base backup, LOAD seconds of
# pgbench while archive_command ships WAL, rows deleted "by mistake", then
# restore --database bench --target-time <before the delete> --into <the
# same running server>. A benchmark, not a test: it fails only when a tool
# fails.
#
# Usage (as root, from the repository):
#   bench/dbcopy.sh                 # SCALE=20: ~320 MB
#   SCALE=70 LOAD=60 bench/dbcopy.sh
#
# Knobs: SCALE=20, LOAD=20 (seconds of pgbench -c 2 after the backup),
# PGBIN=/usr/lib/postgresql/15/bin, WALVAULT_BIN= (default: go build),
# KEEP=0 (1 keeps the working directory).
set -euo pipefail

SCALE=${SCALE:-20}
LOAD=${LOAD:-20}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d /tmp/walvault-bench-dbcopy.XXXXXX)
chmod 755 "$DIR"
chown postgres: "$DIR"
PGDATA=$DIR/pg
PG_STARTED=0

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	((PG_STARTED)) && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
	if [[ $KEEP == 1 ]]; then log "kept $DIR"; else rm -rf "$DIR"; fi
	((rc == 0)) || log "FAILED (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
as_pg() { runuser -u postgres -- "$@"; }
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return; }
	done
}
field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2- | tr -d '"'; }

WV=${WALVAULT_BIN:-$DIR/walvault}
if [[ -z ${WALVAULT_BIN:-} ]]; then
	log "building walvault"
	(cd "$SRC" && go build -o "$WV" ./cmd/walvault)
fi
chmod 755 "$WV"

as_pg "$WV" keygen "$DIR/key.txt" >"$DIR/recipient"
export WALVAULT_REPO=file://$DIR/repo WALVAULT_AGE_RECIPIENTS=$(cat "$DIR/recipient") WALVAULT_AGE_IDENTITY_FILE=$DIR/key.txt
PORT=$(free_port)
log "PostgreSQL on 127.0.0.1:$PORT, pgbench scale $SCALE"
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust --data-checksums >/dev/null
cat >>"$PGDATA/postgresql.conf" <<CONF
port = $PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
wal_level = replica
archive_mode = on
archive_command = '$WV wal-push %p'
track_commit_timestamp = on
CONF
as_pg env WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$WALVAULT_AGE_RECIPIENTS" \
	"$PGBIN/pg_ctl" -D "$PGDATA" -l "$DIR/pg.log" -w start >/dev/null
PG_STARTED=1
# walvault as the server's user, which archive_command runs as too.
wv_pg() {
	as_pg env WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$WALVAULT_AGE_RECIPIENTS" \
		PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres "$WV" "$@"
}
wv_pg init >/dev/null 2>&1
as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" -U postgres bench
as_pg "$PGBIN/createdb" -h "$DIR" -p "$PORT" -U postgres other
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -q -s "$SCALE" bench >/dev/null 2>&1
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -q -s 1 other >/dev/null 2>&1
log "base backup"
wv_pg backup --fast >/dev/null 2>&1
log "pgbench -c 2 for ${LOAD}s"
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -c 2 -T "$LOAD" bench >/dev/null 2>&1
sleep 1
psql() { as_pg "$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -XAtq "$@"; }
TARGET=$(psql -d bench -c "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
ACCOUNTS=$(psql -d bench -c "SELECT count(*) FROM pgbench_accounts")
sleep 1
psql -d bench -c "DELETE FROM pgbench_accounts WHERE aid <= 100000"
psql -d postgres -c "SELECT pg_switch_wal()" >/dev/null
sleep 3
log "restore --database bench --target-time $TARGET (accounts then: $ACCOUNTS)"
START=$(date +%s.%N)
wv_pg restore --database bench --target-time "$TARGET" --into "host=$DIR port=$PORT user=postgres dbname=postgres" \
	--as bench_restored --scratch "$DIR" --no-progress 2>"$DIR/restore.log"
END=$(date +%s.%N)
GOT=$(psql -d bench_restored -c "SELECT count(*) FROM pgbench_accounts")
LIVE=$(psql -d bench -c "SELECT count(*) FROM pgbench_accounts")
SIZE=$(psql -d bench_restored -c "SELECT pg_size_pretty(pg_database_size('bench_restored'))")
printf 'restore --database: %.1f s wall; copy %s; accounts in the copy %s (at the target %s), live %s\n' \
	"$(echo "$END - $START" | bc)" "$SIZE" "$GOT" "$ACCOUNTS" "$LIVE"
[[ $GOT == "$ACCOUNTS" ]] || { log "the copy does not hold the accounts of the target"; exit 1; }

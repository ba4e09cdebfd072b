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
BENCH_NAME=dbcopy
# shellcheck source=bench/pgsetup.sh
. "$(dirname "$0")/pgsetup.sh"
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

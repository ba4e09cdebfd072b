#!/usr/bin/env bash
# bench/drill.sh: how long a restore drill takes (RTO) and what it would lose
# (RPO) on a pgbench database: a base backup, LOAD seconds of pgbench while
# archive_command ships WAL, then `walvault drill` to the latest point and to
# a random point. A benchmark, not a test: it fails only when a tool fails.
#
# Usage (as root, from the repository):
#   bench/drill.sh                 # SCALE=20: ~320 MB
#   SCALE=70 LOAD=60 bench/drill.sh
#
# Knobs: SCALE=20, LOAD=20 (seconds of pgbench -c 2 after the backup),
# PGBIN=/usr/lib/postgresql/15/bin, WALVAULT_BIN= (default: go build),
# KEEP=0 (1 keeps the working directory).
BENCH_NAME=drill
# shellcheck source=bench/pgsetup.sh
. "$(dirname "$0")/pgsetup.sh"
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -q -s "$SCALE" postgres >/dev/null 2>&1
wv_pg backup --fast >/dev/null 2>&1
log "pgbench -c 2 for $LOAD s"
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -n -c 2 -T "$LOAD" postgres 2>/dev/null | grep '^tps' >&2
as_pg "$PGBIN/psql" -h "$DIR" -p "$PORT" -U postgres -XAtqc "SELECT pg_switch_wal()" >/dev/null
sleep 2
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
PG_STARTED=0
"$WV" info 2>/dev/null | tail -2 >&2

for mode in latest random; do
	args=(drill --json)
	[[ $mode == random ]] && args+=(--random-point)
	start=$EPOCHREALTIME
	out=$("$WV" "${args[@]}" 2>"$DIR/drill-$mode.log")
	end=$EPOCHREALTIME
	printf '%-7s passed=%s rto=%ss rpo=%ss target=%s whole=%ss\n' "$mode" "$(field passed <<<"$out")" \
		"$(field rto_seconds <<<"$out")" "$(field rpo_seconds <<<"$out")" "$(field target <<<"$out")" \
		"$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); command: SCALE=$SCALE LOAD=$LOAD bench/drill.sh"

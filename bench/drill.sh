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
set -euo pipefail

SCALE=${SCALE:-20}
LOAD=${LOAD:-20}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d /tmp/walvault-bench-drill.XXXXXX)
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

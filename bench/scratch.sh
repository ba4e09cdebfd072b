# bench/scratch.sh, sourced by bench/pgsetup.sh and bench/filestore.sh: the
# working directory of one benchmark run (/tmp/walvault-bench-$BENCH_NAME.*,
# removed at the end unless KEEP=1) and the cleanup that stops what the run
# started there: a PostgreSQL cluster in $PGDATA once PG_STARTED=1, a MinIO
# once MINIO_PID is set. Also log, as_pg and free_port. Set BENCH_NAME first.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d "/tmp/walvault-bench-$BENCH_NAME.XXXXXX")
chmod 755 "$DIR"
chown postgres: "$DIR"
PGDATA=$DIR/pg
PG_STARTED=0
MINIO_PID=

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	((PG_STARTED)) && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
	if [[ -n $MINIO_PID ]]; then kill "$MINIO_PID" 2>/dev/null; wait "$MINIO_PID" 2>/dev/null; fi
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

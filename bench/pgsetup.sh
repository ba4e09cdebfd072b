# bench/pgsetup.sh, sourced by bench/drill.sh and bench/dbcopy.sh: a scratch
# directory, a PostgreSQL cluster on a free port of 127.0.0.1 archiving with
# walvault wal-push into a fresh directory repository, and the helpers the
# scripts share (log, as_pg, wv_pg, field). Set BENCH_NAME first; SCALE,
# LOAD, PGBIN, KEEP and WALVAULT_BIN are the callers' knobs.
set -euo pipefail

SCALE=${SCALE:-20}
LOAD=${LOAD:-20}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
KEEP=${KEEP:-0}
SRC=$(cd "$(dirname "$0")/.." && pwd)
DIR=$(mktemp -d "/tmp/walvault-bench-$BENCH_NAME.XXXXXX")
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

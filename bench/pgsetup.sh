# bench/pgsetup.sh, sourced by bench/drill.sh and bench/dbcopy.sh: a scratch
# directory (bench/scratch.sh), a PostgreSQL cluster on a free port of 127.0.0.1 archiving with
# walvault wal-push into a fresh directory repository, and the helpers the
# scripts share (log, as_pg, wv_pg, field). Set BENCH_NAME first; SCALE,
# LOAD, PGBIN, KEEP and WALVAULT_BIN are the callers' knobs.
SCALE=${SCALE:-20}
LOAD=${LOAD:-20}
# shellcheck source=bench/scratch.sh
. "$(dirname "$0")/scratch.sh"
field() { grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2- | tr -d '"'; }

WV=${WALVAULT_BIN:-$DIR/walvault}
if [[ -z ${WALVAULT_BIN:-} ]]; then
	log "building walvault"
	(cd "$SRC" && go build -o "$WV" ./cmd/walvault)
fi
chmod 755 "$WV"

as_pg "$WV" keygen "$DIR/key.txt" >"$DIR/recipient" 2>/dev/null
# A writer key signs what postgres writes (format 2).
as_pg "$WV" writer issue --age-identity-file "$DIR/key.txt" --name bench "$DIR/writer.key" >/dev/null
export WALVAULT_REPO=file://$DIR/repo WALVAULT_AGE_RECIPIENTS=$(cat "$DIR/recipient") WALVAULT_AGE_IDENTITY_FILE=$DIR/key.txt \
	WALVAULT_WRITER_KEY_FILE=$DIR/writer.key
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
as_pg env WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$WALVAULT_AGE_RECIPIENTS" WALVAULT_WRITER_KEY_FILE="$WALVAULT_WRITER_KEY_FILE" \
	"$PGBIN/pg_ctl" -D "$PGDATA" -l "$DIR/pg.log" -w start >/dev/null
PG_STARTED=1
# walvault as the server's user, which archive_command runs as too.
wv_pg() {
	as_pg env WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$WALVAULT_AGE_RECIPIENTS" WALVAULT_WRITER_KEY_FILE="$WALVAULT_WRITER_KEY_FILE" \
		PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres "$WV" "$@"
}
wv_pg init >/dev/null 2>&1

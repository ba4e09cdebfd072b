#!/usr/bin/env bash
# A real archive -> backup -> restore cycle on a local directory repository:
# builds walvault, creates a throwaway PostgreSQL cluster, archives its WAL,
# takes a base backup, writes rows, destroys the cluster, restores it to a
# moment between two commits and shows that exactly the rows committed before
# that moment came back. Needs Go; on Debian, run as root, it installs the
# PostgreSQL server (apt-get install postgresql) when none is found. Runs
# PostgreSQL as the `postgres` user when started as root. Everything lives
# in one temp dir, removed at the end (KEEP=1 keeps it).
set -euo pipefail
export PATH="/usr/local/go/bin:${PATH}"

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
PGBIN=${PGBIN:-$(find_pgbin)}
if [ ! -x "$PGBIN/initdb" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	echo "== installing PostgreSQL (apt-get install postgresql)"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >/dev/null
	PGBIN=$(find_pgbin)
fi
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found; set PGBIN or apt-get install postgresql" >&2; exit 1; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/walvault-quickstart.XXXXXX)
chmod 0755 "$WORK"
PORT=${PORT:-54329}

as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- env "$@"; else env "$@"; fi
}
cleanup() {
	as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true
	as_pg "$PGBIN/pg_ctl" -D "$WORK/restored" -m immediate stop >/dev/null 2>&1 || true
	[ "${KEEP:-}" = 1 ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

echo "== build"
(cd "$ROOT" && go build -o "$WORK/walvault" ./cmd/walvault)
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"

export WALVAULT_REPO="file://$WORK/repo"
export WALVAULT_AGE_IDENTITY_FILE="$WORK/key.txt"
export PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres PGDATABASE=postgres
WV="$WORK/walvault"

echo "== key and cluster"
RCPT=$(as_pg "$WV" keygen "$WORK/key.txt")
export WALVAULT_AGE_RECIPIENTS="$RCPT"
# The writer key signs what postgres writes: the repository is format 2.
as_pg "$WV" writer issue --age-identity-file "$WORK/key.txt" --name quickstart "$WORK/writer.key" >/dev/null
export WALVAULT_WRITER_KEY_FILE="$WORK/writer.key"
echo "recipient: $RCPT"
as_pg "$PGBIN/initdb" -D "$WORK/data" -U postgres --data-checksums >/dev/null
cat >> "$WORK/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$WORK'
port = $PORT
wal_level = replica
archive_mode = on
archive_command = '$WV wal-push %p'
track_commit_timestamp = on
CONF
as_pg WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$RCPT" "$PGBIN/pg_ctl" -D "$WORK/data" -l "$WORK/data.log" -w start >/dev/null

echo "== init and backup"
as_pg WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$RCPT" PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres "$WV" init
psql() { as_pg PGHOST="$WORK" PGPORT="$PORT" "$PGBIN/psql" -U postgres -d postgres -XAtq "$@"; }
psql -c "CREATE TABLE invoices(id int primary key, amount numeric)"
as_pg PGHOST="$WORK" PGPORT="$PORT" "$PGBIN/pgbench" -U postgres -i -s 2 -q postgres
as_pg WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_RECIPIENTS="$RCPT" PGHOST="$WORK" PGPORT="$PORT" PGUSER=postgres "$WV" backup --fast

echo "== commits"
for i in 1 2 3 4 5 6; do
	psql -c "INSERT INTO invoices VALUES ($i, $i * 100)"
	sleep 0.3
done
T=$(psql -c "SELECT pg_xact_commit_timestamp(xmin) + (pg_xact_commit_timestamp((SELECT xmin FROM invoices WHERE id=4)) - pg_xact_commit_timestamp(xmin)) / 2 FROM invoices WHERE id = 3")
echo "target: between invoice 3 and invoice 4: $T"
psql -c "SELECT pg_switch_wal()" >/dev/null
LAST=$(psql -c "SELECT pg_walfile_name(pg_current_wal_lsn() - 1)")
for _ in $(seq 60); do
	[ "$(psql -c "SELECT last_archived_wal FROM pg_stat_archiver")" \> "$LAST" ] || [ "$(psql -c "SELECT last_archived_wal FROM pg_stat_archiver")" = "$LAST" ] && break
	sleep 0.5
done

echo "== disaster: stop the server and delete its data directory"
as_pg "$PGBIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null
rm -rf "$WORK/data"

echo "== info"
"$WV" info

echo "== restore to $T"
"$WV" restore --pgdata "$WORK/restored" --target-time "$T" --target-action promote
sed -i "s/^port = .*/port = $PORT/; s/^archive_mode = .*/archive_mode = off/" "$WORK/restored/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$WORK/restored" -l "$WORK/restored.log" -w -t 120 start >/dev/null
for _ in $(seq 120); do
	[ "$(psql -c 'SELECT pg_is_in_recovery()')" = f ] && break
	sleep 0.5
done
GOT=$(psql -c "SELECT string_agg(id::text, ',' ORDER BY id) FROM invoices")
echo "invoices after restore: $GOT (expected 1,2,3)"
[ "$GOT" = "1,2,3" ] && echo "OK: point-in-time restore returned exactly the commits before $T"

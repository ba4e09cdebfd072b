#!/usr/bin/env bash
# bench/incremental.sh: what a second backup costs. walvault's block backups
# (deduplicated against the previous backup) against pgBackRest's
# incremental backups, in the same run, on the same pgbench database:
#
#   1. full backup of each tool;
#   2. a second backup of the unchanged database (walvault: a block backup,
#      pgBackRest: --type=incr);
#   3. pgbench -T $PGBENCH_SECONDS, then a third backup of each.
#
# For each backup it prints the wall time and the bytes it added to the
# repository, WAL excluded (walvault: packs/ and backups/; pgBackRest:
# backup/), and walvault's peak RSS. The order of the tools alternates from
# one step to the next. The "chunks" row is walvault's older layout (whole
# tar chunks, --chunks), for reference; then a restore of the newest
# backup with each tool.
# This is a benchmark, not a test: it fails only when a tool fails.
#
# Usage (as root): bench/incremental.sh
#   SCALE=70             pgbench scale (70: ~1.05 GB)
#   PGBENCH_SECONDS=60   length of the pgbench run before the third backup
#   DAYS=0               then DAYS daily backups, each after changing CHANGE_PCT % of
#                        pgbench_accounts' pages (one row per page, updated in place:
#                        HOT, so set FILLFACTOR=95 to leave room); DAYS=7 CHANGE_PCT=5
#                        FILLFACTOR=95 is issue 15's week (stored bytes against one full backup)
#   CHANGE_PCT=5  FILLFACTOR=100 (pgbench -i -F)
#   BENCH_DIR=           working directory (default mktemp -d); KEEP=1 keeps it
#   PGBIN=/usr/lib/postgresql/15/bin   WALVAULT_BIN= (default: go build)
set -euo pipefail

SCALE=${SCALE:-70}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-60}
KEEP=${KEEP:-0}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGBR=${PGBR:-/usr/bin/pgbackrest}
WALVAULT_BIN=${WALVAULT_BIN:-}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL runs as postgres through runuser)"
[[ -x $PGBIN/postgres ]] || die "no PostgreSQL in $PGBIN"
[[ -x $PGBR ]] || die "no pgbackrest at $PGBR"
[[ $SCALE =~ ^[1-9][0-9]*$ && $PGBENCH_SECONDS =~ ^[0-9]+$ ]] || die "SCALE and PGBENCH_SECONDS must be integers"

DAYS=${DAYS:-0} CHANGE_PCT=${CHANGE_PCT:-5} FILLFACTOR=${FILLFACTOR:-100}
PAGES="python3 $SRC/bench/pages.py"

if [[ -z ${BENCH_DIR:-} ]]; then
	BENCH_DIR=$(mktemp -d /tmp/walvault-incr.XXXXXX)
else
	[[ ! -e $BENCH_DIR || -z $(ls -A "$BENCH_DIR") ]] || die "BENCH_DIR=$BENCH_DIR is not empty"
	mkdir -p "$BENCH_DIR"
fi
chmod 755 "$BENCH_DIR"
PGDATA=$BENCH_DIR/pgdata SOCK=$BENCH_DIR/sock LOGS=$BENCH_DIR/logs
WV_DIR=$BENCH_DIR/walvault PGBR_DIR=$BENCH_DIR/pgbackrest
mkdir -p "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR"
chown postgres: "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR"
chmod 700 "$WV_DIR" "$PGBR_DIR"

PG_STARTED=0
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	((PG_STARTED)) && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1
	if [[ $KEEP == 1 ]]; then log "kept $BENCH_DIR"; else rm -rf "$BENCH_DIR"; fi
	((rc == 0)) || log "FAILED (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_pg() { runuser -u postgres -- "$@"; }
as_pg_clean() { runuser -u postgres -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/var/lib/postgresql "$@"; }
sql() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PGPORT" -U postgres -d "${DB:-postgres}" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
dsize() { { du -sb "$@" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.1f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return; }
	done
}

WV=$BENCH_DIR/walvault-bin
if [[ -n $WALVAULT_BIN ]]; then
	install -m 755 "$WALVAULT_BIN" "$WV"
else
	log "building walvault"
	(cd "$SRC" && go build -o "$WV" ./cmd/walvault) || die "walvault does not build"
	chmod 755 "$WV"
fi

PGPORT=$(free_port)
log "initdb + start PostgreSQL ($PGBIN) on 127.0.0.1:$PGPORT"
install -d -o postgres -g postgres -m 700 "$PGDATA"
as_pg_clean "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-instructions >"$LOGS/initdb.log" 2>&1 || die "initdb failed"
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 8GB
checkpoint_timeout = 30min
shared_buffers = 256MB
EOF
touch "$LOGS/postgresql.log" && chown postgres: "$LOGS/postgresql.log"
as_pg_clean "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgresql.log" -w -t 120 start >/dev/null || die "PostgreSQL did not start"
PG_STARTED=1

# walvault: a format-2 repository (writer key), file system.
as_pg "$WV" keygen "$WV_DIR/age.key" >"$LOGS/keygen.log" 2>&1 || die "keygen failed"
RECIPIENT=$(grep -o 'age1[0-9a-z]*' "$LOGS/keygen.log" | tail -n1)
as_pg "$WV" writer issue --age-identity-file "$WV_DIR/age.key" --name bench "$WV_DIR/writer.key" >"$LOGS/writer.log" 2>&1 || die "writer issue failed"
WV_CONF=$WV_DIR/wv.conf
cat >"$WV_CONF" <<EOF
repo = file://$WV_DIR/repo
age-recipients = $RECIPIENT
age-identity-file = $WV_DIR/age.key
writer-key-file = $WV_DIR/writer.key
pg-url = host=$SOCK port=$PGPORT user=postgres
EOF
chown postgres: "$WV_CONF" && chmod 600 "$WV_CONF"
as_pg_clean "$WV" init --config "$WV_CONF" >"$LOGS/wv-init.log" 2>&1 || { cat "$LOGS/wv-init.log"; die "walvault init failed"; }

# pgBackRest: as bench/run.sh (zst, aes-256-cbc, process-max=2).
PGBR_CONF=$PGBR_DIR/pgbackrest.conf
cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$PGBR_DIR/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
repo1-retention-full=9999
compress-type=zst
process-max=2
archive-async=n
start-fast=y
log-path=$PGBR_DIR/log
lock-path=$PGBR_DIR/lock
spool-path=$PGBR_DIR/spool

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$SOCK
pg1-user=postgres
EOF
chown postgres: "$PGBR_CONF" && chmod 600 "$PGBR_CONF"
install -d -o postgres -g postgres -m 700 "$PGBR_DIR/log" "$PGBR_DIR/lock" "$PGBR_DIR/spool"
pgbr() { as_pg_clean "$PGBR" --config="$PGBR_CONF" --stanza=bench "$@"; }

# Both tools archive every segment.
sql "ALTER SYSTEM SET archive_command = '$WV wal-push --config $WV_CONF %p && $PGBR --config=$PGBR_CONF --stanza=bench archive-push %p'" >/dev/null
sql "SELECT pg_reload_conf()" >/dev/null
pgbr stanza-create >"$LOGS/pgbr-stanza.log" 2>&1 || { cat "$LOGS/pgbr-stanza.log"; die "stanza-create failed"; }

log "pgbench -i -s $SCALE"
sql "CREATE DATABASE bench" >/dev/null
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -i -s "$SCALE" -F "$FILLFACTOR" -q bench >"$LOGS/pgbench-init.log" 2>&1 || die "pgbench -i failed"
DB=bench sql "VACUUM ANALYZE" >/dev/null
sql "CHECKPOINT" >/dev/null
log "database: $(sql "SELECT pg_size_pretty(pg_database_size('bench'))")"

wv_bytes() { dsize "$WV_DIR/repo/packs" "$WV_DIR/repo/backups"; }
pgbr_bytes() { dsize "$PGBR_DIR/repo/backup"; }

declare -A T B
declare -A RSS
install -d -o postgres -g postgres -m 700 "$BENCH_DIR/rss"
# rss NAME: peak RSS (MiB) of the last command run under /usr/bin/time.
rss() { awk '{ printf "%.0f", $1 / 1024 }' "$BENCH_DIR/rss/$1"; }
# run_wv STEP [ARGS]: one walvault backup, timed, with the bytes it added.
run_wv() {
	local b0 t0 step=$1
	shift
	b0=$(wv_bytes)
	t0=$EPOCHREALTIME
	as_pg_clean /usr/bin/time -f %M -o "$BENCH_DIR/rss/wv-$step" "$WV" backup --config "$WV_CONF" --fast "$@" >"$LOGS/wv-$step.log" 2>&1 || { tail -n 20 "$LOGS/wv-$step.log"; die "walvault backup ($step) failed"; }
	T[wv-$step]=$(sub "$t0" "$EPOCHREALTIME")
	B[wv-$step]=$(($(wv_bytes) - b0))
	RSS[wv-$step]=$(rss "wv-$step")
	log "walvault $step: ${T[wv-$step]} s, $(mb "${B[wv-$step]}") MB, peak RSS ${RSS[wv-$step]} MiB; $(grep -h '^blocks:' "$LOGS/wv-$step.log" || true)"
}
# pages_since STEP: snapshot the data directory's pages (after the backup's
# checkpoint) and set CH[STEP] to "changed total" since the previous snapshot.
declare -A CH
PREV_SNAP= W=
pages_since() {
	local snap=$BENCH_DIR/pages-$1
	$PAGES snapshot "$PGDATA" "$snap"
	if [[ -n $PREV_SNAP ]]; then
		CH[$1]=$($PAGES diff "$PREV_SNAP" "$snap")
		# After pgbench: what storing the changed pages costs at least,
		# compressed as walvault compresses new pages.
		if [[ $1 == changed ]] && command -v zstd >/dev/null; then
			W=$($PAGES weighted "$PREV_SNAP" "$snap" "$PGDATA")
		fi
		log "pages changed since the previous backup: ${CH[$1]% *} of ${CH[$1]#* } ($(pct "${CH[$1]% *}" "${CH[$1]#* }"))"
		rm -f "$PREV_SNAP"
	fi
	PREV_SNAP=$snap
}
run_pgbr() {
	local b0 t0 type=incr
	[[ $1 == full ]] && type=full
	b0=$(pgbr_bytes)
	t0=$EPOCHREALTIME
	pgbr backup --type="$type" >"$LOGS/pgbr-$1.log" 2>&1 || { tail -n 20 "$LOGS/pgbr-$1.log"; die "pgbackrest backup ($1) failed"; }
	T[pgbr-$1]=$(sub "$t0" "$EPOCHREALTIME")
	B[pgbr-$1]=$(($(pgbr_bytes) - b0))
	log "pgBackRest $1 ($type): ${T[pgbr-$1]} s, $(mb "${B[pgbr-$1]}") MB"
}

log "1. full backups"
run_wv full
pages_since full
run_pgbr full
# Reference: walvault's chunked layout (whole tar chunks, no blocks).
run_wv chunks --chunks
log "2. second backup, database unchanged"
run_pgbr unchanged
run_wv unchanged
# The floor of any backup that reads every page over the replication
# protocol (PostgreSQL 15 keeps no WAL summaries, so the server sends every
# page): pg_basebackup's tar stream of the whole data directory, thrown away.
t0=$EPOCHREALTIME
as_pg_clean "$PGBIN/pg_basebackup" -h "$SOCK" -p "$PGPORT" -U postgres -D - -Ft -X none -c fast --no-manifest >/dev/null 2>"$LOGS/floor.log" || { cat "$LOGS/floor.log"; die "pg_basebackup failed"; }
T[floor]=$(sub "$t0" "$EPOCHREALTIME")
log "floor: pg_basebackup -D - -Ft -X none -c fast > /dev/null: ${T[floor]} s"
if ((PGBENCH_SECONDS > 0)); then
	log "3. pgbench -T $PGBENCH_SECONDS, then a third backup"
	as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -n -c 2 -j 2 -T "$PGBENCH_SECONDS" bench >"$LOGS/pgbench-run.log" 2>&1 || die "pgbench failed"
	sql "CHECKPOINT" >/dev/null
	run_wv changed
	pages_since changed
	run_pgbr changed
fi
if ((DAYS > 0)); then
	ACC_PAGES=$(DB=bench sql "SELECT pg_relation_size('pgbench_accounts') / 8192")
	PER_DAY=$((ACC_PAGES * CHANGE_PCT / 100))
	log "5. $DAYS daily backups, $CHANGE_PCT % of pgbench_accounts' $ACC_PAGES pages changed each day ($PER_DAY pages, one row each)"
	WV_BEFORE_DAYS=$(wv_bytes) PGBR_BEFORE_DAYS=$(pgbr_bytes)
	for ((d = 1; d <= DAYS; d++)); do
		first=$(((d - 1) * PER_DAY % (ACC_PAGES - PER_DAY)))
		DB=bench sql "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ctid = ANY (ARRAY(SELECT format('(%s,1)', p)::tid FROM generate_series($first, $first + $PER_DAY - 1) p))" >/dev/null
		sql "CHECKPOINT" >/dev/null
		if ((d % 2)); then run_wv "day$d"; pages_since "day$d"; run_pgbr "day$d"; else run_pgbr "day$d"; run_wv "day$d"; pages_since "day$d"; fi
	done
	WV_DAYS=$(($(wv_bytes) - WV_BEFORE_DAYS)) PGBR_DAYS=$(($(pgbr_bytes) - PGBR_BEFORE_DAYS))
fi

# Restores of the newest backup (files written and synced, before replay),
# walvault's from blocks spread over the packs of every backup.
log "4. restores of the newest backup"
install -d -o postgres -g postgres -m 700 "$BENCH_DIR/rs"
RESTORE=$BENCH_DIR/rs/restore
restore_wv() {
	rm -rf "$RESTORE" "$RESTORE.walvault-recovery"
	install -d -o postgres -g postgres -m 700 "$RESTORE"
	local t0=$EPOCHREALTIME
	as_pg_clean /usr/bin/time -f %M -o "$BENCH_DIR/rss/wv-restore" "$WV" restore --config "$WV_CONF" --pgdata "$RESTORE" --target-immediate >"$LOGS/wv-restore.log" 2>&1 || { tail -n 20 "$LOGS/wv-restore.log"; die "walvault restore failed"; }
	T[wv-restore]=$(sub "$t0" "$EPOCHREALTIME")
	RSS[wv-restore]=$(rss wv-restore)
	log "walvault restore: ${T[wv-restore]} s, peak RSS ${RSS[wv-restore]} MiB"
}
restore_pgbr() {
	rm -rf "$RESTORE" "$RESTORE.walvault-recovery"
	install -d -o postgres -g postgres -m 700 "$RESTORE"
	sed -i "s|^pg1-path=.*|pg1-path=$RESTORE|" "$PGBR_CONF"
	local t0=$EPOCHREALTIME
	pgbr restore --type=immediate >"$LOGS/pgbr-restore.log" 2>&1 || { tail -n 20 "$LOGS/pgbr-restore.log"; die "pgbackrest restore failed"; }
	T[pgbr-restore]=$(sub "$t0" "$EPOCHREALTIME")
	sed -i "s|^pg1-path=.*|pg1-path=$PGDATA|" "$PGBR_CONF"
	log "pgBackRest restore: ${T[pgbr-restore]} s"
}
restore_pgbr
restore_wv
rm -rf "$RESTORE" "$RESTORE.walvault-recovery"

echo
echo "bench/incremental.sh SCALE=$SCALE PGBENCH_SECONDS=$PGBENCH_SECONDS ($("$PGBIN/postgres" --version), $("$PGBR" version), walvault $("$WV" --version 2>&1 | head -n1 | awk '{print $NF}'))"
printf '%-28s %12s %12s %12s %12s\n' "" "walvault s" "walvault MB" "pgBackRest s" "pgBackRest MB"
STEPS=(full chunks unchanged changed)
for ((d = 1; d <= DAYS; d++)); do STEPS+=("day$d"); done
for s in "${STEPS[@]}"; do
	[[ -n ${T[wv-$s]:-} ]] || continue
	printf '%-28s %12s %12s %12s %12s\n' "$s" "${T[wv-$s]}" "$(mb "${B[wv-$s]}")" "${T[pgbr-$s]:-}" "$(mb "${B[pgbr-$s]:-0}")"
done
echo
echo "second backup of the unchanged database vs the first:"
echo "  walvault:   bytes $(pct "${B[wv-unchanged]}" "${B[wv-full]}"), time $(ratio "${T[wv-unchanged]}" "${T[wv-full]}")x"
echo "  pgBackRest: bytes $(pct "${B[pgbr-unchanged]}" "${B[pgbr-full]}"), time $(ratio "${T[pgbr-unchanged]}" "${T[pgbr-full]}")x"
echo "  floor (the server sending every page, pg_basebackup to /dev/null): ${T[floor]} s = $(ratio "${T[floor]}" "${T[wv-full]}")x walvault's full backup's time; walvault's unchanged backup took $(ratio "${T[wv-unchanged]}" "${T[floor]}")x the floor"
echo "walvault peak RSS: backups ${RSS[wv-full]}/${RSS[wv-unchanged]}/${RSS[wv-changed]:-n/a} MiB (full/unchanged/changed), restore ${RSS[wv-restore]} MiB"
echo "restore of the newest backup: walvault ${T[wv-restore]} s, pgBackRest ${T[pgbr-restore]} s ($(ratio "${T[wv-restore]}" "${T[pgbr-restore]}")x)"
if [[ -n ${T[wv-changed]:-} ]]; then
	echo "after pgbench -T $PGBENCH_SECONDS:"
	echo "  walvault:   bytes $(pct "${B[wv-changed]}" "${B[wv-full]}") of the full backup's"
	echo "  pgBackRest: bytes $(pct "${B[pgbr-changed]}" "${B[pgbr-full]}") of the full backup's"
	[[ -n ${CH[changed]:-} ]] && echo "  pages changed since the previous backup: $(pct "${CH[changed]% *}" "${CH[changed]#* }") (${CH[changed]% *} of ${CH[changed]#* })"
	[[ -n $W ]] && echo "  the changed pages compressed (zstd -1, 128 KiB frames, bench/pages.py weighted): $(mb "${W% *}") MB = $(pct "${W% *}" "${W#* }") of all pages so compressed, $(pct "${W% *}" "${B[wv-full]}") of the full backup's bytes"
fi
if ((DAYS > 0)); then
	echo "$DAYS daily backups, $CHANGE_PCT % of pgbench_accounts' pages changed each day (FILLFACTOR=$FILLFACTOR):"
	for ((d = 1; d <= DAYS; d++)); do
		echo "  day $d: pages changed $(pct "${CH[day$d]% *}" "${CH[day$d]#* }"), walvault +$(mb "${B[wv-day$d]}") MB ($(pct "${B[wv-day$d]}" "${B[wv-full]}") of a full), pgBackRest +$(mb "${B[pgbr-day$d]}") MB ($(pct "${B[pgbr-day$d]}" "${B[pgbr-full]}"))"
	done
	echo "  stored by the $DAYS daily backups: walvault $(mb "$WV_DAYS") MB = $(ratio "$WV_DAYS" "${B[wv-full]}")x one full backup; one full + the $DAYS days: $(ratio "$((WV_DAYS + B[wv-full]))" "${B[wv-full]}")x"
	echo "  pgBackRest incremental: $(mb "$PGBR_DAYS") MB = $(ratio "$PGBR_DAYS" "${B[pgbr-full]}")x its full backup; one full + the $DAYS days: $(ratio "$((PGBR_DAYS + B[pgbr-full]))" "${B[pgbr-full]}")x"
fi

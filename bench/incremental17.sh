#!/usr/bin/env bash
# bench/incremental17.sh: what a second backup costs on PostgreSQL 17+ with
# summarize_wal on, where walvault asks the server for an incremental backup
# (UPLOAD_MANIFEST, BASE_BACKUP INCREMENTAL: the server reads and sends only
# the blocks its WAL summaries say changed), against walvault --read-all (the
# server sends every block and walvault deduplicates them by hash, as on
# PostgreSQL 15), in the same run, on the same pgbench database:
#
#   1. one full backup (walvault backup --fast);
#   2. REPS repetitions, on the unchanged database, of (a) walvault backup
#      --fast (incremental) and (b) walvault backup --fast --read-all, the
#      order turning from one repetition to the next;
#   3. pgbench -T $PGBENCH_SECONDS, then one incremental backup, next to the
#      share of the data directory's pages that changed since the backup
#      before (bench/pages.py).
#
# For each backup it prints the wall time, the bytes it added to the
# repository (packs/ and backups/: WAL excluded), whether PostgreSQL sent an
# incremental backup ("incremental from" in walvault's output) and
# walvault's peak RSS (/usr/bin/time); then each second backup's time and
# bytes as a share of the full backup's, and the medians of (a) and (b).
# Before every timed backup: CHECKPOINT, pg_switch_wal() and a wait until
# that segment is archived, so no backup pays for archiving a backlog; then
# a wait for the next whole second (backup ids have one-second resolution:
# two backups in one second would make the second wait).
# pgBackRest is the peer when it supports the server's major (stanza-create
# is tried): its incremental backups of the unchanged database join the
# rotation. pgBackRest 2.45 (Debian 12) refuses PostgreSQL 17 and 18
# (VersionNotSupportedError): then the script says so and the --read-all
# row is the comparison, walvault reading every block.
# This is a benchmark, not a test: it fails only when a tool fails.
#
# Usage (as root): bench/incremental17.sh
#   SCALE=70             pgbench scale (70: ~1.05 GB)
#   REPS=3               repetitions of (a) and (b) on the unchanged database
#   PGBENCH_SECONDS=60   length of the pgbench run (-c 2 -j 2) before the last backup; 0 skips it
#   PG_DIR=/var/cache/walvault/pg/17
#                        server programs (bin/initdb, bin/pg_ctl, bin/postgres; libraries
#                        found through their RUNPATH, ../lib); PG17_DIR= works too;
#                        PG_DIR=/var/cache/walvault/pg/18 for PostgreSQL 18
#   PGCLIENT=/usr/lib/postgresql/15/bin   psql and pgbench (they work against 17 and 18)
#   STEP_TIMEOUT=1800    seconds any one step (initdb, pgbench -i, a backup, a query) may take
#   BENCH_DIR=           working directory (default mktemp -d); KEEP=1 keeps it
#   WALVAULT_BIN=        (default: go build ./cmd/walvault)   PGBR=/usr/bin/pgbackrest
set -euo pipefail

SCALE=${SCALE:-70}
REPS=${REPS:-3}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-60}
PG_DIR=${PG_DIR:-${PG17_DIR:-/var/cache/walvault/pg/17}}
PGCLIENT=${PGCLIENT:-/usr/lib/postgresql/15/bin}
STEP_TIMEOUT=${STEP_TIMEOUT:-1800}
KEEP=${KEEP:-0}
PGBR=${PGBR:-/usr/bin/pgbackrest}
WALVAULT_BIN=${WALVAULT_BIN:-}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="SCALE=$SCALE REPS=$REPS PGBENCH_SECONDS=$PGBENCH_SECONDS PG_DIR=$PG_DIR bench/incremental17.sh"
PGSRV=$PG_DIR/bin

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL runs as postgres through runuser)"
id postgres >/dev/null 2>&1 || die "no postgres user"
for p in initdb pg_ctl postgres; do [[ -x $PGSRV/$p ]] || die "no $p in $PGSRV (scripts/fetch-postgres.sh)"; done
for p in psql pgbench; do [[ -x $PGCLIENT/$p ]] || die "no $p in $PGCLIENT"; done
[[ $SCALE =~ ^[1-9][0-9]*$ && $REPS =~ ^[1-9][0-9]*$ && $PGBENCH_SECONDS =~ ^[0-9]+$ && $STEP_TIMEOUT =~ ^[1-9][0-9]*$ ]] ||
	die "SCALE, REPS, PGBENCH_SECONDS and STEP_TIMEOUT must be integers"
PG_VERSION=$("$PGSRV/postgres" --version) || die "$PGSRV/postgres does not run"
PG_MAJOR=$(awk '{ split($3, v, "."); print v[1] }' <<<"$PG_VERSION")
[[ $PG_MAJOR =~ ^[0-9]+$ ]] || die "cannot tell the major of: $PG_VERSION"
((PG_MAJOR >= 17)) || log "PostgreSQL $PG_MAJOR has no WAL summaries: (a) reads every block, as (b) does"
TIME=/usr/bin/time
[[ -x $TIME ]] || { log "no /usr/bin/time: peak RSS not measured"; TIME=; }
PAGES=
command -v python3 >/dev/null && [[ -f $SRC/bench/pages.py ]] && PAGES="python3 $SRC/bench/pages.py"
[[ -n $PAGES ]] || log "no python3 or bench/pages.py: the share of changed pages is not measured"

if [[ -z ${BENCH_DIR:-} ]]; then
	BENCH_DIR=$(mktemp -d /tmp/walvault-incr17.XXXXXX)
else
	[[ ! -e $BENCH_DIR || -z $(ls -A "$BENCH_DIR") ]] || die "BENCH_DIR=$BENCH_DIR is not empty"
	mkdir -p "$BENCH_DIR"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fi
chmod 755 "$BENCH_DIR"
PGDATA=$BENCH_DIR/pgdata SOCK=$BENCH_DIR/sock LOGS=$BENCH_DIR/logs
WV_DIR=$BENCH_DIR/walvault PGBR_DIR=$BENCH_DIR/pgbackrest RSS_DIR=$BENCH_DIR/rss
mkdir -p "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR" "$RSS_DIR"
chown postgres: "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR" "$RSS_DIR"
chmod 700 "$WV_DIR" "$PGBR_DIR"

PG_STARTED=0
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if ((PG_STARTED)); then
		runuser -u postgres -- timeout 90 "$PGSRV/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			runuser -u postgres -- timeout 60 "$PGSRV/pg_ctl" -D "$PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1
	fi
	if [[ $KEEP == 1 ]]; then log "kept $BENCH_DIR"; else rm -rf "$BENCH_DIR"; fi
	((rc == 0)) || log "FAILED (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Every program runs under timeout: no step waits forever.
as_pg() { runuser -u postgres -- timeout -k 10 "$STEP_TIMEOUT" "$@"; }
# A clean environment for the server (and so for archive_command) and the
# tools: they take their settings from their config files, not from us.
as_pg_clean() { runuser -u postgres -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/var/lib/postgresql timeout -k 10 "$STEP_TIMEOUT" "$@"; }
sql() { as_pg "$PGCLIENT/psql" -h "$SOCK" -p "$PGPORT" -U postgres -d "${DB:-postgres}" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
dsize() { { du -sb "$@" 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.1f%%", 100 * a / b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.3f", a / b }'; }
# median of the numbers on stdin (mean of the two middle ones when even).
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
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
	WV_BUILD="walvault $WALVAULT_BIN"
else
	log "building walvault"
	(cd "$SRC" && go build -o "$WV" ./cmd/walvault) || die "walvault does not build"
	chmod 755 "$WV"
	WV_BUILD="walvault built from $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')"
	[[ -z $(git -C "$SRC" status --porcelain --untracked-files=no 2>/dev/null) ]] || WV_BUILD+=" (with uncommitted changes)"
fi
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')

# walvault: a format-2 repository (writer key) in a directory; init (it
# reads the server's system identifier) follows the server's start, before
# the first segment is complete.
as_pg "$WV" keygen "$WV_DIR/age.key" >"$LOGS/keygen.log" 2>&1 || die "keygen failed"
RECIPIENT=$(grep -o 'age1[0-9a-z]*' "$LOGS/keygen.log" | tail -n1)
as_pg "$WV" writer issue --age-identity-file "$WV_DIR/age.key" --name bench "$WV_DIR/writer.key" >"$LOGS/writer.log" 2>&1 || die "writer issue failed"
PGPORT=$(free_port)
WV_CONF=$WV_DIR/wv.conf
cat >"$WV_CONF" <<EOF
repo = file://$WV_DIR/repo
age-recipients = $RECIPIENT
age-identity-file = $WV_DIR/age.key
writer-key-file = $WV_DIR/writer.key
pg-url = host=$SOCK port=$PGPORT user=postgres
EOF
chown postgres: "$WV_CONF" && chmod 600 "$WV_CONF"

log "initdb + start $PG_VERSION ($PGSRV) on 127.0.0.1:$PGPORT"
install -d -o postgres -g postgres -m 700 "$PGDATA"
as_pg_clean "$PGSRV/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-instructions >"$LOGS/initdb.log" 2>&1 || { tail -n 20 "$LOGS/initdb.log"; die "initdb failed"; }
cat >>"$PGDATA/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
archive_mode = on
archive_command = '$WV wal-push --config $WV_CONF %p'
max_wal_size = 8GB
checkpoint_timeout = 30min
shared_buffers = 256MB
EOF
((PG_MAJOR >= 17)) && echo "summarize_wal = on" >>"$PGDATA/postgresql.conf"
touch "$LOGS/postgresql.log" && chown postgres: "$LOGS/postgresql.log"
as_pg_clean "$PGSRV/pg_ctl" -D "$PGDATA" -l "$LOGS/postgresql.log" -w -t 120 start >/dev/null || { tail -n 20 "$LOGS/postgresql.log"; die "PostgreSQL did not start"; }
PG_STARTED=1
((PG_MAJOR < 17)) || [[ $(sql "SHOW summarize_wal") == on ]] || die "summarize_wal is not on"
as_pg_clean "$WV" init --config "$WV_CONF" >"$LOGS/wv-init.log" 2>&1 || { cat "$LOGS/wv-init.log"; die "walvault init failed"; }

# pgBackRest: as bench/incremental.sh (zst, aes-256-cbc, process-max=2), if
# it takes this server: stanza-create reads pg_control and refuses a
# version it does not know.
PGBR_VERSION=
PGBR_REFUSAL=
PEER=0
if [[ -x $PGBR ]]; then
	PGBR_VERSION=$("$PGBR" version)
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
	log "$PGBR_VERSION: stanza-create against PostgreSQL $PG_MAJOR"
	if pgbr stanza-create >"$LOGS/pgbr-stanza.log" 2>&1; then
		PEER=1
		# Both tools archive every segment from here on.
		sql "ALTER SYSTEM SET archive_command = '$WV wal-push --config $WV_CONF %p && $PGBR --config=$PGBR_CONF --stanza=bench archive-push %p'" >/dev/null
		sql "SELECT pg_reload_conf()" >/dev/null
	else
		# It says "VersionNotSupportedError" (a warning) before "unable to
		# find primary cluster" (the error) for a major it does not know.
		PGBR_REFUSAL=$(grep -m1 -o '\[VersionNotSupportedError\].*' "$LOGS/pgbr-stanza.log" || true)
		[[ -n $PGBR_REFUSAL ]] || PGBR_REFUSAL=$(grep -m1 'ERROR' "$LOGS/pgbr-stanza.log" | sed 's/^.*ERROR: *//' || true)
		[[ -n $PGBR_REFUSAL ]] || PGBR_REFUSAL=$(tail -n1 "$LOGS/pgbr-stanza.log")
		log "pgBackRest stanza-create failed:"
		sed 's/^/    /' "$LOGS/pgbr-stanza.log"
	fi
else
	log "no pgbackrest at $PGBR"
fi

# settle: a checkpoint, the current segment switched and archived (waits at
# most 600 s), so that the next backup starts from the same state whatever
# ran before it.
settle() {
	local seg t0=$SECONDS
	sql "CHECKPOINT" >/dev/null
	seg=$(sql "SELECT pg_walfile_name(pg_switch_wal())")
	until [[ $(sql "SELECT coalesce(last_archived_wal >= '$seg', false) FROM pg_stat_archiver") == t ]]; do
		((SECONDS - t0 < 600)) || { tail -n 20 "$LOGS/postgresql.log"; die "segment $seg not archived after 600 s"; }
		sleep 0.5
	done
}

log "pgbench -i -s $SCALE"
sql "CREATE DATABASE bench" >/dev/null
as_pg "$PGCLIENT/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -i -s "$SCALE" -q bench >"$LOGS/pgbench-init.log" 2>&1 || { tail -n 20 "$LOGS/pgbench-init.log"; die "pgbench -i failed"; }
DB=bench sql "VACUUM ANALYZE" >/dev/null
DB_SIZE=$(sql "SELECT pg_size_pretty(pg_database_size('bench'))")
log "database: $DB_SIZE; waiting for the archiver"
settle

wv_bytes() { dsize "$WV_DIR/repo/packs" "$WV_DIR/repo/backups"; }
pgbr_bytes() { dsize "$PGBR_DIR/repo/backup"; }

declare -A T B RSS INC
# run_wv STEP [ARGS]: one walvault backup, timed, with the bytes it added,
# whether the server sent it incremental, and walvault's peak RSS.
run_wv() {
	local b0 t0 step=$1 timer=()
	shift
	settle
	[[ -n $TIME ]] && timer=("$TIME" -f %M -o "$RSS_DIR/$step")
	b0=$(wv_bytes)
	# Backup ids have one-second resolution: a backup started in the
	# second of the previous one waits for the next. Start on a fresh
	# second, so no row pays that wait (nightly backups never do).
	sleep "$(awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%.3f", 1 - (t - int(t)) + 0.01 }')"
	t0=$EPOCHREALTIME
	as_pg_clean "${timer[@]}" "$WV" backup --config "$WV_CONF" --fast "$@" >"$LOGS/wv-$step.log" 2>&1 || { tail -n 20 "$LOGS/wv-$step.log"; die "walvault backup ($step) failed"; }
	T[$step]=$(sub "$t0" "$EPOCHREALTIME")
	B[$step]=$(($(wv_bytes) - b0))
	RSS[$step]=n/a
	[[ -n $TIME ]] && RSS[$step]=$(awk '{ printf "%.0f", $1 / 1024 }' "$RSS_DIR/$step")
	INC[$step]=no
	grep -q '^incremental from ' "$LOGS/wv-$step.log" && INC[$step]=yes
	log "walvault $step${*:+ ($*)}: ${T[$step]} s, $(mb "${B[$step]}") MB, incremental: ${INC[$step]}, peak RSS ${RSS[$step]} MiB"
	grep -h -e '^blocks:' -e '^incremental from ' "$LOGS/wv-$step.log" | sed 's/^/    /' || true
}
# run_pgbr STEP TYPE: one pgBackRest backup (full or incr), timed, with the
# bytes it added.
run_pgbr() {
	local b0 t0 step=$1 type=$2
	settle
	b0=$(pgbr_bytes)
	t0=$EPOCHREALTIME
	pgbr backup --type="$type" >"$LOGS/$step.log" 2>&1 || { tail -n 20 "$LOGS/$step.log"; die "pgbackrest backup ($step) failed"; }
	T[$step]=$(sub "$t0" "$EPOCHREALTIME")
	B[$step]=$(($(pgbr_bytes) - b0))
	RSS[$step]=n/a INC[$step]=$([[ $type == incr ]] && echo yes || echo no)
	log "pgBackRest $step (--type=$type): ${T[$step]} s, $(mb "${B[$step]}") MB"
}
# snapshot NAME: bench/pages.py's hashes of every page of the data directory.
snapshot() {
	[[ -n $PAGES ]] || return 0
	timeout -k 10 "$STEP_TIMEOUT" $PAGES snapshot "$PGDATA" "$BENCH_DIR/pages-$1" || die "pages.py snapshot failed"
}

log "1. full backup"
run_wv full
((PEER)) && run_pgbr pgbr-full full

log "2. $REPS x (a) incremental, (b) --read-all$( ((PEER)) && echo ', pgBackRest incr'), database unchanged"
STEPS=(full)
((PEER)) && STEPS+=(pgbr-full)
for ((r = 1; r <= REPS; r++)); do
	order=(a b)
	((PEER)) && order+=(p)
	if ((r % 2 == 0)); then
		order=(b a)
		((PEER)) && order=(p b a)
	fi
	for x in "${order[@]}"; do
		case $x in
		a) run_wv "incr$r" ;;
		b) run_wv "readall$r" --read-all ;;
		p) run_pgbr "pgbr-incr$r" incr ;;
		esac
	done
	STEPS+=("incr$r" "readall$r")
	((PEER)) && STEPS+=("pgbr-incr$r")
done

CH= W=
if ((PGBENCH_SECONDS > 0)); then
	log "3. pgbench -n -c 2 -j 2 -T $PGBENCH_SECONDS, then an incremental backup"
	snapshot before-pgbench
	as_pg "$PGCLIENT/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -n -c 2 -j 2 -T "$PGBENCH_SECONDS" bench >"$LOGS/pgbench-run.log" 2>&1 || { tail -n 20 "$LOGS/pgbench-run.log"; die "pgbench failed"; }
	log "pgbench: $(grep -h '^tps' "$LOGS/pgbench-run.log" | head -n1)"
	run_wv changed
	STEPS+=(changed)
	if [[ -n $PAGES ]]; then
		# After the backup's checkpoint: every page the backup had to consider.
		snapshot after-pgbench
		CH=$(timeout -k 10 "$STEP_TIMEOUT" $PAGES diff "$BENCH_DIR/pages-before-pgbench" "$BENCH_DIR/pages-after-pgbench") || die "pages.py diff failed"
		log "pages changed since the backup before pgbench: ${CH% *} of ${CH#* } ($(pct "${CH% *}" "${CH#* }"))"
		# What storing the changed pages costs at least, compressed as
		# walvault compresses new pages, next to all pages.
		if command -v zstd >/dev/null; then
			W=$(timeout -k 10 "$STEP_TIMEOUT" $PAGES weighted "$BENCH_DIR/pages-before-pgbench" "$BENCH_DIR/pages-after-pgbench" "$PGDATA") || die "pages.py weighted failed"
		fi
	fi
fi
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "$CMDLINE (as root)"
echo "$DATE_START; $PG_VERSION (summarize_wal $( ((PG_MAJOR >= 17)) && echo on || echo 'n/a')); $WV_BUILD, $("$WV" --version 2>&1 | head -n1); ${PGBR_VERSION:-no pgBackRest}"
echo "machine: $(nproc) cores, load average $LOAD_START at the start, $LOAD_END at the end; database $DB_SIZE (pgbench -i -s $SCALE)"
printf '%-14s %9s %10s %12s %13s %11s %11s\n' backup "s" "MB added" incremental "peak RSS MiB" "time/full" "bytes/full"
for s in "${STEPS[@]}"; do
	full=full
	[[ $s == pgbr-* ]] && full=pgbr-full
	printf '%-14s %9s %10s %12s %13s %11s %11s\n' "$s" "${T[$s]}" "$(mb "${B[$s]}")" "${INC[$s]}" "${RSS[$s]}" \
		"$(ratio "${T[$s]}" "${T[$full]}")x" "$(pct "${B[$s]}" "${B[$full]}")"
done
echo
echo "second backup of the unchanged database vs the first (median of $REPS; issue 15: bytes <= 3%, time <= 0.3x, PostgreSQL 17/18 with summaries <= 0.1x):"
# summary LABEL PREFIX FULL: median time and bytes of the steps PREFIX1..REPS.
summary() {
	local mt mbytes r
	mt=$(for ((r = 1; r <= REPS; r++)); do echo "${T[$2$r]}"; done | median)
	mbytes=$(for ((r = 1; r <= REPS; r++)); do echo "${B[$2$r]}"; done | median)
	printf '  %-36s %6s s = %sx the full backup'"'"'s time, %s MB = %s of its bytes\n' "$1" "$mt" "$(ratio "$mt" "${T[$3]}")" "$(mb "$mbytes")" "$(pct "$mbytes" "${B[$3]}")"
}
summary "(a) walvault incremental:" incr full
summary "(b) walvault --read-all:" readall full
if ((PEER)); then
	summary "pgBackRest --type=incr:" pgbr-incr pgbr-full
elif [[ $PGBR_REFUSAL == *VersionNotSupported* ]]; then
	echo "  pgBackRest: ${PGBR_VERSION} does not support PostgreSQL $PG_MAJOR (stanza-create: $PGBR_REFUSAL); the comparison is the --read-all row (b): walvault reading every block, as on PostgreSQL 15"
else
	echo "  pgBackRest: no peer (${PGBR_REFUSAL:-no pgbackrest at $PGBR}); the comparison is the --read-all row (b): walvault reading every block, as on PostgreSQL 15"
fi
echo "  (a) ÷ (b): time $(ratio "$(for ((r = 1; r <= REPS; r++)); do echo "${T[incr$r]}"; done | median)" "$(for ((r = 1; r <= REPS; r++)); do echo "${T[readall$r]}"; done | median)")x"
if [[ -n ${T[changed]:-} ]]; then
	echo "after pgbench -n -c 2 -j 2 -T $PGBENCH_SECONDS (issue 15: bytes <= changed pages' share + 3%):"
	echo "  incremental backup: ${T[changed]} s ($(ratio "${T[changed]}" "${T[full]}")x the full's), $(mb "${B[changed]}") MB = $(pct "${B[changed]}" "${B[full]}") of the full backup's bytes, incremental: ${INC[changed]}"
	if [[ -n $CH ]]; then
		echo "  pages changed since the previous backup: $(pct "${CH% *}" "${CH#* }") (${CH% *} of ${CH#* }, bench/pages.py, pg_wal excluded)"
		[[ -n $W ]] && echo "  the changed pages compressed (zstd -1, 128 KiB frames, bench/pages.py weighted): $(mb "${W% *}") MB = $(pct "${W% *}" "${W#* }") of all pages so compressed ($(mb "${W#* }") MB), $(pct "${W% *}" "${B[full]}") of the full backup's bytes; the backup stored $(ratio "${B[changed]}" "${W% *}")x that floor"
	else
		echo "  pages changed: not measured (no python3 or bench/pages.py)"
	fi
fi

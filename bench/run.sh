#!/usr/bin/env bash
# bench/run.sh: benchmark walvault against pgBackRest on one pgbench database,
# in the same run, and print the ratios. This is a benchmark, not a test: it
# fails only when a tool fails, never on a missed target.
#
# Usage (as root, from anywhere):
#   bench/run.sh                      # SCALE=70: pgbench database of ~1.05 GB
#   SCALE=10 bench/run.sh             # quick run
#   SCALE=70 REPS=3 bench/run.sh      # three backups and restores per tool
#
# Knobs (environment):
#   SCALE=70          pgbench -i scale (70 ≈ 1.05 GB of tables and indexes)
#   REPS=1            backup and restore repetitions per tool (each one printed)
#   WAL_SEGMENTS=20   segments timed per wal-push target (N=… works too)
#   BENCH_DIR=        working directory (default: mktemp -d /tmp/walvault-bench.XXXXXX);
#                     must not exist or be empty; removed at the end unless KEEP=1
#   KEEP=0            1 keeps BENCH_DIR (data, repositories, logs)
#   WALVAULT=auto     1: walvault must build; 0: pgBackRest half only;
#                     auto: skip the walvault half (loudly) when it does not build
#   WALVAULT_BIN=     use this walvault binary instead of building ./cmd/walvault
#   BEFORE_REV=f889514^
#                     also time walvault as built from this git revision of the
#                     source tree (default: the commit before format 2's signing,
#                     1f5e8f9) in the same run and rotation: backup and restore
#                     with its own format-1 directory repository, wal-push per
#                     segment; rows "walvault before (REV)" and the ratios
#                     after ÷ before. BEFORE_REV= (empty) or none skips it.
#   S3_BACKUP=1       also time walvault backup and restore against the local MinIO
#   RESTORE_PAUSE=0   seconds of idle before each restore: on a VM disk with burst
#                     credits, restores that follow others at once run at the disk's
#                     baseline rate, whichever tool writes (60 lets each restore,
#                     the copy floor's too, start on a rested disk, as a restore at
#                     night does)
#   WV_LEVEL=         walvault --compress-level (empty: walvault's default)
#   PGBIN=/usr/lib/postgresql/15/bin
#   WALVAULT_MINIO_BIN=$HOME/.cache/walvault/bin/minio
#
# What runs: PostgreSQL 15 (initdb defaults, archive_mode=on) on 127.0.0.1 and a
# socket directory inside BENCH_DIR, as the postgres user; MinIO on 127.0.0.1
# with random credentials; pgBackRest with zst at its default level,
# aes-256-cbc, process-max=2, archive-async=n and a repository in BENCH_DIR.
# Everything is page-cache warm: nothing drops caches (the machine is shared).
# Restores: each tool's and the copy floor (cp -a of the first restored data
# directory into an empty one, then sync -f), in an order that turns each
# repetition, with walvault ÷ pgBackRest and walvault ÷ copy floor printed
# per repetition. A repetition's restored directories are kept until its end
# (SCALE=70: about 1.1 GB each, 4-5 of them).
set -euo pipefail

SCALE=${SCALE:-70}
REPS=${REPS:-1}
WAL_SEGMENTS=${WAL_SEGMENTS:-${N:-20}}
RESTORE_PAUSE=${RESTORE_PAUSE:-0}
KEEP=${KEEP:-0}
WALVAULT=${WALVAULT:-auto}
WALVAULT_BIN=${WALVAULT_BIN:-}
BEFORE_REV=${BEFORE_REV-f889514^}
[[ -n $BEFORE_REV ]] || BEFORE_REV=none
S3_BACKUP=${S3_BACKUP:-1}
WV_LEVEL=${WV_LEVEL:-}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
MINIO_BIN=${WALVAULT_MINIO_BIN:-$HOME/.cache/walvault/bin/minio}
PGBR=${PGBR:-/usr/bin/pgbackrest}

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMDLINE="$(for v in SCALE REPS WAL_SEGMENTS RESTORE_PAUSE WALVAULT S3_BACKUP WV_LEVEL BEFORE_REV KEEP; do
	[[ -n ${!v:-} ]] && printf '%s=%s ' "$v" "${!v}"; done)bench/run.sh${*:+ $*}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (PostgreSQL runs as postgres through runuser)"
[[ $SCALE =~ ^[0-9]+$ && $REPS =~ ^[1-9][0-9]*$ && $WAL_SEGMENTS =~ ^[1-9][0-9]*$ ]] ||
	die "SCALE, REPS and WAL_SEGMENTS must be positive integers"
[[ -x $PGBIN/postgres ]] || die "no PostgreSQL in $PGBIN"
[[ -x $PGBR ]] || die "no pgbackrest at $PGBR (apt-get install pgbackrest)"
[[ -x /usr/bin/time ]] || die "no /usr/bin/time (apt-get install time)"
command -v zstd >/dev/null || die "no zstd CLI (apt-get install zstd)"
id postgres >/dev/null 2>&1 || die "no postgres user"

# ---------------------------------------------------------------------------
# Working directory and cleanup.
if [[ -z ${BENCH_DIR:-} ]]; then
	BENCH_DIR=$(mktemp -d /tmp/walvault-bench.XXXXXX)
else
	[[ ! -e $BENCH_DIR || -z $(ls -A "$BENCH_DIR") ]] || die "BENCH_DIR=$BENCH_DIR is not empty"
	mkdir -p "$BENCH_DIR"
	BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
fi
chmod 755 "$BENCH_DIR"
PGDATA=$BENCH_DIR/pgdata
SOCK=$BENCH_DIR/sock
LOGS=$BENCH_DIR/logs
WV_DIR=$BENCH_DIR/walvault
PGBR_DIR=$BENCH_DIR/pgbackrest
SEGS=$BENCH_DIR/walsegs
RESTORE_DIR=$BENCH_DIR/restore
mkdir -p "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR" "$SEGS" "$BENCH_DIR/time"
chown postgres: "$SOCK" "$LOGS" "$WV_DIR" "$PGBR_DIR" "$SEGS" "$BENCH_DIR/time"
chmod 700 "$WV_DIR" "$PGBR_DIR"

PG_STARTED=0
MINIO_PID=
BG_PID=
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	[[ -n $BG_PID ]] && kill "$BG_PID" 2>/dev/null && wait "$BG_PID" 2>/dev/null
	[[ -n ${WP_SRV_PID:-} ]] && kill "$WP_SRV_PID" 2>/dev/null && wait "$WP_SRV_PID" 2>/dev/null
	if ((PG_STARTED)); then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1
	fi
	if [[ -n $MINIO_PID ]]; then
		kill "$MINIO_PID" 2>/dev/null
		wait "$MINIO_PID" 2>/dev/null
	fi
	if [[ $KEEP == 1 ]]; then
		log "kept $BENCH_DIR"
	else
		rm -rf "$BENCH_DIR"
	fi
	((rc == 0)) || log "FAILED (exit $rc)"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Helpers.
as_pg() { runuser -u postgres -- "$@"; }
# A clean environment for everything PostgreSQL starts (archive_command):
# the tools must get their settings from their config files, not from us.
as_pg_clean() { runuser -u postgres -- env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/var/lib/postgresql "$@"; }
sql() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PGPORT" -U postgres -d "${DB:-postgres}" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
now() { echo "$EPOCHREALTIME"; } # no fork: spawning a process costs ~10-40 ms on some VMs
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		[[ -z $(ss -Hltn "sport = :$p") ]] && { echo "$p"; return; }
	done
}
randhex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
# median and p95 (nearest rank) of numbers on stdin. The mean of the two
# middle values keeps 4 decimals (trailing zeros dropped): ratios near 1
# must not be rounded to a tenth.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } if (NR % 2) { print v[(NR + 1) / 2]; exit } m = sprintf("%.4f", (v[NR / 2] + v[NR / 2 + 1]) / 2); sub(/0+$/, "", m); sub(/\.$/, "", m); print m }'; }
p95() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a"; exit } i = int(NR * 0.95); if (i < NR * 0.95) i++; print v[i] }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }                # KiB → MiB
gb() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1e9 }'; }                  # bytes → GB
dsize() { du -sb "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; } # bytes under paths

# timed NAME CMD...: runs CMD as postgres under /usr/bin/time -v, output in
# $LOGS/NAME.log. Sets T_WALL (s), T_RSS (KiB, largest process), T_CPU (user+sys
# s of the command and the children it waited for).
timed() {
	local name=$1 t0 t1 rc=0
	shift
	t0=$(now)
	as_pg /usr/bin/time -v -o "$BENCH_DIR/time/$name" "$@" >"$LOGS/$name.log" 2>&1 || rc=$?
	t1=$(now)
	if ((rc != 0)); then
		log "$name failed (exit $rc); last lines of $LOGS/$name.log:" >&2
		tail -n 30 "$LOGS/$name.log" | sed 's/^/    /' >&2
		exit 1
	fi
	T_WALL=$(sub "$t0" "$t1")
	T_RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$BENCH_DIR/time/$name")
	T_CPU=$(awk -F': ' '/User time/ { u = $2 } /System time/ { s = $2 } END { printf "%.2f", u + s }' "$BENCH_DIR/time/$name")
}

# ms_of CMD...: wall time of one invocation as postgres in milliseconds
# (process start included: archive_command starts one process per segment).
# setpriv, not runuser: no PAM session, so less of our own overhead.
ms_of() {
	local t0 t1 rc=0
	t0=$EPOCHREALTIME
	setpriv --reuid=postgres --regid=postgres --init-groups env -i PATH=/usr/bin:/bin "$@" >>"$LOGS/walpush.log" 2>&1 || rc=$?
	t1=$EPOCHREALTIME
	((rc == 0)) || { tail -n 20 "$LOGS/walpush.log" | sed 's/^/    /' >&2; die "$* failed (exit $rc)"; }
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

# wait_archived: wait until PostgreSQL has no WAL waiting for archive_command.
wait_archived() {
	local fails0 i
	fails0=$(sql "SELECT failed_count FROM pg_stat_archiver")
	for ((i = 0; i < 1200; i++)); do
		if ! compgen -G "$PGDATA/pg_wal/archive_status/*.ready" >/dev/null; then
			return 0
		fi
		if [[ $(sql "SELECT failed_count FROM pg_stat_archiver") != "$fails0" ]]; then
			grep -i 'archive command failed\|archive_command' "$LOGS/postgresql.log" | tail -n 5 | sed 's/^/    /'
			die "archive_command failed: $(sql "SELECT last_failed_wal FROM pg_stat_archiver")"
		fi
		sleep 0.25
	done
	die "WAL still waiting for archiving after 300 s"
}

# set_archive CMD: switch archive_command and wait until the archiver is idle.
set_archive() {
	wait_archived
	sql "ALTER SYSTEM SET archive_command = '$1'" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
	[[ $(sql "SHOW archive_command") == "$1" ]] || die "archive_command did not change"
}

segno() { echo $((16#${1:8:8} * 256 + 16#${1:16:8})); } # 16 MiB segments

# ---------------------------------------------------------------------------
log "bench dir $BENCH_DIR, SCALE=$SCALE REPS=$REPS WAL_SEGMENTS=$WAL_SEGMENTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# walvault binary and the bucket helper (built first: fail early).
HAVE_WV=0
WV=$BENCH_DIR/walvault-bin
if [[ $WALVAULT != 0 ]]; then
	if [[ -n $WALVAULT_BIN ]]; then
		install -m 755 "$WALVAULT_BIN" "$WV" && HAVE_WV=1
	else
		log "building walvault (go build ./cmd/walvault)"
		if (cd "$SRC" && go build -o "$WV" ./cmd/walvault && go build -o "$BENCH_DIR/walvault-push" ./cmd/walvault-push) >"$LOGS/build.log" 2>&1; then
			HAVE_WV=1
		else
			sed 's/^/    /' "$LOGS/build.log" | head -n 20
			[[ $WALVAULT == 1 ]] && die "walvault does not build"
			log "WARNING: walvault does not build: running the pgBackRest half only (WALVAULT=auto)"
		fi
	fi
fi
if ((HAVE_WV)); then
	chmod 755 "$WV"
	(cd "$SRC" && go build -o "$BENCH_DIR/mkbucket" ./bench/mkbucket) >>"$LOGS/build.log" 2>&1 ||
		die "bench/mkbucket does not build: $(tail -n 5 "$LOGS/build.log")"
	[[ -x $MINIO_BIN ]] || die "no MinIO binary at $MINIO_BIN (set WALVAULT_MINIO_BIN)"
	WV_VERSION=$("$WV" --version 2>&1 | head -n1 | sed 's/^walvault version //')
fi

# walvault as it was before (BEFORE_REV), built from that revision's tree
# (git archive: no worktree to register or forget) into BENCH_DIR.
HAVE_WVB=0
WVB=$BENCH_DIR/walvault-before
BEFORE_SHORT=
if ((HAVE_WV)) && [[ $BEFORE_REV != none ]]; then
	BEFORE_HASH=$(git -C "$SRC" rev-parse --verify --quiet "$BEFORE_REV^{commit}") ||
		die "BEFORE_REV=$BEFORE_REV is not a commit of $SRC (give another revision, or BEFORE_REV=none to skip the before rows)"
	BEFORE_SHORT=$(git -C "$SRC" rev-parse --short "$BEFORE_HASH")
	log "building walvault before ($BEFORE_REV = $BEFORE_SHORT)"
	mkdir "$BENCH_DIR/before-src"
	if (git -C "$SRC" archive "$BEFORE_HASH" | tar -x -C "$BENCH_DIR/before-src" &&
		cd "$BENCH_DIR/before-src" && go build -o "$WVB" ./cmd/walvault) >"$LOGS/build-before.log" 2>&1; then
		HAVE_WVB=1
		chmod 755 "$WVB"
	else
		sed 's/^/    /' "$LOGS/build-before.log" | head -n 20
		die "walvault at $BEFORE_REV ($BEFORE_SHORT) does not build (BEFORE_REV=none skips the before rows)"
	fi
	rm -rf "$BENCH_DIR/before-src"
fi

# ---------------------------------------------------------------------------
# PostgreSQL with a pgbench database.
PGPORT=$(free_port)
log "initdb + start PostgreSQL on 127.0.0.1:$PGPORT"
install -d -o postgres -g postgres -m 700 "$PGDATA"
as_pg_clean "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-instructions >"$LOGS/initdb.log" 2>&1 ||
	{ tail "$LOGS/initdb.log" >&2; die "initdb failed"; }
cat >>"$PGDATA/postgresql.conf" <<EOF

# bench/run.sh
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCK'
wal_level = replica
max_wal_senders = 10
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 8GB
checkpoint_timeout = 30min
wal_keep_size = $(((WAL_SEGMENTS + 16) * 16))MB  # keeps the segments we copy from recycling
shared_buffers = 256MB
EOF
touch "$LOGS/postgresql.log" && chown postgres: "$LOGS/postgresql.log"
as_pg_clean "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGS/postgresql.log" -w -t 120 start >/dev/null ||
	{ tail "$LOGS/postgresql.log" >&2; die "PostgreSQL did not start"; }
PG_STARTED=1
PG_VERSION=$(sql "SHOW server_version")

log "pgbench -i -s $SCALE"
sql "CREATE DATABASE bench" >/dev/null
t0=$(now)
as_pg "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -i -s "$SCALE" -q bench >"$LOGS/pgbench-init.log" 2>&1 ||
	{ tail "$LOGS/pgbench-init.log"; die "pgbench -i failed"; }
DB=bench sql "VACUUM ANALYZE" >/dev/null
sql "CHECKPOINT" >/dev/null
log "pgbench -i took $(sub "$t0" "$(now)") s"
DB_BYTES=$(sql "SELECT pg_database_size('bench')")
DATA_BYTES=$(($(dsize "$PGDATA") - $(dsize "$PGDATA/pg_wal")))
DB_PRETTY=$(sql "SELECT pg_size_pretty(pg_database_size('bench'))")
log "database bench: $DB_PRETTY ($DB_BYTES bytes); data directory without pg_wal: $(gb "$DATA_BYTES") GB"

# ---------------------------------------------------------------------------
# Real WAL segments from a pgbench run (archive_command is still /bin/true,
# so neither tool has seen them).
log "generating $WAL_SEGMENTS WAL segments with pgbench (TPC-B, 4 clients, a checkpoint every 5 s)"
[[ $(sql "SHOW wal_segment_size") == 16MB ]] || die "expected 16MB WAL segments"
DB=bench sql "SELECT count(*) FROM pgbench_branches" >/dev/null
sql "SELECT pg_switch_wal()" >/dev/null
START_SEG=$(sql "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
while :; do
	# A checkpoint before each 5 s run: the first change to each page after
	# it logs a full-page image, as in production, but more often, so the
	# WAL is FPI-heavy (the harder case for compression) and comes fast;
	# synchronous_commit=off: the same WAL without waiting for a flush per
	# commit. Without both, 20 segments took 9 minutes here.
	sql "CHECKPOINT" >/dev/null
	as_pg env PGOPTIONS="-c synchronous_commit=off" "$PGBIN/pgbench" -h "$SOCK" -p "$PGPORT" -U postgres -n -c 4 -j 2 -T 5 bench >>"$LOGS/pgbench-run.log" 2>&1 ||
		{ tail "$LOGS/pgbench-run.log"; die "pgbench failed"; }
	CUR_SEG=$(sql "SELECT pg_walfile_name(pg_current_wal_insert_lsn())")
	(($(segno "$CUR_SEG") - $(segno "$START_SEG") - 1 >= WAL_SEGMENTS)) && break
done
sql "SELECT pg_switch_wal()" >/dev/null
n=0
for f in $(ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort); do
	[[ $f > $START_SEG && $f < $CUR_SEG ]] || continue
	as_pg cp "$PGDATA/pg_wal/$f" "$SEGS/$f"
	n=$((n + 1))
	((n < WAL_SEGMENTS)) || break
done
((n == WAL_SEGMENTS)) || die "copied $n WAL segments, wanted $WAL_SEGMENTS"
SEG_LIST=$(ls "$SEGS")
SEG_ZST3=$(cat "$SEGS"/* | zstd -3 -T1 -c | wc -c)
log "copied $n segments $(echo "$SEG_LIST" | head -n1)…$(echo "$SEG_LIST" | tail -n1); zstd -3 ratio $(calc %.1f "$((n * 16777216)) / $SEG_ZST3")"
wait_archived

# ---------------------------------------------------------------------------
# The physical limit, page cache warm (the database was just written and the
# machine has far more RAM than it): reading the data directory costs CPU and
# memory bandwidth here, not disk. O_DIRECT reads give the disk's own rate.
log "physical limit: reading and compressing the data directory"
tarcmd() { tar -C "$PGDATA" --exclude=./pg_wal --exclude=./postmaster.pid -cf - . 2>/dev/null || [[ $? == 1 ]]; }
t0=$(now)
TAR_BYTES=$(tarcmd | wc -c)
LIM_READ=$(sub "$t0" "$(now)")
t0=$(now)
tarcmd | zstd -1 -T2 -q -c >/dev/null
LIM_ZSTD1=$(sub "$t0" "$(now)")
t0=$(now)
ZST3_BYTES=$(tarcmd | zstd -3 -T2 -q -c | wc -c)
LIM_ZSTD3=$(sub "$t0" "$(now)")
# O_DIRECT: the files of 1 MiB and more (the tables and indexes).
mapfile -t BIG < <(find "$PGDATA/base" -type f -size +1M)
t0=$(now)
DIRECT_BYTES=0
for f in "${BIG[@]}"; do
	dd if="$f" of=/dev/null bs=4M iflag=direct status=none
	DIRECT_BYTES=$((DIRECT_BYTES + $(stat -c %s "$f")))
done
LIM_DIRECT=$(sub "$t0" "$(now)")
LIM_DIRECT_MBS=$(calc %.0f "$DIRECT_BYTES / 1e6 / $LIM_DIRECT")
log "tar read $(gb "$TAR_BYTES") GB: ${LIM_READ} s; | zstd -1 -T2: ${LIM_ZSTD1} s; | zstd -3 -T2: ${LIM_ZSTD3} s; O_DIRECT read: $LIM_DIRECT_MBS MB/s"

# ---------------------------------------------------------------------------
# pgBackRest.
PGBR_CONF=$PGBR_DIR/pgbackrest.conf
PGBR_PASS=$(randhex 32)
cat >"$PGBR_CONF" <<EOF
[global]
repo1-path=$PGBR_DIR/repo
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$PGBR_PASS
repo1-retention-full=9999
compress-type=zst
process-max=2
archive-async=n
start-fast=y
log-path=$PGBR_DIR/log
lock-path=$PGBR_DIR/lock
spool-path=$PGBR_DIR/spool
log-level-console=info
log-level-file=info

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=$SOCK
pg1-user=postgres
EOF
chown postgres: "$PGBR_CONF"
chmod 600 "$PGBR_CONF"
install -d -o postgres -g postgres -m 700 "$PGBR_DIR/log" "$PGBR_DIR/lock" "$PGBR_DIR/spool"
PGBR_VERSION=$("$PGBR" version)
PGBR_ARCHIVE="$PGBR --config=$PGBR_CONF --stanza=bench archive-push %p"
pgbr() { as_pg_clean "$PGBR" --config="$PGBR_CONF" --stanza=bench "$@"; }
log "pgBackRest: stanza-create, check"
set_archive "$PGBR_ARCHIVE"
pgbr stanza-create >"$LOGS/pgbr-stanza-create.log" 2>&1 || { cat "$LOGS/pgbr-stanza-create.log"; die "stanza-create failed"; }
pgbr check >"$LOGS/pgbr-check.log" 2>&1 || { cat "$LOGS/pgbr-check.log"; die "pgbackrest check failed"; }

# ---------------------------------------------------------------------------
# MinIO and walvault.
if ((HAVE_WV)); then
	MINIO_PORT=$(free_port)
	MINIO_CPORT=$(free_port)
	MINIO_USER=bench$(randhex 6)
	MINIO_PASS=$(randhex 20)
	mkdir -p "$BENCH_DIR/minio/data" "$BENCH_DIR/minio/certs"
	log "MinIO on 127.0.0.1:$MINIO_PORT"
	env -i PATH=/usr/bin:/bin HOME="$BENCH_DIR/minio" MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASS" \
		MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=us-east-1 \
		"$MINIO_BIN" server "$BENCH_DIR/minio/data" --address "127.0.0.1:$MINIO_PORT" \
		--console-address "127.0.0.1:$MINIO_CPORT" --certs-dir "$BENCH_DIR/minio/certs" \
		>"$LOGS/minio.log" 2>&1 &
	MINIO_PID=$!
	MKBUCKET_ENDPOINT=127.0.0.1:$MINIO_PORT AWS_ACCESS_KEY_ID=$MINIO_USER AWS_SECRET_ACCESS_KEY=$MINIO_PASS \
		"$BENCH_DIR/mkbucket" walvault-bench || { tail "$LOGS/minio.log"; die "could not create the bucket"; }
	MINIO_VERSION=$("$MINIO_BIN" --version 2>/dev/null | head -n1 | awk '{ print $3 }')

	WV_RECIPIENT=$(as_pg "$WV" keygen "$WV_DIR/age.key" 2>"$LOGS/wv-keygen.log" | tail -n1)
	[[ $WV_RECIPIENT == age1* ]] || die "walvault keygen printed '$WV_RECIPIENT' (see $LOGS/wv-keygen.log)"
	# Format 2: what a host writes is signed by a writer key the root key
	# (in age.key) certified.
	as_pg "$WV" writer issue --age-identity-file "$WV_DIR/age.key" --name bench "$WV_DIR/writer.key" >"$LOGS/wv-writer.log" 2>&1 ||
		{ cat "$LOGS/wv-writer.log"; die "walvault writer issue failed"; }
	if ((HAVE_WVB)); then
		# Its own key: the identity file above also holds the root key,
		# which that version does not know.
		WVB_RECIPIENT=$(as_pg "$WVB" keygen "$WV_DIR/age-before.key" 2>"$LOGS/wv-keygen-before.log" | tail -n1)
		[[ $WVB_RECIPIENT == age1* ]] || die "walvault before: keygen printed '$WVB_RECIPIENT' (see $LOGS/wv-keygen-before.log)"
		# A before build of format 2 signs with a writer key of its own.
		WVB_WRITER=
		if as_pg "$WVB" writer issue --help >/dev/null 2>&1; then
			as_pg "$WVB" writer issue --age-identity-file "$WV_DIR/age-before.key" --name bench-before "$WV_DIR/writer-before.key" >"$LOGS/wv-writer-before.log" 2>&1 ||
				{ cat "$LOGS/wv-writer-before.log"; die "walvault before: writer issue failed"; }
			WVB_WRITER=$WV_DIR/writer-before.key
		fi
	fi
	# wv_conf NAME REPO-URL [before]: $WV_DIR/NAME.conf for one repository,
	# which it then creates with walvault init (with "before": for and by
	# walvault before, whose format-1 repositories have no writer keys).
	wv_conf() {
		local f=$WV_DIR/$1.conf bin=$WV
		[[ ${3:-} == before ]] && bin=$WVB
		{
			echo "repo = $2"
			if [[ ${3:-} == before ]]; then
				echo "age-recipients = $WVB_RECIPIENT"
				echo "age-identity-file = $WV_DIR/age-before.key"
				[[ -n $WVB_WRITER ]] && echo "writer-key-file = $WVB_WRITER"
			else
				echo "age-recipients = $WV_RECIPIENT"
				echo "age-identity-file = $WV_DIR/age.key"
				echo "writer-key-file = $WV_DIR/writer.key"
			fi
			echo "pg-url = host=$SOCK port=$PGPORT user=postgres"
			[[ -n $WV_LEVEL ]] && echo "compress-level = $WV_LEVEL"
			if [[ $2 == s3://* ]]; then
				echo "s3-endpoint = http://127.0.0.1:$MINIO_PORT"
				echo "s3-region = us-east-1"
				echo "s3-path-style = true"
				echo "s3-access-key = $MINIO_USER"
				echo "s3-secret-key = $MINIO_PASS"
			fi
		} >"$f"
		chown postgres: "$f"
		chmod 600 "$f"
		as_pg_clean "$bin" init --config "$f" >"$LOGS/wv-init-$1.log" 2>&1 || { cat "$LOGS/wv-init-$1.log"; die "walvault init ($1) failed"; }
	}
	WV_FILE_CONF=$WV_DIR/file.conf
	WV_S3_CONF=$WV_DIR/s3.conf
	wv_conf file "file://$WV_DIR/repo"
	wv_conf s3 "s3://walvault-bench/backups"
	WV_ARCHIVE_FILE="$WV wal-push --config $WV_FILE_CONF %p"
	WV_ARCHIVE_S3="$WV wal-push --config $WV_S3_CONF %p"
	if ((HAVE_WVB)); then
		WVB_FILE_CONF=$WV_DIR/file-before.conf
		wv_conf file-before "file://$WV_DIR/repo-before" before
		WVB_ARCHIVE_FILE="$WVB wal-push --config $WVB_FILE_CONF %p"
		WVB_FORMAT=$(sed -n 's/.*"format": *\([0-9]*\).*/\1/p' "$WV_DIR/repo-before/walvault.json" 2>/dev/null | head -n1)
		log "walvault before ($BEFORE_SHORT): directory repository of format ${WVB_FORMAT:-?}"
	fi
fi

# ---------------------------------------------------------------------------
# Base backups and restores.
declare -A BK RS BKRSS RSRSS BKCPU RSCPU BKSIZE RSSIZE
RATIO_PB= RATIO_CP= RATIO_BKB= RATIO_RSB=
declare -A REP_BK
TOOLS=(pgbackrest)
((HAVE_WVB)) && TOOLS=(walvault-before "${TOOLS[@]}")
((HAVE_WV)) && TOOLS=(walvault "${TOOLS[@]}")
((HAVE_WV && S3_BACKUP == 1)) && TOOLS+=(walvault-s3)

backup() { # TOOL REP
	local before
	case $1 in
	walvault) set_archive "$WV_ARCHIVE_FILE"; before=$(dsize "$WV_DIR/repo") ;;
	walvault-s3) set_archive "$WV_ARCHIVE_S3"; before=$(dsize "$BENCH_DIR/minio/data") ;;
	walvault-before) set_archive "$WVB_ARCHIVE_FILE"; before=$(dsize "$WV_DIR/repo-before") ;;
	pgbackrest) set_archive "$PGBR_ARCHIVE"; before=$(dsize "$PGBR_DIR/repo") ;;
	esac
	sql "CHECKPOINT" >/dev/null
	sync
	case $1 in
	walvault) timed "backup-$1-$2" env -i PATH=/usr/bin:/bin "$WV" backup --fast --config "$WV_FILE_CONF"
		BKSIZE[$1]=$(($(dsize "$WV_DIR/repo") - before)) ;;
	walvault-s3) timed "backup-$1-$2" env -i PATH=/usr/bin:/bin "$WV" backup --fast --config "$WV_S3_CONF"
		BKSIZE[$1]=$(($(dsize "$BENCH_DIR/minio/data") - before)) ;;
	walvault-before) timed "backup-$1-$2" env -i PATH=/usr/bin:/bin "$WVB" backup --fast --config "$WVB_FILE_CONF"
		BKSIZE[$1]=$(($(dsize "$WV_DIR/repo-before") - before)) ;;
	pgbackrest) timed "backup-$1-$2" env -i PATH=/usr/bin:/bin "$PGBR" --config="$PGBR_CONF" --stanza=bench --type=full backup
		BKSIZE[$1]=$(($(dsize "$PGBR_DIR/repo") - before)) ;;
	esac
	BK[$1]+="$T_WALL "
	REP_BK[$1]=$T_WALL
	BKRSS[$1]+="$T_RSS "
	BKCPU[$1]+="$T_CPU "
	log "backup   $(printf '%-15s' "$1") rep $2: $(printf '%7.2f' "$T_WALL") s  peak RSS $(mib "$T_RSS") MiB  CPU $T_CPU s  repo +$(gb "${BKSIZE[$1]}") GB  (load $(cut -d' ' -f1 /proc/loadavg))$(phases "$LOGS/backup-$1-$2.log")"
}

# phases LOG: where a backup's time went, from the tool's own log lines (best
# effort: prints nothing when the messages change).
phases() {
	awk '
	function t(s) { split(s, a, /[T:Z]/); return a[2] * 3600 + a[3] * 60 + a[4] }
	/msg="starting base backup"/ { s = t(substr($1, 6)) }
	/msg="base backup started"/ { b = t(substr($1, 6)) }
	/msg="base backup data stored"/ { d = t(substr($1, 6)) }
	/msg="WAL of the backup is archived"/ { w = t(substr($1, 6)) }
	/backup start archive =/ { split($2, a, ":"); pb = a[1] * 3600 + a[2] * 60 + a[3] }
	/backup command begin/ { split($2, a, ":"); ps = a[1] * 3600 + a[2] * 60 + a[3] }
	/execute non-exclusive backup stop/ { split($2, a, ":"); pd = a[1] * 3600 + a[2] * 60 + a[3] }
	/backup command end/ { split($2, a, ":"); pe = a[1] * 3600 + a[2] * 60 + a[3] }
	END {
		if (s && b && d && w) printf "\n           start %.2f s, data %.2f s, wait for WAL archived %.2f s", b - s, d - b, w - d
		if (ps && pb && pd && pe) printf "\n           start %.2f s, data %.2f s, stop + check archive %.2f s", pb - ps, pd - pb, pe - pd
	}' "$1" 2>/dev/null || true
}

# Restored directories are removed only at the end of each repetition, and
# the next repetition's restores wait until 65 s have passed since: on ext4
# without a journal (these VMs' root file system) the kernel will not reuse
# an inode freed less than 60 s ago (recently_deleted() in
# fs/ext4/ialloc.c) and scans past every such inode for each file it
# creates. Removing one restore right before the next made that scan 19-25%
# of a restore's CPU (perf record), for every tool alike, and more the more
# restores had just been removed.
DONE_DIRS=()
DELETED_AT=0
remove_restores() {
	((${#DONE_DIRS[@]})) || return 0
	rm -rf "${DONE_DIRS[@]}"
	DONE_DIRS=()
	sync
	DELETED_AT=$(now)
}
wait_inodes_reusable() {
	local left
	left=$(awk -v d="$DELETED_AT" -v n="$(now)" 'BEGIN { l = d + 65 - n; printf "%d", (l > 0 ? l + 1 : 0) }')
	if ((left > 0)); then
		log "waiting $left s: ext4 keeps the inodes of the restores just removed for 60 s"
		sleep "$left"
	fi
}

restore() { # TOOL REP
	local t0
	RESTORE_DIR=$BENCH_DIR/restore-$1-$2
	install -d -o postgres -g postgres -m 700 "$RESTORE_DIR"
	sync
	if ((RESTORE_PAUSE > 0)); then
		sleep "$RESTORE_PAUSE"
	fi
	case $1 in
	walvault) timed "restore-$1-$2" env -i PATH=/usr/bin:/bin "$WV" restore --pgdata "$RESTORE_DIR" --recovery-dir "$REC_DIR" --config "$WV_FILE_CONF" ;;
	walvault-s3) timed "restore-$1-$2" env -i PATH=/usr/bin:/bin "$WV" restore --pgdata "$RESTORE_DIR" --recovery-dir "$REC_DIR" --config "$WV_S3_CONF" ;;
	walvault-before) timed "restore-$1-$2" env -i PATH=/usr/bin:/bin "$WVB" restore --pgdata "$RESTORE_DIR" --recovery-dir "$REC_DIR" --config "$WVB_FILE_CONF" ;;
	pgbackrest) timed "restore-$1-$2" env -i PATH=/usr/bin:/bin "$PGBR" --config="$PGBR_CONF" --stanza=bench --pg1-path="$RESTORE_DIR" restore ;;
	copy) # the copy floor: the same files written again, then made durable
		timed "restore-$1-$2" bash -c 'cp -a "$1"/. "$2"/ && sync -f "$2"' copy "$COPY_SRC" "$RESTORE_DIR" ;;
	esac
	RS[$1]+="$T_WALL "
	RSRSS[$1]+="$T_RSS "
	RSCPU[$1]+="$T_CPU "
	RSSIZE[$1]=$(dsize "$RESTORE_DIR")
	REP_RS[$1]=$T_WALL
	# What the command left to flush: not part of its time, shown to be fair
	# to a tool that fsyncs its files and one that does not.
	t0=$(now)
	sync
	log "restore  $(printf '%-15s' "$1") rep $2: $(printf '%7.2f' "$T_WALL") s  peak RSS $(mib "$T_RSS") MiB  CPU $T_CPU s  wrote $(gb "${RSSIZE[$1]}") GB ($(find "$RESTORE_DIR" -type f | wc -l) files); sync afterwards $(sub "$t0" "$(now)") s  (load $(cut -d' ' -f1 /proc/loadavg))"
	if [[ $1 != copy && ! -e $COPY_SRC ]]; then
		# The first restored data directory is what the copy floor copies.
		mv "$RESTORE_DIR" "$COPY_SRC"
	else
		DONE_DIRS+=("$RESTORE_DIR")
	fi
}

# The order of the tools turns by one each repetition: whichever runs first
# after the backups finds the page cache and the machine in another state
# (a restore that follows a removed restore reuses its freed memory), and no
# tool should always be the one that pays for it. The copy floor (cp -a of a
# restored data directory into an empty one, then sync -f: writing the same
# bytes, durably) takes its turn among the restores; it copies the first
# restore of the run, so in the first repetition it comes last.
COPY_SRC=$BENCH_DIR/copy-source
# restore_command's settings (beside the data directory by default, where
# postgres may not create a directory: BENCH_DIR is root's). walvault
# removes and recreates it, so its parent is postgres's.
install -d -o postgres -g postgres -m 700 "$BENCH_DIR/rec"
REC_DIR=$BENCH_DIR/rec/recovery
RESTORERS=("${TOOLS[@]}" copy)
declare -A REP_RS
for ((rep = 1; rep <= REPS; rep++)); do
	ORDER=()
	for ((i = 0; i < ${#TOOLS[@]}; i++)); do ORDER+=("${TOOLS[(i + rep - 1) % ${#TOOLS[@]}]}"); done
	REP_BK=()
	for t in "${ORDER[@]}"; do backup "$t" "$rep"; done
	if ((HAVE_WVB)); then
		r_bb=$(calc %.2f "${REP_BK[walvault]} / ${REP_BK[walvault-before]}")
		RATIO_BKB+="$r_bb "
		log "backup   rep $rep (order: ${ORDER[*]}): walvault ${REP_BK[walvault]} s, walvault before ($BEFORE_SHORT) ${REP_BK[walvault-before]} s: after ÷ before $r_bb"
	fi
	ORDER=()
	for ((i = 0; i < ${#RESTORERS[@]}; i++)); do ORDER+=("${RESTORERS[(i + rep - 1) % ${#RESTORERS[@]}]}"); done
	REP_RS=()
	wait_inodes_reusable
	for t in "${ORDER[@]}"; do restore "$t" "$rep"; done
	remove_restores
	if ((HAVE_WV)); then
		r_pb=$(calc %.2f "${REP_RS[walvault]} / ${REP_RS[pgbackrest]}")
		r_cp=$(calc %.2f "${REP_RS[walvault]} / ${REP_RS[copy]}")
		RATIO_PB+="$r_pb "
		RATIO_CP+="$r_cp "
		log "restore  rep $rep (order: ${ORDER[*]}): walvault ${REP_RS[walvault]} s, pgBackRest ${REP_RS[pgbackrest]} s, copy floor ${REP_RS[copy]} s: walvault ÷ pgBackRest $r_pb (target ≤ 0.85), walvault ÷ copy floor $r_cp (target ≤ 1.3)"
	fi
	if ((HAVE_WVB)); then
		r_rb=$(calc %.2f "${REP_RS[walvault]} / ${REP_RS[walvault-before]}")
		RATIO_RSB+="$r_rb "
		log "restore  rep $rep: walvault ${REP_RS[walvault]} s, walvault before ($BEFORE_SHORT) ${REP_RS[walvault-before]} s: after ÷ before $r_rb"
	fi
done
rm -rf "$COPY_SRC"

# ---------------------------------------------------------------------------
# wal-push per segment: the same segment files, one process per segment as
# archive_command runs them, interleaved tool by tool (the order turning by
# one each segment) so that noise from the shared machine hits all of them
# alike. walvault, and walvault before (BEFORE_REV), push to fresh
# repositories (nothing deduplicated); pgBackRest has never seen these
# segments. The
# segments sit in a directory without archive_status/, so walvault's
# push-ahead finds nothing to add: this is the cost of one segment.
log "wal-push: $WAL_SEGMENTS segments per target"
declare -A WP
WP_TARGETS=(spawn-baseline pgbackrest)
if ((HAVE_WV)); then
	WP_TARGETS+=(walvault-file walvault-s3)
	WP_FILE_CONF=$WV_DIR/walpush-file.conf
	WP_S3_CONF=$WV_DIR/walpush-s3.conf
	wv_conf walpush-file "file://$WV_DIR/walpush-repo"
	wv_conf walpush-s3 "s3://walvault-bench/walpush-$(randhex 4)"
	if ((HAVE_WVB)); then
		# walvault before: the same direct wal-push, to fresh format-1
		# repositories of its own.
		WP_TARGETS+=(walvault-before-file walvault-before-s3)
		WPB_FILE_CONF=$WV_DIR/walpush-file-before.conf
		WPB_S3_CONF=$WV_DIR/walpush-s3-before.conf
		wv_conf walpush-file-before "file://$WV_DIR/walpush-repo-before" before
		wv_conf walpush-s3-before "s3://walvault-bench/walpush-before-$(randhex 4)" before
	fi
	# The same through a resident `walvault wal-server` (its own fresh
	# repository, so nothing is deduplicated against the direct pushes).
	WP_TARGETS+=(walvault-s3-server)
	WP_SRV_CONF=$WV_DIR/walpush-s3srv.conf
	wv_conf walpush-s3srv "s3://walvault-bench/walpush-srv-$(randhex 4)"
	WP_SOCK=$WV_DIR/wal.sock
	# The small client beside walvault (it runs walvault wal-push, found
	# beside itself, when the server does not answer).
	WVP=$BENCH_DIR/walvault-push
	[[ -x $WVP ]] || (cd "$SRC" && go build -o "$WVP" ./cmd/walvault-push) || die "walvault-push does not build"
	ln -sf "$WV" "$BENCH_DIR/walvault"
	# setpriv execs (runuser would stay as the parent and not pass on the
	# SIGTERM that stops the server, which then outlived the script).
	setpriv --reuid=postgres --regid=postgres --init-groups env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME=/var/lib/postgresql \
		"$WV" wal-server --config "$WP_SRV_CONF" --socket "$WP_SOCK" >"$LOGS/wal-server.log" 2>&1 &
	WP_SRV_PID=$!
	for _ in $(seq 100); do [[ -S $WP_SOCK ]] && break; sleep 0.1; done
	[[ -S $WP_SOCK ]] || { cat "$LOGS/wal-server.log"; die "walvault wal-server did not start"; }
fi
PGBR_ARCH_BEFORE=$(dsize "$PGBR_DIR/repo/archive")
# push_one TARGET SEGMENT-FILE: one timed push, added to WP[TARGET].
push_one() {
	local ms
	case $1 in
	spawn-baseline) ms=$(ms_of /bin/true) ;; # what starting any process costs here, measured the same way
	pgbackrest) ms=$(ms_of "$PGBR" --config="$PGBR_CONF" --stanza=bench archive-push "$2") ;;
	walvault-file) ms=$(ms_of "$WV" wal-push --config "$WP_FILE_CONF" "$2") ;;
	walvault-s3) ms=$(ms_of "$WV" wal-push --config "$WP_S3_CONF" "$2") ;;
	walvault-s3-server) ms=$(ms_of "$WVP" --config "$WP_SRV_CONF" --wal-server "$WP_SOCK" "$2") ;;
	walvault-before-file) ms=$(ms_of "$WVB" wal-push --config "$WPB_FILE_CONF" "$2") ;;
	walvault-before-s3) ms=$(ms_of "$WVB" wal-push --config "$WPB_S3_CONF" "$2") ;;
	*) die "push_one: unknown target $1" ;;
	esac
	WP[$1]+="$ms "
}
# The order of the targets turns by one each segment, as the tools' order
# does each repetition above.
i=0
for f in $SEG_LIST; do
	for ((j = 0; j < ${#WP_TARGETS[@]}; j++)); do
		push_one "${WP_TARGETS[(i + j) % ${#WP_TARGETS[@]}]}" "$SEGS/$f"
	done
	i=$((i + 1))
done
if ((HAVE_WV)); then
	kill "$WP_SRV_PID" 2>/dev/null || true
	wait "$WP_SRV_PID" 2>/dev/null || true # 143: ended by SIGTERM, as asked
	WP_SRV_PID=
	grep -q "directly\|running walvault wal-push" "$LOGS/walpush.log" && die "a wal-push through the wal-server archived by itself (see $LOGS/walpush.log)"
fi
WP_STORED_PGBR=$(($(dsize "$PGBR_DIR/repo/archive") - PGBR_ARCH_BEFORE))
((HAVE_WV)) && WP_STORED_WV=$(dsize "$WV_DIR/walpush-repo")
((HAVE_WVB)) && WP_STORED_WVB=$(dsize "$WV_DIR/walpush-repo-before")
for t in "${WP_TARGETS[@]}"; do
	log "wal-push $(printf '%-20s' "$t") ms: ${WP[$t]}"
done
# after ÷ before per segment (the two pushes of a segment ran back to back).
seg_ratios() { paste -d' ' <(nums "$1") <(nums "$2") | awk '{ printf "%.2f ", $1 / $2 }'; }
nums() { tr ' ' '\n' <<<"$1" | grep -v '^$'; }
if ((HAVE_WVB)); then
	WPR_FILE=$(seg_ratios "${WP[walvault-file]}" "${WP[walvault-before-file]}")
	WPR_S3=$(seg_ratios "${WP[walvault-s3]}" "${WP[walvault-before-s3]}")
	log "wal-push after ÷ before per segment: directory $WPR_FILE; MinIO $WPR_S3"
fi

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# Report.
med() { nums "$1" | median; }
maxof() { nums "$1" | sort -g | tail -n1; }
ratio() { # A/B, "n/a" when either is missing
	[[ -n ${1:-} && -n ${2:-} && $1 != n/a && $2 != n/a ]] && calc %.2f "$1 / $2" || echo n/a
}
verdict() { # VALUE OP LIMIT
	[[ $1 == n/a ]] && { echo "n/a"; return; }
	awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v < l; print ok ? "met" : "MISSED" }'
}
list() { nums "$1" | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 }'; }

PB_BK=$(med "${BK[pgbackrest]}")
PB_RS=$(med "${RS[pgbackrest]}")
WV_BK=n/a WV_RS=n/a S3_BK=n/a S3_RS=n/a
WV_BKRSS=n/a WV_RSRSS=n/a
if ((HAVE_WV)); then
	WV_BK=$(med "${BK[walvault]}")
	WV_RS=$(med "${RS[walvault]}")
	# The RSS target holds for every walvault run, file or S3.
	WV_BKRSS=$(mib "$(maxof "${BKRSS[walvault]} ${BKRSS[walvault-s3]:-}")")
	WV_RSRSS=$(mib "$(maxof "${RSRSS[walvault]} ${RSRSS[walvault-s3]:-}")")
	if [[ -n ${BK[walvault-s3]:-} ]]; then
		S3_BK=$(med "${BK[walvault-s3]}")
		S3_RS=$(med "${RS[walvault-s3]}")
	fi
fi
BK_RATIO=$(ratio "$PB_BK" "$WV_BK")
RS_RATIO=$(ratio "$PB_RS" "$WV_RS")
CP_RS=$(med "${RS[copy]}")
# Restore targets (issue 15): walvault ÷ pgBackRest ≤ 0.85 and walvault ÷
# copy floor ≤ 1.3, each the median of the per-repetition ratios (the tools
# of one repetition ran back to back, so they shared the machine's state).
RS_WV_PB=n/a RS_WV_CP=n/a
if [[ -n $RATIO_PB ]]; then
	RS_WV_PB=$(calc %.2f "$(med "$RATIO_PB")")
	RS_WV_CP=$(calc %.2f "$(med "$RATIO_CP")")
fi
wp_med() { [[ -n ${WP[$1]:-} ]] && calc %.1f "$(med "${WP[$1]}")" || echo n/a; }
wp_p95() { [[ -n ${WP[$1]:-} ]] && nums "${WP[$1]}" | p95 || echo n/a; }
PB_WPM=$(wp_med pgbackrest) PB_WP95=$(wp_p95 pgbackrest)
WF_WPM=$(wp_med walvault-file) WF_WP95=$(wp_p95 walvault-file)
WS_WPM=$(wp_med walvault-s3) WS_WP95=$(wp_p95 walvault-s3)
WSS_WPM=$(wp_med walvault-s3-server) WSS_WP95=$(wp_p95 walvault-s3-server)
SPAWN_MED=$(wp_med spawn-baseline)
# walvault before (BEFORE_REV): medians, and after ÷ before as the median
# of the per-repetition (per-segment) ratios: the two ran back to back.
B_LABEL="walvault before ($BEFORE_SHORT)"
if ((HAVE_WVB)); then
	WVB_BK=$(med "${BK[walvault-before]}")
	WVB_RS=$(med "${RS[walvault-before]}")
	AB_BK=$(calc %.2f "$(med "$RATIO_BKB")")
	AB_RS=$(calc %.2f "$(med "$RATIO_RSB")")
	BF_WPM=$(wp_med walvault-before-file) BF_WP95=$(wp_p95 walvault-before-file)
	BS_WPM=$(wp_med walvault-before-s3) BS_WP95=$(wp_p95 walvault-before-s3)
	AB_WPF=$(calc %.2f "$(med "$WPR_FILE")")
	AB_WPS=$(calc %.2f "$(med "$WPR_S3")")
	AB_BKCPU=$(ratio "$(med "${BKCPU[walvault]}")" "$(med "${BKCPU[walvault-before]}")")
	AB_RSCPU=$(ratio "$(med "${RSCPU[walvault]}")" "$(med "${RSCPU[walvault-before]}")")
fi

CPU_MODEL=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
DATE=$(date -u +'%Y-%m-%d %H:%M UTC')
GO_VERSION=$(go version 2>/dev/null | awk '{ print $3 }' || true)
fmt() { [[ $1 == n/a ]] && echo n/a || calc "$2" "$1"; }
rss_cell() { [[ -n ${1:-} ]] && mib "$(maxof "$1")" || echo n/a; }
gb_cell() { [[ -n ${1:-} ]] && gb "$1" || echo n/a; }

{
	echo "## Benchmark: walvault vs pgBackRest"
	echo
	echo "Machine: $(nproc) cores ($CPU_MODEL), $MEM_GB GB RAM, shared with other jobs (load average $LOAD_START at the start, $LOAD_END at the end)."
	echo "PostgreSQL $PG_VERSION; $PGBR_VERSION (zst level 3 = its default, aes-256-cbc, process-max=2, archive-async=n)."
	if ((HAVE_WV)); then
		echo "walvault $WV_VERSION (zstd level ${WV_LEVEL:-1 = its default}, age X25519; $GO_VERSION); MinIO $MINIO_VERSION on 127.0.0.1."
	else
		echo "walvault: **not measured** ($([[ $WALVAULT == 0 ]] && echo "WALVAULT=0" || echo "it did not build"))."
	fi
	echo "Data: \`pgbench -i -s $SCALE\`: database $DB_PRETTY, data directory without pg_wal $(gb "$DATA_BYTES") GB. Page cache warm throughout."
	echo "Date: $DATE. Command: \`$CMDLINE\` (as root)."
	echo
	echo "| | walvault (file) | walvault (MinIO) | pgBackRest (file) | pgBackRest ÷ walvault (file) | target |"
	echo "|---|---:|---:|---:|---:|---|"
	echo "| base backup, s (median of $REPS) | $(fmt "$WV_BK" %.2f) | $(fmt "$S3_BK" %.2f) | $(fmt "$PB_BK" %.2f) | **${BK_RATIO}×** | ≥ 1.5×: $(verdict "$BK_RATIO" ">=" 1.5) |"
	echo "| restore (files written, before WAL replay), s | $(fmt "$WV_RS" %.2f) | $(fmt "$S3_RS" %.2f) | $(fmt "$PB_RS" %.2f) | **${RS_RATIO}×** | |"
	echo "| copy floor, no tool: \`cp -a\` of a restored data directory + \`sync -f\`, s (median) | $(fmt "$CP_RS" %.2f) | | | | |"
	echo "| restore: walvault ÷ pgBackRest, median of the per-repetition ratios | **${RS_WV_PB}** | | | | ≤ 0.85: $(verdict "$RS_WV_PB" "<" 0.8501) |"
	echo "| restore: walvault ÷ copy floor, median of the per-repetition ratios | **${RS_WV_CP}** | | | | ≤ 1.3: $(verdict "$RS_WV_CP" "<" 1.3001) |"
	echo "| wal-push per 16 MiB segment, median ms (n=$WAL_SEGMENTS) | $WF_WPM | $WS_WPM | $PB_WPM | $(ratio "$PB_WPM" "$WF_WPM")× | MinIO < 100 ms: $(verdict "$WS_WPM" "<" 100) |"
	echo "| wal-push per segment, p95 ms | $WF_WP95 | $WS_WP95 | $PB_WP95 | $(ratio "$PB_WP95" "$WF_WP95")× | |"
	echo "| walvault-push --wal-server (resident \`walvault wal-server\`), median / p95 ms | | $WSS_WPM / $WSS_WP95 | $PB_WPM / $PB_WP95 | $(ratio "$PB_WPM" "$WSS_WPM")× (MinIO) | MinIO < 100 ms: $(verdict "$WSS_WPM" "<" 100) |"
	echo "| (of which: starting a process here, \`/bin/true\` timed the same way, median ms) | $SPAWN_MED | $SPAWN_MED | $SPAWN_MED | | |"
	echo "| peak RSS, backup, MiB | $(rss_cell "${BKRSS[walvault]:-}") | $(rss_cell "${BKRSS[walvault-s3]:-}") | $(rss_cell "${BKRSS[pgbackrest]}") | | < 256 MiB: $(verdict "$WV_BKRSS" "<" 256) |"
	echo "| peak RSS, restore, MiB | $(rss_cell "${RSRSS[walvault]:-}") | $(rss_cell "${RSRSS[walvault-s3]:-}") | $(rss_cell "${RSRSS[pgbackrest]}") | | < 256 MiB: $(verdict "$WV_RSRSS" "<" 256) |"
	echo "| CPU (user+sys) of the backup command, s | $(fmt "$(med "${BKCPU[walvault]:-}")" %.1f) | $(fmt "$(med "${BKCPU[walvault-s3]:-}")" %.1f) | $(fmt "$(med "${BKCPU[pgbackrest]}")" %.1f) | | |"
	echo "| repository growth per backup, GB | $(gb_cell "${BKSIZE[walvault]:-}") | $(gb_cell "${BKSIZE[walvault-s3]:-}") | $(gb "${BKSIZE[pgbackrest]}") | | |"
	if ((HAVE_WV)); then
		echo "| WAL stored for the $WAL_SEGMENTS segments, MiB | $(calc %.1f "$WP_STORED_WV / 1048576") | | $(calc %.1f "$WP_STORED_PGBR / 1048576") | | |"
	fi
	echo
	echo "Physical limit on this machine, data directory without pg_wal ($(gb "$TAR_BYTES") GB as one tar stream, page cache warm):"
	echo "\`tar | wc\` $LIM_READ s ($(calc %.0f "$TAR_BYTES / 1e6 / $LIM_READ") MB/s), \`tar | zstd -1 -T2\` $LIM_ZSTD1 s, \`tar | zstd -3 -T2\` $LIM_ZSTD3 s (→ $(gb "$ZST3_BYTES") GB);"
	echo "O_DIRECT read of the table and index files (disk, no cache): $LIM_DIRECT_MBS MB/s."
	if ((HAVE_WV)); then
		echo "walvault's backup takes $(ratio "$WV_BK" "$LIM_READ")× the time of reading the data directory and $(ratio "$WV_BK" "$LIM_ZSTD1")× that of \`zstd -1 -T2\` on it."
	fi
	echo
	echo -n "Each repetition (s): "
	if ((HAVE_WV)); then
		echo "walvault backup [$(list "${BK[walvault]}")], restore [$(list "${RS[walvault]}")];"
	fi
	if [[ -n ${BK[walvault-s3]:-} ]]; then
		echo "walvault to MinIO backup [$(list "${BK[walvault-s3]}")], restore [$(list "${RS[walvault-s3]}")];"
	fi
	echo "pgBackRest backup [$(list "${BK[pgbackrest]}")], restore [$(list "${RS[pgbackrest]}")];"
	echo "copy floor [$(list "${RS[copy]}")]."
	if [[ -n $RATIO_PB ]]; then
		echo "Restore ratios per repetition: walvault ÷ pgBackRest [$(list "$RATIO_PB")], walvault ÷ copy floor [$(list "$RATIO_CP")]."
	fi
	echo "Backup times include each tool's wait for the backup's WAL to be archived (walvault wal-push or pgBackRest archive-push as archive_command); wal-push times include process start."
	if ((HAVE_WVB)); then
		echo
		echo "### walvault against $B_LABEL"
		echo
		echo "The cost of format 2 (signed objects, names bound to content, completeness heads, WAL page checks):"
		echo "walvault $WV_VERSION with its default repository (format 2, writer key) against walvault built from"
		echo "\`$BEFORE_REV\` = $BEFORE_HASH (format-${WVB_FORMAT:-?} repository, no writer key), in the same run and the same rotation; directory repositories unless said."
		echo
		echo "| | walvault | $B_LABEL | after ÷ before |"
		echo "|---|---:|---:|---:|"
		echo "| base backup, s (median of $REPS) | $(fmt "$WV_BK" %.2f) | $(fmt "$WVB_BK" %.2f) | **$AB_BK** (median of the per-repetition ratios) |"
		echo "| restore (files written, before WAL replay), s | $(fmt "$WV_RS" %.2f) | $(fmt "$WVB_RS" %.2f) | **$AB_RS** (same) |"
		echo "| wal-push per 16 MiB segment, median ms (n=$WAL_SEGMENTS) | $WF_WPM | $BF_WPM | **$AB_WPF** (median of the per-segment ratios) |"
		echo "| wal-push per segment to MinIO, median ms | $WS_WPM | $BS_WPM | **$AB_WPS** (same) |"
		echo "| wal-push p95 ms, directory / MinIO | $WF_WP95 / $WS_WP95 | $BF_WP95 / $BS_WP95 | $(ratio "$WF_WP95" "$BF_WP95") / $(ratio "$WS_WP95" "$BS_WP95") |"
		echo "| CPU (user+sys) of the backup / restore command, s | $(fmt "$(med "${BKCPU[walvault]}")" %.1f) / $(fmt "$(med "${RSCPU[walvault]}")" %.1f) | $(fmt "$(med "${BKCPU[walvault-before]}")" %.1f) / $(fmt "$(med "${RSCPU[walvault-before]}")" %.1f) | $AB_BKCPU / $AB_RSCPU |"
		echo "| peak RSS, backup / restore, MiB | $(rss_cell "${BKRSS[walvault]}") / $(rss_cell "${RSRSS[walvault]}") | $(rss_cell "${BKRSS[walvault-before]}") / $(rss_cell "${RSRSS[walvault-before]}") | |"
		echo "| repository growth per backup, GB | $(gb_cell "${BKSIZE[walvault]}") | $(gb_cell "${BKSIZE[walvault-before]}") | |"
		echo "| WAL stored for the $WAL_SEGMENTS segments, MiB | $(calc %.1f "$WP_STORED_WV / 1048576") | $(calc %.1f "$WP_STORED_WVB / 1048576") | |"
		echo
		echo "Each repetition (s): walvault backup [$(list "${BK[walvault]}")], restore [$(list "${RS[walvault]}")];"
		echo "$B_LABEL backup [$(list "${BK[walvault-before]}")], restore [$(list "${RS[walvault-before]}")];"
		echo "after ÷ before: backup [$(list "$RATIO_BKB")], restore [$(list "$RATIO_RSB")];"
		echo "wal-push after ÷ before per segment: directory [$(list "$WPR_FILE")], MinIO [$(list "$WPR_S3")]."
	fi
} >"$BENCH_DIR/results.md"

echo
echo "================================================================================"
echo " walvault vs pgBackRest: SCALE=$SCALE ($DB_PRETTY), REPS=$REPS, WAL_SEGMENTS=$WAL_SEGMENTS"
echo "================================================================================"
printf '%-36s %12s %12s %12s %10s\n' "" "walvault" "wv (MinIO)" "pgBackRest" "pgBR/wv"
printf '%-36s %12s %12s %12s %10s\n' "base backup, s" "$(fmt "$WV_BK" %.2f)" "$(fmt "$S3_BK" %.2f)" "$(fmt "$PB_BK" %.2f)" "$BK_RATIO"
printf '%-36s %12s %12s %12s %10s\n' "restore, s" "$(fmt "$WV_RS" %.2f)" "$(fmt "$S3_RS" %.2f)" "$(fmt "$PB_RS" %.2f)" "$RS_RATIO"
printf '%-36s %12s %12s %12s %10s\n' "wal-push median, ms" "$WF_WPM" "$WS_WPM" "$PB_WPM" "$(ratio "$PB_WPM" "$WF_WPM")"
printf '%-36s %12s %12s %12s %10s\n' "wal-push --wal-server median, ms" "" "$WSS_WPM" "$PB_WPM" "$(ratio "$PB_WPM" "$WSS_WPM")"
printf '%-36s %12s %12s %12s %10s\n' "wal-push p95, ms" "$WF_WP95" "$WS_WP95" "$PB_WP95" "$(ratio "$PB_WP95" "$WF_WP95")"
printf '%-36s %12s\n' "process start (/bin/true) median, ms" "$SPAWN_MED"
printf '%-36s %12s %12s %12s\n' "peak RSS backup, MiB" "$(rss_cell "${BKRSS[walvault]:-}")" "$(rss_cell "${BKRSS[walvault-s3]:-}")" "$(rss_cell "${BKRSS[pgbackrest]}")"
printf '%-36s %12s %12s %12s\n' "peak RSS restore, MiB" "$(rss_cell "${RSRSS[walvault]:-}")" "$(rss_cell "${RSRSS[walvault-s3]:-}")" "$(rss_cell "${RSRSS[pgbackrest]}")"
printf '%-36s %12s\n' "copy floor (cp -a + sync -f), s" "$(fmt "$CP_RS" %.2f)"
printf '%-36s %12s\n' "restore walvault ÷ pgBackRest" "$RS_WV_PB"
printf '%-36s %12s\n' "restore walvault ÷ copy floor" "$RS_WV_CP"
printf '%-36s %12s\n' "tar read of data dir, s" "$LIM_READ"
printf '%-36s %12s\n' "tar | zstd -1 -T2, s" "$LIM_ZSTD1"
printf '%-36s %12s\n' "tar | zstd -3 -T2, s" "$LIM_ZSTD3"
printf '%-36s %12s\n' "walvault backup ÷ tar read" "$(ratio "$WV_BK" "$LIM_READ")"
if ((HAVE_WVB)); then
	echo
	printf '%-36s %12s %26s %14s\n' "" "walvault" "$B_LABEL" "after÷before"
	printf '%-36s %12s %26s %14s\n' "base backup, s" "$(fmt "$WV_BK" %.2f)" "$(fmt "$WVB_BK" %.2f)" "$AB_BK"
	printf '%-36s %12s %26s %14s\n' "restore, s" "$(fmt "$WV_RS" %.2f)" "$(fmt "$WVB_RS" %.2f)" "$AB_RS"
	printf '%-36s %12s %26s %14s\n' "wal-push median, ms (directory)" "$WF_WPM" "$BF_WPM" "$AB_WPF"
	printf '%-36s %12s %26s %14s\n' "wal-push median, ms (MinIO)" "$WS_WPM" "$BS_WPM" "$AB_WPS"
	echo "(after ÷ before: medians of the per-repetition and per-segment ratios)"
fi
echo "targets: restore ≤0.85× pgBackRest: $(verdict "$RS_WV_PB" "<" 0.8501), ≤1.3× copy floor: $(verdict "$RS_WV_CP" "<" 1.3001); backup ≥1.5× faster: $(verdict "$BK_RATIO" ">=" 1.5); wal-push to MinIO median <100 ms: $(verdict "$WS_WPM" "<" 100);" \
	"RSS <256 MiB: backup $(verdict "$WV_BKRSS" "<" 256), restore $(verdict "$WV_RSRSS" "<" 256)"
echo
echo "----- $BENCH_DIR/results.md -----"
cat "$BENCH_DIR/results.md"
if [[ $KEEP != 1 ]]; then
	if mkdir -p "$SRC/bench/out" && cp "$BENCH_DIR/results.md" "$SRC/bench/out/results-$(date -u +%Y%m%dT%H%M%SZ)-s$SCALE.md"; then
		log "results.md copied to bench/out/ (BENCH_DIR is removed)"
	fi
fi

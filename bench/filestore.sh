#!/usr/bin/env bash
# bench/filestore.sh: walvault filestore push on an Odoo-shaped filestore of
# N small files (default 100,000; 1-64 KiB, log-uniform, ~60% incompressible,
# deterministic: bench/filestoregen), first to a directory repository and to
# MinIO, then a rescan after 1% new files. Prints time, objects stored and
# bytes. A benchmark, not a test: it fails only when a tool fails.
#
# Usage (as root, from the repository):
#   bench/filestore.sh
#   N=20000 bench/filestore.sh
#
# Knobs: N=100000, NEW= (default N/100), WORKERS= (walvault's default),
# PGBIN=/usr/lib/postgresql/15/bin (a throwaway cluster, only for
# walvault init), WALVAULT_MINIO_BIN=$HOME/.cache/walvault/bin/minio,
# S3=1 (0 skips MinIO), LARGE=0 (then adds LARGE attachments of 100 MiB
# and pushes them: the peak RSS of streaming), KEEP=0 (1 keeps the working
# directory).
set -euo pipefail

N=${N:-100000}
NEW=${NEW:-$((N / 100))}
MINIO_BIN=${WALVAULT_MINIO_BIN:-$HOME/.cache/walvault/bin/minio}
S3=${S3:-1}
LARGE=${LARGE:-0}
BENCH_NAME=filestore
# shellcheck source=bench/scratch.sh
. "$(dirname "$0")/scratch.sh"
randhex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

log "building walvault, filestoregen, mkbucket"
(cd "$SRC" && go build -o "$DIR/walvault" ./cmd/walvault && go build -o "$DIR/filestoregen" ./bench/filestoregen &&
	go build -o "$DIR/mkbucket" ./bench/mkbucket)
chmod 755 "$DIR/walvault"
WV=$DIR/walvault

# walvault init reads the cluster's identity: a throwaway cluster.
PORT=$(free_port)
as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust >/dev/null
printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$PORT" "$DIR" >>"$PGDATA/postgresql.conf"
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$DIR/pg.log" -w start >/dev/null
PG_STARTED=1

"$WV" keygen "$DIR/key.txt" >"$DIR/recipient" 2>/dev/null
"$WV" writer issue --age-identity-file "$DIR/key.txt" --name bench "$DIR/writer.key" >/dev/null
export WALVAULT_AGE_RECIPIENTS WALVAULT_AGE_IDENTITY_FILE=$DIR/key.txt WALVAULT_WRITER_KEY_FILE=$DIR/writer.key
WALVAULT_AGE_RECIPIENTS=$(cat "$DIR/recipient")
PGPARAMS=(PGHOST="$DIR" PGPORT="$PORT" PGUSER=postgres)

REPOS=(dir)
env "${PGPARAMS[@]}" WALVAULT_REPO="file://$DIR/repo" "$WV" init >/dev/null 2>&1
if [[ $S3 == 1 ]]; then
	[[ -x $MINIO_BIN ]] || { log "no MinIO binary at $MINIO_BIN (set WALVAULT_MINIO_BIN, or S3=0)"; exit 1; }
	MPORT=$(free_port) MCPORT=$(free_port)
	MUSER=bench$(randhex 6) MPASS=$(randhex 20)
	mkdir -p "$DIR/minio/data" "$DIR/minio/certs"
	env -i PATH=/usr/bin:/bin HOME="$DIR/minio" MINIO_ROOT_USER="$MUSER" MINIO_ROOT_PASSWORD="$MPASS" \
		MINIO_BROWSER=off MINIO_UPDATE=off MINIO_REGION=us-east-1 \
		"$MINIO_BIN" server "$DIR/minio/data" --address "127.0.0.1:$MPORT" --console-address "127.0.0.1:$MCPORT" \
		--certs-dir "$DIR/minio/certs" >"$DIR/minio.log" 2>&1 &
	MINIO_PID=$!
	MKBUCKET_ENDPOINT=127.0.0.1:$MPORT AWS_ACCESS_KEY_ID=$MUSER AWS_SECRET_ACCESS_KEY=$MPASS "$DIR/mkbucket" bench
	S3ENV=(WALVAULT_REPO=s3://bench/filestore WALVAULT_S3_ENDPOINT=http://127.0.0.1:$MPORT WALVAULT_S3_PATH_STYLE=true
		WALVAULT_S3_REGION=us-east-1 AWS_ACCESS_KEY_ID=$MUSER AWS_SECRET_ACCESS_KEY=$MPASS)
	env "${PGPARAMS[@]}" "${S3ENV[@]}" "$WV" init >/dev/null 2>&1
	REPOS+=(s3)
fi
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
PG_STARTED=0

wv() { # wv REPO COMMAND ARGS...: COMMAND with the repository's environment
	local r=$1
	shift
	if [[ $r == dir ]]; then
		env WALVAULT_REPO="file://$DIR/repo" "$@"
	else
		env "${S3ENV[@]}" "$@"
	fi
}

FS=$DIR/odoo/filestore/bench
log "generating $N files"
"$DIR/filestoregen" "$FS" 0 "$N" | tee "$DIR/gen.txt" >&2
SRCBYTES=$(du -sb "$FS" | cut -f1)

declare -A T1 T2 T3 O1 O2 B1 M1 M2
push() { # push REPO PHASE; peak RSS (KiB) in $DIR/rss-REPO-PHASE
	local t0 t1
	t0=$(now)
	wv "$1" /usr/bin/time -f %M -o "$DIR/rss-$1-$2" "$WV" filestore push --filestore "$FS" --db bench --state-dir "$DIR/state-$1" \
		${WORKERS:+--workers "$WORKERS"} --json >"$DIR/push-$1-$2.json" 2>"$DIR/push-$1-$2.log"
	t1=$(now)
	secs "$t0" "$t1"
}
mib() { awk '{ printf "%.0f MiB", $1 / 1024 }' "$1"; }
field() { grep -o "\"$1\":[^,}]*" "$2" | head -1 | cut -d: -f2- | tr -d '"'; }

for r in "${REPOS[@]}"; do
	log "first push to $r (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	T1[$r]=$(push "$r" first)
	O1[$r]=$(field uploaded "$DIR/push-$r-first.json")
	B1[$r]=$(field stored_bytes "$DIR/push-$r-first.json")
	M1[$r]=$(mib "$DIR/rss-$r-first")
	log "  ${T1[$r]} s, ${O1[$r]} objects stored, ${B1[$r]} bytes, peak RSS ${M1[$r]}"
done
log "adding $NEW new files"
"$DIR/filestoregen" "$FS" "$N" "$NEW" >&2
for r in "${REPOS[@]}"; do
	log "rescan of $r (load: $(cut -d' ' -f1-3 /proc/loadavg))"
	T2[$r]=$(push "$r" rescan)
	O2[$r]=$(field uploaded "$DIR/push-$r-rescan.json")
	M2[$r]=$(mib "$DIR/rss-$r-rescan")
	log "  ${T2[$r]} s, ${O2[$r]} objects stored, $(field unchanged "$DIR/push-$r-rescan.json") unchanged (not read)"
	log "rescan of $r, nothing new"
	T3[$r]=$(push "$r" idle)
	log "  ${T3[$r]} s, $(field uploaded "$DIR/push-$r-idle.json") objects stored"
done

if ((LARGE > 0)); then
	for i in $(seq 1 "$LARGE"); do
		f=$DIR/large.tmp
		head -c $((100 << 20)) /dev/urandom >"$f"
		h=$(sha1sum "$f" | cut -c1-40)
		mkdir -p "$FS/${h:0:2}" && mv "$f" "$FS/${h:0:2}/$h"
	done
	for r in "${REPOS[@]}"; do
		log "push of $LARGE new files of 100 MiB to $r"
		TL=$(push "$r" large)
		log "  $TL s, $(field uploaded "$DIR/push-$r-large.json") objects stored, peak RSS $(mib "$DIR/rss-$r-large")"
	done
fi

echo
echo "walvault filestore push: $N files, $SRCBYTES bytes ($(cat "$DIR/gen.txt")); $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-11s %-8s %-13s %-9s %-13s %-8s %-9s\n' repository "first push" objects "stored bytes" "peak RSS" "rescan +$NEW" objects "no change"
for r in "${REPOS[@]}"; do
	printf '%-10s %-11s %-8s %-13s %-9s %-13s %-8s %-9s\n' "$r" "${T1[$r]} s" "${O1[$r]}" "${B1[$r]}" "${M1[$r]}" "${T2[$r]} s" "${O2[$r]}" "${T3[$r]} s"
done

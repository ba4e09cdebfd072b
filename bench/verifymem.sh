#!/usr/bin/env bash
# bench/verifymem.sh: peak memory of `walvault verify --backups-only` on a
# repository of BACKUPS block backups of a pgbench database (scale SCALE,
# pgbench -T PGBENCH_SECONDS between backups), for this checkout and for
# BEFORE_REV (a git revision built the same way; none skips it), the two
# alternating, REPS times each. Prints every repetition: wall time and the
# peak RSS from /usr/bin/time -v, and the blocks the repository's backups
# reference (walvault info --json).
#
#   SCALE=70 BACKUPS=3 REPS=3 BEFORE_REV=e4066a6 bash bench/verifymem.sh
BENCH_NAME=verifymem
SCALE=${SCALE:-70}
BACKUPS=${BACKUPS:-3}
REPS=${REPS:-3}
PGBENCH_SECONDS=${PGBENCH_SECONDS:-30}
BEFORE_REV=${BEFORE_REV:-none}
# shellcheck source=bench/pgsetup.sh
. "$(dirname "$0")/pgsetup.sh"

BEFORE=
if [[ $BEFORE_REV != none ]]; then
	log "building walvault at $BEFORE_REV"
	git -C "$SRC" worktree add --detach "$DIR/before-src" "$BEFORE_REV" >/dev/null 2>&1
	(cd "$DIR/before-src" && go build -o "$DIR/walvault-before" ./cmd/walvault)
	git -C "$SRC" worktree remove --force "$DIR/before-src"
	chmod 755 "$DIR/walvault-before"
	BEFORE=$DIR/walvault-before
fi

log "pgbench -i -s $SCALE"
as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -i -s "$SCALE" -q postgres >/dev/null 2>&1
for i in $(seq 1 "$BACKUPS"); do
	if ((i > 1)); then
		as_pg "$PGBIN/pgbench" -h "$DIR" -p "$PORT" -U postgres -T "$PGBENCH_SECONDS" -c 2 postgres >/dev/null 2>&1
	fi
	wv_pg backup --fast >/dev/null 2>&1
	log "backup $i taken"
done
wv_pg info --json | python3 -c 'import json, sys
b = json.load(sys.stdin)["backups"]
print("%d backups of %d blocks each (%.2f GB), %.2f GB stored" % (len(b), b[-1]["bytes"] // 8192, b[-1]["bytes"] / 1e9, sum(x["stored_bytes"] for x in b) / 1e9))' 

run() { # run NAME BIN
	local t=$DIR/time-$1
	as_pg env WALVAULT_REPO="$WALVAULT_REPO" WALVAULT_AGE_IDENTITY_FILE="$DIR/key.txt" \
		/usr/bin/time -v -o "$t" "$2" verify --backups-only >"$DIR/verify-$1.log" 2>&1 || { log "$1: verify failed"; tail -5 "$DIR/verify-$1.log" >&2; exit 1; }
	printf '%-7s %6.2f s  peak RSS %4d MiB  (%s)\n' "$1" \
		"$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$t")" \
		"$(($(awk -F': ' '/Maximum resident set size/ { print $2 }' "$t") / 1024))" \
		"$(grep -o 'OK: [0-9]* objects checked ([^)]*)\|FAILED.*' "$DIR/verify-$1.log" | head -1)"
}
for r in $(seq 1 "$REPS"); do
	echo "repetition $r"
	if ((r % 2)) || [[ -z $BEFORE ]]; then
		run now "$WV"
		[[ -z $BEFORE ]] || run before "$BEFORE"
	else
		run before "$BEFORE"
		run now "$WV"
	fi
done

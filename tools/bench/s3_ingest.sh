#!/usr/bin/env bash
# s3_ingest.sh - `cp -r` of 10,000 ~2 KB text files into S3 through lodefs,
# s3fs-fuse and `rclone mount`: wall time and HTTP requests.
#
# usage: tools/bench/s3_ingest.sh [LODEFS] [--files N] [--runs R] [--dir DIR]
#                                 [--clients "C..."] [--keep]
#
# Starts s3rver 3.7.1 (tests/s3/s3rver.sh) with tests/s3/faultproxy.py in
# front of it counting requests (--count-file); every client talks to the
# proxy.  Generates N files (default 10,000; tools/bench/corpus.sh, the
# corpus of ingest.sh).  Then R times (default 3), for each client, into a
# fresh prefix of bucket "bench", with a fresh cache:
#   lodefs-fsync  lodefs -o sync=fsync s3://bench/P MNT; cp -r SRC MNT/docs/
#                 durable: an fsync of the last file (which waits for the
#                 commit of everything pending), then .lodefs/stats
#                 writes.pending_documents checked to be 0
#   lodefs-close  lodefs -o sync=close: durable when cp returns
#   s3fs          s3fs bench:/P MNT (Debian's s3fs, default options but
#                 use_path_request_style): it uploads at close, so durable
#                 when cp returns
#   rclone        rclone mount :s3:bench/P MNT --vfs-cache-mode writes
#                 --vfs-write-back 0s (upload right after close, not the
#                 default 5 s later): durable when `rclone rc vfs/stats`
#                 shows no upload queued or in progress (polled every 0.1 s)
# Times: from the start of cp to its return, and to durable.  Requests: as
# the proxy counts them between the same two points (mount and unmount
# excluded); for lodefs also backend.requests of .lodefs/stats (they must
# agree).  Prints the medians, files/s, requests, and lodefs's ratios
# against s3fs and rclone (speed: their time / ours; requests: theirs /
# ours), with the issue 4 targets (sync=fsync: >= 3x faster and >= 10x
# fewer requests than s3fs).  Before each copy: sync, drop the page cache
# (as root), read SRC back in.  Unmounts and stops the servers (by PID)
# on any exit.  Installs s3fs, rclone (tools/deps.sh) if missing.
# DIR defaults to ${TMPDIR:-/tmp}/lodefs-bench-s3ingest, removed at the end
# unless --keep.  LODEFS defaults to the newest build*/fs/lodefs.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lodefs=
files=10000
runs=3
dir=${TMPDIR:-/tmp}/lodefs-bench-s3ingest
clients="lodefs-fsync lodefs-close s3fs rclone"
keep=0

usage() {
	sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--files) files=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--dir) dir=${2:?}; shift 2 ;;
	--clients) clients=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) lodefs=$1; shift ;;
	esac
done

# shellcheck source=benchlib.sh
. "$root/tools/bench/benchlib.sh"
lodefs=$(bench_binary s3_ingest.sh fs/lodefs "$lodefs") || exit 1
need=()
command -v s3fs >/dev/null 2>&1 || need+=(s3fs)
command -v rclone >/dev/null 2>&1 || need+=(rclone)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
if [ ${#need[@]} -gt 0 ]; then
	# shellcheck source=../deps.sh
	. "$root/tools/deps.sh"
	lodefs_apt "${need[@]}"
fi

if [ -e "$dir" ] && [ ! -f "$dir/.lodefs-bench-s3ingest" ]; then
	echo "s3_ingest.sh: $dir exists and is not ours; pass another --dir" >&2
	exit 1
fi
mkdir -p "$dir"
touch "$dir/.lodefs-bench-s3ingest"
dir=$(realpath "$dir")
# shellcheck source=s3lib.sh
. "$root/tools/bench/s3lib.sh"

src=$dir/src
res=$dir/results
: >"$res"
mnt_pid=
mnt_dir=
mnt_log=
unmount() {
	if [ -n "$mnt_dir" ]; then
		fusermount3 -u "$mnt_dir" 2>/dev/null ||
			{ sleep 1; fusermount3 -u -z "$mnt_dir" 2>/dev/null; } || true
	fi
	if [ -n "$mnt_pid" ]; then
		local rc=0
		wait "$mnt_pid" || rc=$?
		if [ "$rc" != 0 ] && ! grep -q "^s3fs-" <<<"$(basename "$mnt_dir" | sed "s/^mnt.//")"; then
			echo "warning: the daemon $mnt_pid exited with $rc; its stderr:" >&2
			tail -n 20 "$mnt_log" >&2 || true
		fi
	fi
	mnt_pid=
	mnt_dir=
}
cleanup() {
	unmount
	s3_down
	[ "$keep" = 1 ] || rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dropped=1
cold() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		dropped=0
	fi
	find "$src" -type f -exec cat {} + >/dev/null
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

s3_up "$dir/s3" bench
printf '%s\n' "S3RVER:S3RVER" >"$dir/passwd"
chmod 600 "$dir/passwd"
rc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

"$root/tools/bench/corpus.sh" "$files" "$src"
nfiles=$(find "$src" -type f | wc -l)
bytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
last=$(find "$src" -type f | sort | tail -n 1)
last=${last#"$src"/}

echo "lodefs    $lodefs"
echo "s3fs      $(s3fs --version 2>&1 | head -n 1)"
echo "rclone    $(rclone version 2>/dev/null | head -n 1)"
echo "server    s3rver 3.7.1 at 127.0.0.1, behind faultproxy.py (Python, counts requests) at $S3_URL"
echo "corpus    $nfiles files, $(awk -v b="$bytes" 'BEGIN { printf "%.2f MB", b / 1e6 }') (tools/bench/corpus.sh)"
echo "machine   $(nproc) CPUs, Linux $(uname -r)"
echo "runs      $runs"
echo

# one CLIENT RUN: mounts, copies, waits until durable, unmounts.
one() {
	local c=$1 r=$2 p="$1-$2" dst c0 l0 t0 t1 t2 c1 l1 kinds lreq=-
	mnt_dir=$dir/mnt.$p
	mnt_log=$dir/$p.log
	mkdir -p "$mnt_dir"
	case $c in
	lodefs-*)
		"$lodefs" -f -o "endpoint=$S3_URL,sync=${c#lodefs-},cache_dir=$dir/cache.$p" \
			"s3://bench/$p" "$mnt_dir" 2>"$mnt_log" &
		mnt_pid=$!
		dst=$mnt_dir/docs
		;;
	s3fs)
		s3fs "bench:/$p" "$mnt_dir" -f -o "url=$S3_URL,use_path_request_style,passwd_file=$dir/passwd" \
			2>"$mnt_log" &
		mnt_pid=$!
		dst=$mnt_dir
		;;
	rclone)
		env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null \
			RCLONE_S3_PROVIDER=Other RCLONE_S3_ENDPOINT="$S3_URL" \
			RCLONE_S3_ACCESS_KEY_ID=S3RVER RCLONE_S3_SECRET_ACCESS_KEY=S3RVER \
			RCLONE_S3_REGION=us-east-1 RCLONE_S3_FORCE_PATH_STYLE=true \
			rclone mount ":s3:bench/$p" "$mnt_dir" --vfs-cache-mode writes \
			--vfs-write-back 0s --cache-dir "$dir/cache.$p" \
			--rc --rc-addr "127.0.0.1:$rc_port" --rc-no-auth 2>"$mnt_log" &
		mnt_pid=$!
		dst=$mnt_dir
		;;
	*) echo "s3_ingest.sh: unknown client $c" >&2; exit 2 ;;
	esac
	mount_wait "$mnt_dir" "$mnt_pid"
	mkdir -p "$dst"
	cold
	sleep 0.5 # the mount's own start-up requests are over
	c0=$(s3_count)
	kinds=$(cat "$dir/s3/count")
	case $c in lodefs-*) l0=$(lodefs_stat "$mnt_dir" 's["backend"]["requests"]["total"]') ;; esac
	t0=$EPOCHREALTIME
	cp -r "$src" "$dst/"
	t1=$EPOCHREALTIME
	case $c in
	lodefs-fsync)
		python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$dst/src/$last"
		t2=$EPOCHREALTIME
		local pend
		pend=$(lodefs_stat "$mnt_dir" 's["writes"]["pending_documents"]')
		[ "$pend" = 0 ] || echo "warning: $p: $pend documents pending after fsync" >&2
		;;
	rclone)
		while :; do
			local q
			q=$(env -u AWS_CA_BUNDLE rclone rc --url "127.0.0.1:$rc_port" vfs/stats 2>/dev/null |
				python3 -c 'import json, sys; d = json.load(sys.stdin)["diskCache"]; print(d["uploadsInProgress"] + d["uploadsQueued"])') || q=x
			[ "$q" = 0 ] && break
			sleep 0.1
		done
		t2=$EPOCHREALTIME
		;;
	*) t2=$t1 ;;
	esac
	c1=$(s3_count)
	case $c in
	lodefs-*)
		l1=$(lodefs_stat "$mnt_dir" 's["backend"]["requests"]["total"]')
		lreq=$((l1 - l0))
		lodefs_stat "$mnt_dir" '" ".join("%s %s" % kv for kv in s["backend"]["requests"].items()) + " commits %d" % s["writes"]["commits"]' >"$dir/$c.kinds"
		;;
	esac
	# requests by kind in this window
	awk 'NR == FNR { a[$1] = $2; next } { printf "%s %d ", $1, $2 - a[$1] } END { print "" }' \
		<(echo "$kinds") "$dir/s3/count" >"$dir/$c.proxykinds"
	echo "$c $(secs "$t0" "$t1") $(secs "$t0" "$t2") $((c1 - c0)) $lreq" >>"$res"
	printf 'run %d  %-13s cp %7.3f s  durable %7.3f s  requests %6d (proxy)  %s (lodefs stats)\n' \
		"$r" "$c" "$(secs "$t0" "$t1")" "$(secs "$t0" "$t2")" $((c1 - c0)) "$lreq"
	unmount
	rm -rf -- "$dir/cache.$p"
}

for r in $(seq 1 "$runs"); do
	for c in $clients; do
		one "$c" "$r"
	done
done
[ "$dropped" = 1 ] || echo "warning: could not drop the page cache (not root?)"

echo
awk -v n="$nfiles" -v runs="$runs" '
function med(c, k,    m, i, j, v, x) {
	m = cnt[c]
	if (!m) return -1
	for (i = 1; i <= m; i++) v[i] = val[c, k, i]
	for (i = 2; i <= m; i++)
		for (j = i; j > 1 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
	return m % 2 ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
{ i = ++cnt[$1]; val[$1, 2, i] = $2; val[$1, 3, i] = $3; val[$1, 4, i] = $4; val[$1, 5, i] = $5; if (!($1 in seen)) { seen[$1] = 1; order[++no] = $1 } }
END {
	printf "medians of %d runs, %d files\n", runs, n
	printf "%-13s %9s %11s %9s %10s %12s\n", "client", "cp (s)", "durable (s)", "files/s", "requests", "req/file"
	for (i = 1; i <= no; i++) {
		c = order[i]
		printf "%-13s %9.3f %11.3f %9.0f %10d %12.2f\n", c, med(c, 2), med(c, 3), n / med(c, 3), med(c, 4), med(c, 4) / n
	}
	printf "\nlodefs against the anchors (to durable; speed = their time / ours, requests = theirs / ours):\n"
	split("lodefs-fsync lodefs-close", ls, " ")
	split("s3fs rclone", an, " ")
	for (i = 1; i <= 2; i++) for (j = 1; j <= 2; j++) {
		l = ls[i]; a = an[j]
		if (!cnt[l] || !cnt[a]) continue
		printf "  %-13s vs %-7s speed %6.2fx   requests %6.2fx", l, a, med(a, 3) / med(l, 3), med(a, 4) / med(l, 4)
		if (l == "lodefs-fsync" && a == "s3fs")
			printf "   targets >= 3x: %s, >= 10x: %s", (med(a, 3) / med(l, 3) >= 3 ? "PASS" : "MISS"), (med(a, 4) / med(l, 4) >= 10 ? "PASS" : "MISS")
		printf "\n"
	}
}' "$res"
echo
echo "requests by kind, last run (proxy: LIST = GET of the bucket):"
for c in $clients; do
	printf '  %-13s proxy  %s\n' "$c" "$(cat "$dir/$c.proxykinds")"
	[ ! -f "$dir/$c.kinds" ] || printf "  %-13s stats  %s (since mount)\n" "" "$(cat "$dir/$c.kinds")"
done
exit 0

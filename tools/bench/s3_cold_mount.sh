#!/usr/bin/env bash
# s3_cold_mount.sh - cold mount of a 100,000-node store on S3, with an empty
# cache, until the first query answers, against `aws s3 cp` of the
# LlamaIndex persist files plus json.load.
#
# usage: tools/bench/s3_cold_mount.sh [LODEFS] [--nodes N] [--dim D]
#                                     [--runs R] [--dir DIR] [--keep]
#
# 1. bench_open (next to LODEFS in the build: tools/bench/bench_open)
#    generates N nodes (default 100,000) with D-dimensional vectors (384)
#    as a checkpointed local store, and docstore.json and
#    default__vector_store.json; this script adds index_store.json (one
#    VectorStoreIndex over every node, as LlamaIndex persists it).
# 2. Starts s3rver with the counting faultproxy.py in front (s3lib.sh),
#    uploads the store's objects (the local backend's file names decoded
#    to their keys) to s3://bench/store/ and the three persist files to
#    s3://bench/persist/ with /usr/bin/aws s3 cp --recursive.
# 3. R times (default 3), page cache dropped first:
#    lodefs   from starting `lodefs -f -o endpoint=...,cache_dir=EMPTY
#             s3://bench/store MNT` until `cat "MNT/query/ancient river
#             valley harvest"` has answered (tried every 10 ms once
#             mounted); with its requests and bytes downloaded
#             (.lodefs/stats backend.requests) and the proxy's count
#    anchor   `/usr/bin/aws s3 cp --recursive s3://bench/persist/ TMP`
#             then /usr/bin/python3 json.load of each of the three files
# and prints the medians and the ratio.  Everything is stopped (by PID) on
# any exit; DIR (default ${TMPDIR:-/tmp}/lodefs-bench-s3cold) is removed
# unless --keep (a kept DIR's generated data is reused when N and D match).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lodefs=
nodes=100000
dim=384
runs=3
dir=${TMPDIR:-/tmp}/lodefs-bench-s3cold
keep=0
query="ancient river valley harvest"

usage() {
	sed -n '5,6p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--nodes) nodes=${2:?}; shift 2 ;;
	--dim) dim=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--dir) dir=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) lodefs=$1; shift ;;
	esac
done

# shellcheck source=benchlib.sh
. "$root/tools/bench/benchlib.sh"
lodefs=$(bench_binary s3_cold_mount.sh fs/lodefs "$lodefs") || exit 1
gen=$(dirname "$(dirname "$lodefs")")/tools/bench/bench_open
[ -x "$gen" ] || { echo "s3_cold_mount.sh: no $gen: ninja -C BUILD tools/bench/bench_open" >&2; exit 1; }
if ! [ -x /usr/bin/aws ]; then
	# shellcheck source=../deps.sh
	. "$root/tools/deps.sh"
	lodefs_apt awscli
fi

if [ -e "$dir" ] && [ ! -f "$dir/.lodefs-bench-s3cold" ]; then
	echo "s3_cold_mount.sh: $dir exists and is not ours; pass another --dir" >&2
	exit 1
fi
mkdir -p "$dir"
touch "$dir/.lodefs-bench-s3cold"
dir=$(realpath "$dir")
# shellcheck source=s3lib.sh
. "$root/tools/bench/s3lib.sh"

mnt=$dir/mnt
mnt_pid=
unmount() {
	if [ -n "$mnt_pid" ]; then
		fusermount3 -u "$mnt" 2>/dev/null ||
			{ sleep 1; fusermount3 -u -z "$mnt" 2>/dev/null; } || true
		wait "$mnt_pid" 2>/dev/null || true
		mnt_pid=
	fi
}
cleanup() {
	unmount
	s3_down
	rm -rf -- "$dir/s3" "$dir/cache" "$dir/dl" "$dir/upload"
	[ "$keep" = 1 ] || rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dropped=1
drop() {
	sync
	{ echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null || dropped=0
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# --- 1. the data ---------------------------------------------------------------
g=$dir/gen
if ! grep -qx "nodes $nodes" "$g/params" 2>/dev/null || ! grep -qx "dim $dim" "$g/params" ||
	! [ -s "$g/persist/index_store.json" ]; then
	rm -rf -- "$g"
	"$gen" --nodes "$nodes" --dim "$dim" --dir "$g" --keep --no-python --repeat 1 >"$dir/gen.log"
	/usr/bin/python3 - "$g/persist" <<'PY'
import json, sys, uuid
p = sys.argv[1]
ids = list(json.load(open(p + "/docstore.json"))["docstore/data"])
iid = str(uuid.UUID(int=4))
data = {"index_id": iid, "summary": None, "nodes_dict": {i: i for i in ids}}
json.dump({"index_store/data": {iid: {"__type__": "vector_store",
                                      "__data__": json.dumps(data)}}},
          open(p + "/index_store.json", "w"))
PY
fi

# --- 2. the server -------------------------------------------------------------
s3_up "$dir/s3" bench
# The local backend's names to S3 keys (backends/backend_local.c): '%XX'
# escapes, a trailing '%' on directories, .tmp/ not part of the store.
rm -rf -- "$dir/upload"
/usr/bin/python3 - "$g/store" "$dir/upload" <<'PY'
import os, re, sys, urllib.parse
src, dst = sys.argv[1:]
dec = lambda c: urllib.parse.unquote(c[:-1] if c.endswith("%") else c).replace("%00", "")
for d, dirs, files in os.walk(src):
    dirs[:] = [x for x in dirs if x != ".tmp"]
    rel = os.path.relpath(d, src)
    parts = [] if rel == "." else [dec(c) for c in rel.split(os.sep)]
    for f in files:
        out = os.path.join(dst, *parts, dec(f))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.link(os.path.join(d, f), out)
PY
s3_aws s3 cp --recursive --quiet "$dir/upload" s3://bench/store/
s3_aws s3 cp --recursive --quiet "$g/persist" s3://bench/persist/
store_bytes=$(du -sb "$dir/upload" | cut -f1)
persist_bytes=$(du -sbL "$g/persist" | cut -f1)
rm -rf -- "$dir/upload"

echo "lodefs    $lodefs"
echo "aws       $(/usr/bin/aws --version 2>&1)"
echo "python    $(/usr/bin/python3 --version)"
echo "server    s3rver 3.7.1 at 127.0.0.1, behind faultproxy.py (Python, counts requests) at $S3_URL"
echo "data      $nodes nodes x $dim dims: store $(awk -v b="$store_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') in s3://bench/store/, persist files $(awk -v b="$persist_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') in s3://bench/persist/"
echo "query     cat \"MNT/query/$query\""
echo "machine   $(nproc) CPUs, Linux $(uname -r)"
echo

# --- 3. the runs ---------------------------------------------------------------
res=$dir/results
: >"$res"
mkdir -p "$mnt"
for r in $(seq 1 "$runs"); do
	rm -rf -- "$dir/cache"
	mkdir -p "$dir/cache"
	drop
	c0=$(s3_count)
	t0=$EPOCHREALTIME
	"$lodefs" -f -o "endpoint=$S3_URL,cache_dir=$dir/cache" s3://bench/store "$mnt" \
		2>"$dir/lodefs.log" &
	mnt_pid=$!
	while :; do
		if mountpoint -q "$mnt" && out=$(cat "$mnt/query/$query" 2>/dev/null) && [ -n "$out" ]; then
			break
		fi
		kill -0 "$mnt_pid" 2>/dev/null || { echo "s3_cold_mount.sh: lodefs died:" >&2; tail "$dir/lodefs.log" >&2; exit 1; }
		sleep 0.01
	done
	t1=$EPOCHREALTIME
	c1=$(s3_count)
	lreq=$(lodefs_stat "$mnt" 's["backend"]["requests"]["total"]')
	ldown=$(lodefs_stat "$mnt" 's["backend"]["requests"]["bytes_down"]')
	lkinds=$(lodefs_stat "$mnt" '" ".join("%s %s" % kv for kv in s["backend"]["requests"].items())')
	unmount

	drop
	rm -rf -- "$dir/dl"
	c2=$(s3_count)
	t2=$EPOCHREALTIME
	s3_aws s3 cp --recursive --quiet s3://bench/persist/ "$dir/dl"
	/usr/bin/python3 -c 'import json, sys
for f in sys.argv[1:]:
    json.load(open(f))' "$dir/dl/docstore.json" "$dir/dl/index_store.json" "$dir/dl/default__vector_store.json"
	t3=$EPOCHREALTIME
	c3=$(s3_count)
	echo "$(secs "$t0" "$t1") $((c1 - c0)) $lreq $ldown $(secs "$t2" "$t3") $((c3 - c2))" >>"$res"
	printf 'run %d  lodefs %7.3f s (%d requests by the proxy, %s by lodefs, %s bytes down)   aws s3 cp + json.load %7.3f s (%d requests)\n' \
		"$r" "$(secs "$t0" "$t1")" $((c1 - c0)) "$lreq" "$ldown" "$(secs "$t2" "$t3")" $((c3 - c2))
done
rm -rf -- "$dir/dl"
[ "$dropped" = 1 ] || echo "warning: could not drop the page cache (not root?)"

lm=$(cut -d' ' -f1 "$res" | median)
am=$(cut -d' ' -f5 "$res" | median)
echo
printf 'medians of %d runs, %d nodes x %d dims\n' "$runs" "$nodes" "$dim"
printf 'lodefs mount + first query   %8.3f s   %s requests, %s MB down\n' "$lm" \
	"$(cut -d' ' -f3 "$res" | median)" "$(cut -d' ' -f4 "$res" | median | awk '{ printf "%.1f", $1 / 1e6 }')"
printf 'aws s3 cp + json.load        %8.3f s   %s requests, %.1f MB down\n' "$am" \
	"$(cut -d' ' -f6 "$res" | median)" "$(awk -v b="$persist_bytes" 'BEGIN { print b / 1e6 }')"
awk -v l="$lm" -v a="$am" 'BEGIN { printf "ratio                        lodefs is %.1fx faster\n", a / l }'
echo "lodefs requests by kind, last run: $lkinds"

#!/usr/bin/env bash
# ingest.sh - `lode add` of 10,000 ~2 KB text files, against cp -r + sync.
#
# usage: tools/bench/ingest.sh [LODE] [--files N] [--runs R] [--dir DIR]
#                              [--keep]
#
# Generates N text files (default 10,000) of about 2 KB of deterministic
# pseudo-English (a fixed word list, a fixed seed, sentences and
# paragraphs) in 100 folders, then R times (default 3), each time into a
# fresh destination:
#   lode     `lode add STORE SRC`: durable (fsync per batch) ingest, split
#            into nodes, built-in vectors, keyword index
#   anchor   `cp -r SRC COPY && sync -f COPY`: the same bytes written and
#            flushed to disk (syncfs), the physical floor
# and prints the medians, the ratio, and `lode stats` of the last store.
# Before each timed step: sync, drop the page cache (as root), read SRC back
# in.  Dropping matters on ext4 without a journal (this machine's root):
# its inode allocator skips recently deleted inodes while their inode table
# blocks are cached, which made a cp after a deletion up to 8x slower.
# DIR (default ${TMPDIR:-/tmp}/lodefs-bench-ingest) is on the disk being
# measured; it is removed at the end unless --keep.  LODE defaults to the
# newest build*/tools/lode of this checkout.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lode=
files=10000
runs=3
dir=${TMPDIR:-/tmp}/lodefs-bench-ingest
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
	--keep) keep=1; shift ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) lode=$1; shift ;;
	esac
done

# shellcheck source=benchlib.sh
. "$root/tools/bench/benchlib.sh"
lode=$(bench_binary ingest.sh tools/lode "$lode") || exit 1

src=$dir/src
if [ -e "$dir" ] && [ ! -f "$dir/.lodefs-bench-ingest" ]; then
	echo "ingest.sh: $dir exists and is not ours; pass another --dir" >&2
	exit 1
fi
mkdir -p "$dir"
touch "$dir/.lodefs-bench-ingest"
cleanup() {
	[ "$keep" = 1 ] || rm -rf -- "$dir"
}
trap cleanup EXIT

# --- the corpus: N files in src/dNN/fNNNNN.txt (tools/bench/corpus.sh) ---
gen_corpus() {
	"$root/tools/bench/corpus.sh" "$files" "$src"
}

now() { echo "$EPOCHREALTIME"; }
dropped=1
cold() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		dropped=0
	fi
	find "$src" -type f -exec cat {} + >/dev/null
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

gen_corpus
nfiles=$(find "$src" -type f | wc -l)
bytes=$(find "$src" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1e6 }')
echo "corpus    $nfiles files, $mb MB in $src"
echo "lode      $lode"
echo "disk      $(df -P "$dir" | awk 'NR == 2 { print $1 " mounted on " $6 }')"

lode_t=()
cp_t=()
# Every run writes to new names; nothing is deleted until the end.
rm -rf -- "$dir"/store.* "$dir"/copy.*
for r in $(seq 1 "$runs"); do
	cold
	t0=$(now)
	"$lode" add "$dir/store.$r" "$src" >/dev/null
	t1=$(now)
	lode_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")

	cold
	t0=$(now)
	cp -r "$src" "$dir/copy.$r"
	sync -f "$dir/copy.$r"
	t1=$(now)
	cp_t+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	echo "run $r     lode add ${lode_t[-1]} s   cp -r + sync ${cp_t[-1]} s"
done

[ "$dropped" = 1 ] || echo "warning: could not drop the page cache (not root?)"
lm=$(printf '%s\n' "${lode_t[@]}" | median)
cm=$(printf '%s\n' "${cp_t[@]}" | median)
lmin=$(printf '%s\n' "${lode_t[@]}" | sort -g | head -n 1)
cmin=$(printf '%s\n' "${cp_t[@]}" | sort -g | head -n 1)
awk -v l="$lm" -v c="$cm" -v lmin="$lmin" -v cmin="$cmin" -v n="$nfiles" \
    -v b="$bytes" -v r="$runs" 'BEGIN {
	printf "\nmedians of %d runs (fastest run in brackets)\n", r
	printf "lode add        %.3f s  %6.0f files/s  %5.1f MB/s  (%.3f s)\n", l, n / l, b / 1e6 / l, lmin
	printf "cp -r + sync    %.3f s  %6.0f files/s  %5.1f MB/s  (%.3f s)\n", c, n / c, b / 1e6 / c, cmin
	printf "ratio           lode add takes %.1fx the time of cp -r + sync\n", l / c
}'
echo
echo "lode stats of the last store:"
"$lode" stats "$dir/store.$runs"
echo "store on disk   $(du -sb "$dir/store.$runs" | cut -f1) bytes in $(find "$dir/store.$runs" -type f | wc -l) files"

#!/usr/bin/env bash
# persist.sh - `lode import` and `lode export` of a LlamaIndex persist
# directory, against Python's json.load and json.dump of the same files.
#
# usage: tools/bench/persist.sh [LODE] [--nodes N] [--dim D] [--runs R]
#                               [--dir DIR] [--keep]
#
# Generates with tools/bench/gen_persist.py (run by /usr/bin/python3) the
# persist directory Python LlamaIndex writes for N nodes (default 100,000)
# with D-dim vectors (default 384): docstore.json (~1 KB of text per node),
# index_store.json, default__vector_store.json (vectors as repr of float64),
# image__vector_store.json and graph_store.json (empty).  Then R times
# (default 3), each time into fresh destinations:
#   lode     `lode import STORE SRC` into a new local store, then
#            `lode export STORE OUT` (every file fsync'd, renamed, the
#            directory fsync'd)
#   anchor   /usr/bin/python3: json.load of every file (LlamaIndex's
#            from_persist_path), then each written as LlamaIndex's persist()
#            writes it (json.dumps for the key-value stores, json.dump for
#            the vector and graph stores; no fsync), then again with
#            json.dumps for all (Python's fastest spelling)
# Before each timed step: sync, drop the page cache (as root).  Prints the
# medians, the ratios, the file sizes, export throughput and peak RSS.
# Vectors are stored as float32, so lode's default__vector_store.json is
# the shortest decimal per float32, not the 17-digit doubles it was given:
# not byte-identical to the input (the other files are, and are compared).
# DIR (default ${TMPDIR:-/tmp}/lodefs-bench-persist) holds everything; the
# generated files are kept with --keep and reused by a later run with the
# same N and D; the rest is removed at the end.  LODE defaults to the
# newest build*/tools/lode of this checkout.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
lode=
nodes=100000
dim=384
runs=3
dir=${TMPDIR:-/tmp}/lodefs-bench-persist
keep=0
py=/usr/bin/python3
gen=$root/tools/bench/gen_persist.py

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
	*) lode=$1; shift ;;
	esac
done

# shellcheck source=benchlib.sh
. "$root/tools/bench/benchlib.sh"
lode=$(bench_binary persist.sh tools/lode "$lode") || exit 1
[ -x "$py" ] || { echo "persist.sh: $py is missing" >&2; exit 1; }

if [ -e "$dir" ] && [ ! -f "$dir/.lodefs-bench-persist" ]; then
	echo "persist.sh: $dir exists and is not ours; pass another --dir" >&2
	exit 1
fi
mkdir -p "$dir"
touch "$dir/.lodefs-bench-persist"
src=$dir/src
cleanup() {
	rm -rf -- "$dir"/store.* "$dir"/lode.* "$dir"/py.*
	[ "$keep" = 1 ] || rm -rf -- "$dir"
}
trap cleanup EXIT

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
dropped=1
cold() {
	sync
	if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		dropped=0
	fi
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
size_of() { stat -c %s "$1"; }
sum_sizes() { find "$1" -maxdepth 1 -type f -name '*.json' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# --- the persist directory (reused while N, D and the generator agree) ---
stamp="nodes=$nodes dim=$dim gen=$(md5sum <"$gen" | cut -c1-12)"
if [ "$(cat "$dir/src.params" 2>/dev/null)" != "$stamp" ]; then
	rm -rf -- "$src"
	echo "generating $nodes nodes x $dim dims in $src ..."
	t0=$(now)
	"$py" "$gen" gen "$src" --nodes "$nodes" --dim "$dim"
	echo "$stamp" >"$dir/src.params"
	echo "generated in $(elapsed "$t0" "$(now)") s"
fi
in_bytes=$(sum_sizes "$src")
echo "persist   $src: $(awk -v b="$in_bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
for f in "$src"/*.json; do
	printf '          %-28s %13s bytes\n' "$(basename "$f")" "$(size_of "$f")"
done
echo "lode      $lode"
echo "python    $py ($("$py" -c 'import sys; print(sys.version.split()[0])'))"
echo "disk      $(df -P "$dir" | awk 'NR == 2 { print $1 " mounted on " $6 }')"

# Per run: wall-clock seconds (the figure) and CPU seconds (user + system:
# steadier than wall-clock when other work shares the machine).
imp_t=() exp_t=() load_t=() dump_t=() dumps_t=()
imp_c=() exp_c=() load_c=() dump_c=() dumps_c=()
rss_imp= rss_exp= rss_py=
# timed OUT CMD...: runs CMD under /usr/bin/time; OUT gets "CPU RSS_KB".
timed() {
	local out=$1
	shift
	/usr/bin/time -f '%U %S %M' -o "$out.raw" "$@"
	awk '{ printf "%.3f %d\n", $1 + $2, $3 }' "$out.raw" >"$out"
}
rm -rf -- "$dir"/store.* "$dir"/lode.* "$dir"/py.*
for r in $(seq 1 "$runs"); do
	# Only the last run's output is kept (for the sizes and comparisons).
	if [ "$r" -gt 1 ]; then
		rm -rf -- "$dir/store.$((r - 1))" "$dir/lode.$((r - 1))" \
			"$dir/py.$((r - 1))"
	fi
	cold
	t0=$(now)
	timed "$dir/t.imp" "$lode" import -q "$dir/store.$r" "$src"
	t1=$(now)
	imp_t+=("$(elapsed "$t0" "$t1")")
	read -r c rss_imp <"$dir/t.imp"
	imp_c+=("$c")

	cold
	t0=$(now)
	timed "$dir/t.exp" "$lode" export -q "$dir/store.$r" "$dir/lode.$r"
	t1=$(now)
	exp_t+=("$(elapsed "$t0" "$t1")")
	read -r c rss_exp <"$dir/t.exp"
	exp_c+=("$c")

	cold
	read -r _ l lc _ d dc _ ds dsc _ rss_py \
		< <("$py" "$gen" anchor "$src" "$dir/py.$r")
	load_t+=("$l") dump_t+=("$d") dumps_t+=("$ds")
	load_c+=("$lc") dump_c+=("$dc") dumps_c+=("$dsc")
	echo "run $r     lode import ${imp_t[-1]} s (CPU ${imp_c[-1]})  export ${exp_t[-1]} s (CPU ${exp_c[-1]})   python load $l s (CPU $lc)  dump $d s (CPU $dc)  json.dumps $ds s"
done

[ "$dropped" = 1 ] || echo "warning: could not drop the page cache (not root?)"
out=$dir/lode.$runs
out_bytes=$(sum_sizes "$out")
echo
echo "files     input / lode export / python dump (bytes), lode's byte-identical?"
seen=
for f in "$src"/*.json "$out"/*.json; do
	n=$(basename "$f")
	case " $seen " in *" $n "*) continue ;; esac
	seen="$seen $n"
	a=$([ -f "$src/$n" ] && size_of "$src/$n" || echo -)
	b=$([ -f "$out/$n" ] && size_of "$out/$n" || echo -)
	c=$([ -f "$dir/py.$runs/$n" ] && size_of "$dir/py.$runs/$n" || echo -)
	if [ -f "$src/$n" ] && [ -f "$out/$n" ]; then
		cmp -s "$src/$n" "$out/$n" && same=identical || same=differs
	else
		same=-
	fi
	printf '          %-28s %13s %13s %13s  %s\n' "$n" "$a" "$b" "$c" "$same"
done

med() { printf '%s\n' "$@" | median; }
awk -v im="$(med "${imp_t[@]}")" -v em="$(med "${exp_t[@]}")" \
    -v lm="$(med "${load_t[@]}")" -v dm="$(med "${dump_t[@]}")" \
    -v dsm="$(med "${dumps_t[@]}")" \
    -v ic="$(med "${imp_c[@]}")" -v ec="$(med "${exp_c[@]}")" \
    -v lc="$(med "${load_c[@]}")" -v dc="$(med "${dump_c[@]}")" \
    -v dsc="$(med "${dumps_c[@]}")" \
    -v inb="$in_bytes" -v outb="$out_bytes" -v r="$runs" \
    -v ri="$rss_imp" -v re="$rss_exp" -v rp="$rss_py" 'BEGIN {
	printf "\nmedians of %d runs          wall s    CPU s      MB/s   peak RSS MB\n", r
	printf "lode import                 %7.3f  %7.3f  %8.1f  %8.0f   (MB read)\n", im, ic, inb / 1e6 / im, ri / 1e3
	printf "lode export                 %7.3f  %7.3f  %8.1f  %8.0f   (MB written)\n", em, ec, outb / 1e6 / em, re / 1e3
	printf "python json.load            %7.3f  %7.3f  %8.1f  %8.0f\n", lm, lc, inb / 1e6 / lm, rp / 1e3
	printf "python dump, as LlamaIndex  %7.3f  %7.3f  %8.1f\n", dm, dc, inb / 1e6 / dm
	printf "python json.dumps           %7.3f  %7.3f  %8.1f\n", dsm, dsc, inb / 1e6 / dsm
	printf "\nratios, python / lode        wall      CPU\n"
	printf "import vs json.load          %5.1fx   %5.1fx\n", lm / im, lc / ic
	printf "export vs LlamaIndex dump    %5.1fx   %5.1fx\n", dm / em, dc / ec
	printf "export vs json.dumps         %5.1fx   %5.1fx\n", dsm / em, dsc / ec
	printf "both vs load + dump          %5.1fx   %5.1fx\n", (lm + dm) / (im + em), (lc + dc) / (ic + ec)
	ok = (lm / im >= 3 && dm / em >= 3)
	printf "target lode >= 3x faster both ways (wall): %s\n", ok ? "PASS" : "FAIL"
}'
echo
echo "lode stats of the last store:"
"$lode" stats "$dir/store.$runs"
echo "store on disk   $(du -sb "$dir/store.$runs" | cut -f1) bytes in $(find "$dir/store.$runs" -type f | wc -l) files"

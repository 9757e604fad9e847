#!/usr/bin/env bash
# fs_files.sh - small files and sequential I/O through lodefs, against bindfs
# (a FUSE passthrough) and the disk itself.
#
# usage: tools/bench/fs_files.sh [LODEFS] [--files N] [--mb M] [--runs R]
#                                [--dir DIR] [--perf PERFDIR] [--keep] [--big-only]
#
# In one run, R times (default 3, or $LODEFS_BENCH_RUNS), for each target
#   lodefs-fsync  lodefs -o sync=fsync STORE MNT, files in MNT/docs/bench
#   lodefs-close  lodefs -o sync=close (the default), the same
#   bindfs        bindfs SRC MNT (Debian's bindfs, default options), files in
#                 MNT/bench
#   disk          DIR/disk/bench directly
# (a fresh store, bindfs source or directory each time; the order of the
# targets rotates from run to run), it times with tools/bench/fs_files.py:
#   create   create+write+close of N (default 5000) ~2 KB text files in one
#            directory (text, so lodefs indexes them); also the time until
#            they are durable: lodefs sync=fsync an fsync of the last file
#            (which waits for the commit of everything pending), sync=close
#            nothing (durable at close), bindfs and disk syncfs(2) of the
#            directory on the disk
#   stat     os.stat of every file, after dropping dentries and inodes
#            (echo 2 > drop_caches), so that FUSE asks its daemon
#   readdir  os.scandir of the directory (names only)
#   unlink   os.unlink of every file
#   write    one M MiB (default 512) file of random bytes (binary: lodefs
#            stores it and does not index it) in 1 MiB writes, to close;
#            and to durable (lodefs sync=fsync: until .lodefs/stats shows
#            its commit done; sync=close: at close; others: open+fsync)
#   read     the same file in 1 MiB reads, cold (sync; echo 3 >
#            drop_caches first) and warm (right after); then cold again
#            after a remount, lodefs's store compacted first (`lode
#            compact`, which a running mount does every 1,000 commits):
#            where a stored file is when users read it, in a checkpoint,
#            where the first read above finds it in the daemon's memory;
#            each read's first 1 MiB is timed apart too (lodefs checks a
#            value read from a checkpoint before its first byte: the
#            first MiB of a large one, the whole of a small one)
# and prints the medians, ops/s or MiB/s, with the ratio lodefs / bindfs
# and PASS or MISS for the targets of issue 3 (sync=fsync: small-file
# writes >= 0.5x bindfs, sequential read (cold, warm and cold after a
# remount) and write >= 0.7x bindfs).
# Timings never fail the script.
#
# --perf PERFDIR: after the timed runs, one more untimed pass of each lodefs
# target under `perf record --call-graph dwarf -p DAEMON` (one perf.data per
# phase in PERFDIR, with its report as text) and the top of each profile;
# --runs 0 --perf PERFDIR profiles only.
# --big-only: the big file's write and reads alone (no small files).
# On a VM, waking a thread on another vCPU can cost far more than the FUSE
# request itself, and varies with the host's load: `taskset -c 0
# tools/bench/fs_files.sh` (the daemons inherit the affinity) measures the
# software alone; see README.md.
# DIR (default ${TMPDIR:-/tmp}/lodefs-bench-fs) holds the stores, the
# bindfs source and the disk directory, so all are on the same disk; it is
# removed at the end unless --keep.  Needs root (drop_caches); installs
# bindfs (tools/deps.sh) if missing.  LODEFS defaults to the newest
# build*/fs/lodefs of this checkout.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
helper=$root/tools/bench/fs_files.py
lodefs=
files=5000
mb=512
runs=${LODEFS_BENCH_RUNS:-3}
dir=${TMPDIR:-/tmp}/lodefs-bench-fs
perfdir=
keep=0
big_only=0
targets=(lodefs-fsync lodefs-close bindfs disk)

usage() {
	sed -n '4,5p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

while [ $# -gt 0 ]; do
	case $1 in
	--files) files=${2:?}; shift 2 ;;
	--mb) mb=${2:?}; shift 2 ;;
	--runs) runs=${2:?}; shift 2 ;;
	--dir) dir=${2:?}; shift 2 ;;
	--perf) perfdir=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--big-only) big_only=1; shift ;;
	-h|--help) usage ;;
	-*) usage ;;
	*) lodefs=$1; shift ;;
	esac
done

# shellcheck source=benchlib.sh
. "$root/tools/bench/benchlib.sh"
lodefs=$(bench_binary fs_files.sh fs/lodefs "$lodefs") || exit 1
# lode of the same build, for the compaction before the remounted read
lode=$(dirname "$lodefs")/../tools/lode
[ -x "$lode" ] || { echo "fs_files.sh: no $lode (build tools/lode); the read after remount is skipped" >&2; lode=; }
if ! command -v bindfs >/dev/null 2>&1; then
	# shellcheck source=../deps.sh
	. "$root/tools/deps.sh"
	lodefs_apt bindfs
fi
command -v python3 >/dev/null || { echo "fs_files.sh: needs python3" >&2; exit 1; }
if [ -n "$perfdir" ]; then
	command -v perf >/dev/null || { echo "fs_files.sh: --perf needs perf" >&2; exit 1; }
	mkdir -p "$perfdir"
	perfdir=$(realpath "$perfdir")
fi

if [ -e "$dir" ] && [ ! -f "$dir/.lodefs-bench-fs" ]; then
	echo "fs_files.sh: $dir exists and is not ours; pass another --dir" >&2
	exit 1
fi
mkdir -p "$dir"
touch "$dir/.lodefs-bench-fs"
dir=$(realpath "$dir")
res=$dir/results
: >"$res"

# The daemon of the current target and where it is mounted.
mnt_pid=
mnt_dir=
mnt_log=
perf_pid=
unmount() {
	if [ -n "$perf_pid" ]; then
		kill -INT "$perf_pid" 2>/dev/null || true
		wait "$perf_pid" 2>/dev/null || true
		perf_pid=
	fi
	if [ -n "$mnt_dir" ]; then
		fusermount3 -u "$mnt_dir" 2>/dev/null ||
			{ sleep 1; fusermount3 -u -z "$mnt_dir" 2>/dev/null; } || true
	fi
	if [ -n "$mnt_pid" ]; then
		local rc=0
		wait "$mnt_pid" || rc=$?
		if [ "$rc" != 0 ]; then
			echo "warning: the daemon $mnt_pid exited with $rc; its stderr:" >&2
			tail -n 20 "$mnt_log" >&2 || true
		fi
	fi
	mnt_pid=
	mnt_dir=
}
cleanup() {
	unmount
	[ "$keep" = 1 ] || rm -rf -- "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# mount_wait MNT: until MNT is a mount point of the daemon $mnt_pid.
mount_wait() {
	local _
	for _ in $(seq 1 400); do
		mountpoint -q "$1" && return 0
		kill -0 "$mnt_pid" 2>/dev/null || { echo "fs_files.sh: the daemon for $1 died" >&2; exit 1; }
		sleep 0.05
	done
	echo "fs_files.sh: $1 not mounted after 20 s" >&2
	exit 1
}

dropped=1
drop() { # drop LEVEL: sync, then drop caches (3) or dentries+inodes (2)
	sync
	if ! { echo "$1" >/proc/sys/vm/drop_caches; } 2>/dev/null; then
		dropped=0
	fi
}

# mount_target TARGET: mounts its store or source as it is (not for disk).
mount_target() {
	local t=$1
	mnt_log=$dir/$t.log
	case $t in
	lodefs-fsync|lodefs-close)
		mnt_dir=$dir/$t.mnt
		"$lodefs" -f -o "sync=${t#lodefs-}" "$dir/$t.store" "$mnt_dir" \
			2>>"$mnt_log" &
		;;
	bindfs)
		mnt_dir=$dir/bindfs.mnt
		bindfs -f "$dir/bindfs.src" "$mnt_dir" 2>>"$mnt_log" &
		;;
	esac
	mnt_pid=$!
	mount_wait "$mnt_dir"
}

# remount_target TARGET: unmounts and mounts again, lodefs's store compacted.
remount_target() {
	local t=$1
	[ "$t" != disk ] || return 0
	unmount
	case $t in
	lodefs-*) "$lode" compact "$dir/$t.store" >/dev/null ;;
	esac
	mount_target "$t"
}

# setup TARGET: mounts if needed; sets base (the directory of the files)
# and how each phase makes data durable.
setup() {
	local t=$1
	case $t in
	lodefs-fsync|lodefs-close)
		rm -rf -- "$dir/$t.store"
		mkdir -p "$dir/$t.store" "$dir/$t.mnt"
		mount_target "$t"
		base=$mnt_dir/docs/bench
		if [ "$t" = lodefs-fsync ]; then
			small_durable=fsync
			seq_durable=stats:$mnt_dir
		else
			small_durable=close
			seq_durable=close
		fi
		;;
	bindfs)
		rm -rf -- "$dir/bindfs.src"
		mkdir -p "$dir/bindfs.src" "$dir/bindfs.mnt"
		mount_target "$t"
		base=$mnt_dir/bench
		small_durable=syncfs:$dir/bindfs.src
		seq_durable=reopen-fsync
		;;
	disk)
		rm -rf -- "$dir/disk"
		base=$dir/disk/bench
		small_durable=syncfs:$dir/disk
		seq_durable=reopen-fsync
		;;
	esac
	mkdir -p "$base"
}

teardown() {
	local t=$1
	unmount
	case $t in
	lodefs-*) rm -rf -- "$dir/$t.store" ;;
	bindfs) rm -rf -- "$dir/bindfs.src" ;;
	disk) rm -rf -- "$dir/disk" ;;
	esac
}

# helper PHASE ARGS: runs fs_files.py and prints its "key value" line.
helper() {
	python3 "$helper" "$@"
}
# field LINE KEY
field() { awk -v k="$2" '{ for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1) }' <<<"$1"; }
# rec TARGET METRIC VALUE
rec() { echo "$1 $2 $3" >>"$res"; }

# perf_start PHASE: profiles the daemon into PERFDIR/TARGET.PHASE.data.
perf_on=0
perf_start() {
	[ "$perf_on" = 1 ] && [ -n "$mnt_pid" ] || return 0
	# DWARF call graphs: a release build has no frame pointers
	perf record -q -F 999 --call-graph dwarf -p "$mnt_pid" \
		-o "$perfdir/$cur.$1.data" >/dev/null 2>&1 &
	perf_pid=$!
	sleep 0.5 # perf attaches
}
perf_stop() {
	[ -n "$perf_pid" ] || return 0
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
	perf_pid=
}

# read_big TARGET METRIC [PHASE]: one timed read of the big file (profiled
# as PHASE if given), checked whole.
read_big() {
	local line
	[ -z "${3:-}" ] || perf_start "$3"
	line=$(helper seq-read "$base/big")
	[ -z "${3:-}" ] || perf_stop
	[ "$(field "$line" bytes)" = $((mb << 20)) ] || { echo "fs_files.sh: $1: $2: read $(field "$line" bytes) bytes of $((mb << 20))" >&2; exit 1; }
	rec "$1" "$2" "$(awk -v m="$mb" -v s="$(field "$line" secs)" 'BEGIN { print m / s }')"
	rec "$1" "$2_first_ms" "$(awk -v s="$(field "$line" first_secs)" 'BEGIN { print s * 1000 }')"
}

# one TARGET: every phase on a fresh target.
one() {
	local t=$1
	cur=$t
	setup "$t"
	[ "$big_only" = 0 ] && small_files "$t"
	big_file "$t"
	teardown "$t"
}

# small_files TARGET: the small-file phases.
small_files() {
	local t=$1 line n=$files bytes
	drop 3
	perf_start create
	line=$(helper small-create "$base" "$n" "$small_durable")
	perf_stop
	bytes=$(field "$line" bytes)
	echo "$bytes" >"$dir/small_bytes"
	rec "$t" create "$(awk -v n="$n" -v s="$(field "$line" secs)" 'BEGIN { print n / s }')"
	rec "$t" create_durable "$(awk -v n="$n" -v s="$(field "$line" durable_secs)" 'BEGIN { print n / s }')"
	rec "$t" create_p50_us "$(field "$line" p50_us)"

	drop 2
	perf_start stat
	line=$(helper small-stat "$base" "$n")
	perf_stop
	rec "$t" stat "$(awk -v n="$n" -v s="$(field "$line" secs)" 'BEGIN { print n / s }')"
	line=$(helper small-readdir "$base" "$n")
	rec "$t" readdir "$(awk -v n="$n" -v s="$(field "$line" secs)" 'BEGIN { print n / s }')"
	perf_start unlink
	line=$(helper small-unlink "$base" "$n")
	perf_stop
	rec "$t" unlink "$(awk -v n="$n" -v s="$(field "$line" secs)" 'BEGIN { print n / s }')"
	rec "$t" unlink_p50_us "$(field "$line" p50_us)"
}

# big_file TARGET: the big file written, read cold and warm, and read cold
# again after a remount.
big_file() {
	local t=$1 line
	drop 3
	perf_start write
	line=$(helper seq-write "$base/big" "$mb" "$seq_durable")
	perf_stop
	rec "$t" write "$(awk -v m="$mb" -v s="$(field "$line" secs)" 'BEGIN { print m / s }')"
	rec "$t" write_durable "$(awk -v m="$mb" -v s="$(field "$line" durable_secs)" 'BEGIN { print m / s }')"
	drop 3
	read_big "$t" read_cold read
	read_big "$t" read_warm
	if [ -n "$lode" ]; then
		remount_target "$t"
		drop 3
		read_big "$t" read_remount read_remount
	fi
	rm -f -- "$base/big"
}

echo "lodefs    $lodefs"
echo "bindfs    $(command -v bindfs) ($(bindfs --version 2>&1 | head -n 1)), default options"
echo "disk      $(df -P "$dir" | awk 'NR == 2 { print $1 " mounted on " $6 }') ($(findmnt -n -o FSTYPE,OPTIONS -T "$dir" 2>/dev/null || true))"
echo "machine   $(nproc) of $(nproc --all) CPUs usable by this run (affinity), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
[ "$big_only" = 1 ] || echo "small     $files text files of ~2 KB in one directory (indexed by lodefs)"
echo "big       one file of $mb MiB of random bytes (binary: lodefs stores it, does not index it), 1 MiB I/Os"
echo "runs      $runs (medians)"
echo

for r in $(seq 1 "$runs"); do
	k=$(((r - 1) % ${#targets[@]}))
	order=("${targets[@]:k}" "${targets[@]:0:k}")
	for t in "${order[@]}"; do
		t0=$EPOCHREALTIME
		one "$t"
		printf 'run %d  %-13s %5.1f s ' "$r" "$t" "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
		awk -v t="$t" '$1 == t { v[$2] = $3 } END {
			if ("create" in v)
				printf " create %.0f/s (durable %.0f/s)  stat %.0f/s  readdir %.0f/s  unlink %.0f/s ", \
					v["create"], v["create_durable"], v["stat"], v["readdir"], v["unlink"]
			printf " write %.0f MiB/s (durable %.0f)  read cold %.0f warm %.0f remounted %.0f MiB/s (first 1 MiB %.0f ms)\n", \
				v["write"], v["write_durable"], v["read_cold"], v["read_warm"], v["read_remount"], v["read_remount_first_ms"]
		}' "$res"
	done
done
[ "$dropped" = 1 ] || echo "warning: could not drop the page cache (not root?): read and stat figures are warm"

# --- the table ---------------------------------------------------------------
table() {
small_kb=$(awk -v b="$(cat "$dir/small_bytes" 2>/dev/null || echo 0)" -v n="$files" 'BEGIN { printf "%.2f", b / n / 1000 }')
echo
awk -v runs="$runs" -v files="$files" -v mb="$mb" -v kb="$small_kb" '
function median(t, m,    n, i, j, v, x) {
	n = cnt[t, m]
	if (!n)
		return -1
	for (i = 1; i <= n; i++)
		v[i] = val[t, m, i]
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
			x = v[j]; v[j] = v[j - 1]; v[j - 1] = x
		}
	return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function fmt(x) {
	if (x < 0) return "-"
	return x >= 100 ? sprintf("%.0f", x) : sprintf("%.1f", x)
}
function ratio(a, b) { return b > 0 && a >= 0 ? sprintf("%.2fx", a / b) : "-" }
function has(m) { return cnt["lodefs-fsync", m] > 0 }
{ n = ++cnt[$1, $2]; val[$1, $2, n] = $3 }
END {
	split("create create_durable stat readdir unlink write write_durable read_cold read_cold_first_ms read_warm read_remount read_remount_first_ms", ms, " ")
	label["create"] = "create+write+close (files/s)"
	label["create_durable"] = "  ... until durable (files/s)"
	label["stat"] = "stat, dentries dropped (/s)"
	label["readdir"] = "readdir (entries/s)"
	label["unlink"] = "unlink (files/s)"
	label["write"] = "seq write, to close (MiB/s)"
	label["write_durable"] = "  ... until durable (MiB/s)"
	label["read_cold"] = "seq read, cold (MiB/s)"
	label["read_warm"] = "seq read, warm (MiB/s)"
	label["read_remount"] = "  ... cold after remount (MiB/s)"
	label["read_cold_first_ms"] = "  ... its first 1 MiB (ms)"
	label["read_remount_first_ms"] = "  ... its first 1 MiB (ms)"
	if (has("create"))
		printf "medians of %d runs; small files: %d x %s KB text; big file: %d MiB random bytes\n\n", runs, files, kb, mb
	else
		printf "medians of %d runs; big file: %d MiB random bytes\n\n", runs, mb
	printf "%-31s %12s %12s %12s %12s %9s %9s\n", "", "lodefs", "lodefs", "bindfs", "disk", "fsync/", "close/"
	printf "%-31s %12s %12s %12s %12s %9s %9s\n", "", "sync=fsync", "sync=close", "", "", "bindfs", "bindfs"
	for (i = 1; i in ms; i++) {
		m = ms[i]
		if (!has(m))
			continue
		f = median("lodefs-fsync", m); c = median("lodefs-close", m)
		b = median("bindfs", m); d = median("disk", m)
		med[m] = f; bmed[m] = b
		if (m ~ /_ms$/) # a latency: no ratio of rates
			printf "%-31s %12s %12s %12s %12s %9s %9s\n", label[m], fmt(f), fmt(c), fmt(b), fmt(d), "-", "-"
		else
			printf "%-31s %12s %12s %12s %12s %9s %9s\n", label[m], fmt(f), fmt(c), fmt(b), fmt(d), ratio(f, b), ratio(c, b)
	}
	if (has("create")) {
	printf "\nper-file latency, median of the runs'"'"' p50 (us): create  fsync %s  close %s  bindfs %s  disk %s\n", \
		fmt(median("lodefs-fsync", "create_p50_us")), fmt(median("lodefs-close", "create_p50_us")), \
		fmt(median("bindfs", "create_p50_us")), fmt(median("disk", "create_p50_us"))
	printf "                                                 unlink  fsync %s  close %s  bindfs %s  disk %s\n", \
		fmt(median("lodefs-fsync", "unlink_p50_us")), fmt(median("lodefs-close", "unlink_p50_us")), \
		fmt(median("bindfs", "unlink_p50_us")), fmt(median("disk", "unlink_p50_us"))
	printf "lodefs sync=fsync: %d files durable %.2f s after the first create (create loop %.2f s)\n", \
		files, files / med["create_durable"], files / med["create"]
	}
	printf "\nissue 3 targets, lodefs sync=fsync against bindfs:\n"
	tgt["create"] = 0.5; tgt["create_durable"] = 0.5; tgt["write"] = 0.7
	tgt["read_cold"] = 0.7; tgt["read_warm"] = 0.7; tgt["read_remount"] = 0.7
	split("create create_durable write read_cold read_warm read_remount", ts, " ")
	for (i = 1; i in ts; i++) {
		m = ts[i]
		if (!has(m))
			continue
		r = bmed[m] > 0 ? med[m] / bmed[m] : 0
		lab = m == "read_remount" ? "seq read, cold after remount" : label[m]
		printf "  %-31s %5.2fx  (target >= %.1fx)  %s\n", lab, r, tgt[m], (r >= tgt[m] ? "PASS" : "MISS")
	}
	if (has("create")) {
	printf "  (small files with sync=fsync: close() returns before the indexing, which runs in\n"
	printf "  the background and competes with the writer for the CPUs once it starts, a second\n"
	printf "  after the first close or at 4096 pending files; so the to-close rate depends on\n"
	printf "  whether the loop ends first, and the until-durable rate is the steady one)\n"
	}
}' "$res"
}
[ "$runs" = 0 ] || table

# --- profiles ----------------------------------------------------------------
if [ -n "$perfdir" ]; then
	echo
	echo "profiles (untimed pass under perf record -g -p DAEMON) in $perfdir:"
	perf_on=1
	for t in lodefs-fsync lodefs-close; do
		one "$t"
		for p in create stat unlink write read read_remount; do
			f=$perfdir/$t.$p.data
			[ -s "$f" ] || continue
			perf report -i "$f" --stdio --no-children -g none \
				--percent-limit 1.5 2>/dev/null >"$f.self.txt" || true
			perf report -i "$f" --stdio --children \
				--percent-limit 5 2>/dev/null >"$f.children.txt" || true
			echo
			echo "== $t $p: top self (full: $f.self.txt, call graphs: $f.children.txt)"
			grep -v '^#' "$f.self.txt" | grep '%' | head -n 12
		done
	done
	perf_on=0
fi

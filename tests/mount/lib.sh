# lib.sh - shared by the mount-level tests: TAP output, mounting lodefs, cleanup.
#
# Source it first thing in a test:   . "$(dirname "$0")/lib.sh" "$@"
# The daemon is $LODEFS (meson sets it), else the test's first argument.
# Everything a test creates goes under $T, removed at exit (LODEFS_KEEP=1
# keeps it; LODEFS_LOGDIR=DIR puts the daemon logs there instead).
# At exit, whatever is still running or mounted is stopped and unmounted,
# even when the test failed half-way: registered servers (lodefs_track)
# first, since an NFS server holding files open in a mount makes its
# unmount fail with EBUSY, then every mount, then the daemons.
#
# lodefs_mount records the daemon as a child of the test's shell, so call it
# (and lodefs_umount) directly, never inside $(...) or a pipeline.
# The mount tests are bash; a failed command never stops them (no set -e):
# each check reports ok / not ok and the test goes on.

LODEFS=${LODEFS:-${1:-}}
T=$(mktemp -d "${TMPDIR:-/tmp}/lodefs-mount.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 1
}

TAP_N=0       # test points printed so far
TAP_FAILED=0  # of which not ok
TAP_PLAN=     # the plan, once printed
declare -A LODEFS_PIDS=() # mountpoint -> daemon pid
declare -A LODEFS_LOGS=() # mountpoint -> daemon log
LODEFS_TRACKED=()         # pids of servers to stop first at exit

# ---- TAP ------------------------------------------------------------------

# plan N: announces N test points (optional: done_testing prints it otherwise).
plan() { TAP_PLAN=$1; echo "1..$1"; }

# diag LINE...: prints each LINE (or stdin, if none) as a TAP comment line.
diag() {
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | sed 's/^/# /'
	else
		sed 's/^/# /'
	fi
}

# ok STATUS DESC: a test point that passes when STATUS is 0 (`[ -f x ]; ok $? "x"`).
ok() {
	TAP_N=$((TAP_N + 1))
	if [ "$1" = 0 ]; then
		echo "ok $TAP_N - $2"
		return 0
	fi
	echo "not ok $TAP_N - $2"
	TAP_FAILED=$((TAP_FAILED + 1))
	return 1
}

# is GOT WANT DESC: passes when the two strings are equal; shows both otherwise.
is() {
	if [ "$1" = "$2" ]; then
		ok 0 "$3"
	else
		ok 1 "$3"
		diag "     got: '$1'" "expected: '$2'"
		return 1
	fi
}

# ok_cmd DESC CMD...: runs CMD; passes when it exits 0; shows its output otherwise.
ok_cmd() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	ok "$rc" "$desc" || {
		diag "command: $* (exit $rc)"
		[ -n "$out" ] && printf '%s\n' "$out" | head -n 40 | diag
	}
	return "$rc"
}

# skip DESC REASON: a test point that was not run.
skip() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $1 # SKIP ${2:-}"
}

# skip_all REASON: skips the whole test (before any test point) and exits 0.
skip_all() { echo "1..0 # SKIP $*"; exit 0; }

# bail_out REASON: aborts the whole test run as TAP says, exit 1.
bail_out() { echo "Bail out! $*"; exit 1; }

# done_testing: prints the plan if none was given, the daemon logs if
# anything failed, and exits 0 only if every planned test point passed.
done_testing() {
	local m
	if [ "$TAP_FAILED" -gt 0 ]; then
		for m in "${!LODEFS_LOGS[@]}"; do
			if [ -s "${LODEFS_LOGS[$m]}" ]; then
				diag "last lines of the daemon log for $m:"
				tail -n 20 "${LODEFS_LOGS[$m]}" | diag
			else
				diag "the daemon log for $m is empty"
			fi
		done
	fi
	if [ -z "$TAP_PLAN" ]; then
		echo "1..$TAP_N"
	elif [ "$TAP_PLAN" -ne "$TAP_N" ]; then
		diag "planned $TAP_PLAN test points but ran $TAP_N"
		exit 1
	fi
	diag "$((TAP_N - TAP_FAILED)) passed, $TAP_FAILED failed"
	[ "$TAP_FAILED" -eq 0 ] && exit 0
	exit 1
}

# ---- requirements ---------------------------------------------------------

# need_root: skips the whole test unless it runs as root.
need_root() { [ "$(id -u)" -eq 0 ] || skip_all "needs root"; }

# need_cmd CMD...: skips the whole test if one of the commands is missing.
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
			skip_all "$c not installed (tools/deps.sh LODEFS_TEST_PKGS)"
	done
}

# need_lodefs: skips the whole test unless $LODEFS is a program and FUSE works here.
need_lodefs() {
	[ -n "$LODEFS" ] || bail_out "usage: $0 PATH/TO/lodefs (or set LODEFS)"
	[ -x "$LODEFS" ] || skip_all "no lodefs binary at $LODEFS"
	[ -c /dev/fuse ] || skip_all "no /dev/fuse"
	need_cmd fusermount3 mountpoint
}

# lodefs__key PATH: the absolute path that names a mount in the tables.
lodefs__key() { realpath -m -- "$1"; }

# ---- the backend -------------------------------------------------------------
#
# The suites name their stores as local directories (SRC).  With
# LODEFS_TEST_BACKEND=s3 (meson's mount_s3_* tests, which run under
# tests/s3/run_with_s3rver.sh) the same suites run against S3 instead:
# lodefs_mount maps SRC to s3://$LODEFS_S3_BUCKET/PREFIX on
# $LODEFS_S3_ENDPOINT, with its cache in SRC/.s3-cache.  The PREFIX is made
# the first time SRC is named and kept in SRC/.s3-prefix, so a remount of
# SRC is the same store with the same cache, and removing SRC makes the next
# mount of it a fresh, empty store, as with a local directory.

# lodefs_backend: prints local or s3, the kind of store the suite runs on.
lodefs_backend() {
	if [ "${LODEFS_TEST_BACKEND:-local}" = s3 ]; then echo s3; else echo local; fi
}

if [ "$(lodefs_backend)" = s3 ]; then
	[ -n "${LODEFS_S3_ENDPOINT:-}" ] && [ -n "${LODEFS_S3_BUCKET:-}" ] ||
		bail_out "LODEFS_TEST_BACKEND=s3 needs tests/s3/run_with_s3rver.sh"
	# for `lode ... s3://...` (lodefs itself gets -o endpoint=)
	export AWS_ENDPOINT_URL=$LODEFS_S3_ENDPOINT
fi

# lodefs_s3_prefix SRC: the S3 prefix that stands for the store SRC (made,
# with SRC, the first time).
lodefs_s3_prefix() {
	local src
	src=$(lodefs__key "$1")
	if ! [ -s "$src/.s3-prefix" ]; then
		mkdir -p "$src" || return 1
		# the path (unique while $T lives) and a random part (a new
		# store once SRC is removed)
		printf '%s-%s%s\n' "$(printf '%s' "$src" | tr -c 'A-Za-z0-9._-' '_' |
			sed 's/^_*//')" "$RANDOM" "$RANDOM" >"$src/.s3-prefix" || return 1
	fi
	cat "$src/.s3-prefix"
}

# lodefs_source SRC: the SOURCE that names the store SRC, for lodefs or
# `lode` (which finds the endpoint in AWS_ENDPOINT_URL): SRC itself, or
# s3://BUCKET/PREFIX under S3.
lodefs_source() {
	if [ "$(lodefs_backend)" = s3 ]; then
		echo "s3://$LODEFS_S3_BUCKET/$(lodefs_s3_prefix "$1")"
	else
		echo "$1"
	fi
}

# lodefs_s3_curl METHOD KEY [CURL-ARG...]: one signed request for KEY in the
# test bucket on s3rver itself (not the proxy); the body on stdout.
lodefs_s3_curl() {
	local method=$1 key=$2
	shift 2
	curl -sS -f -X "$method" --aws-sigv4 "aws:amz:us-east-1:s3" \
		--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
		-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
		"$@" "$LODEFS_S3_ENDPOINT/$LODEFS_S3_BUCKET/$key"
}

# lodefs_s3_list PREFIX: the keys in the test bucket under PREFIX, one a line.
lodefs_s3_list() {
	local token= out
	while :; do
		out=$(curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" \
			--user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
			-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -G \
			--data-urlencode "list-type=2" --data-urlencode "prefix=$1" \
			${token:+--data-urlencode "continuation-token=$token"} \
			"$LODEFS_S3_ENDPOINT/$LODEFS_S3_BUCKET") || return 1
		printf '%s\n' "$out" | grep -o '<Key>[^<]*</Key>' | sed 's/<[^>]*>//g'
		token=$(printf '%s\n' "$out" |
			sed -n 's/.*<NextContinuationToken>\([^<]*\)<.*/\1/p')
		[ -n "$token" ] || return 0
	done
}

# ---- mounting -------------------------------------------------------------

# lodefs_mount SRC MNT [OPT...]: mounts lodefs (daemon output in $T); returns 0
# once MNT is a mountpoint, 1 (showing the log) if the daemon exits or 10 s pass.
# Under S3, SRC stands for an S3 prefix (lodefs_source).
lodefs_mount() {
	local src=$1 mnt log pid opts i
	mnt=$(lodefs__key "$2")
	shift 2
	if [ "$(lodefs_backend)" = s3 ] && [[ "$src" != s3://* ]]; then
		set -- "endpoint=$LODEFS_S3_ENDPOINT" \
			"cache_dir=$(lodefs__key "$src")/.s3-cache" "$@"
		src=$(lodefs_source "$src") || return 1
	fi
	opts=$(IFS=,; echo "$*")
	mkdir -p "$mnt" || return 1
	log=$(mktemp "${LODEFS_LOGDIR:-$T}/lodefs.XXXXXX.log")
	# stdout too: a chatty daemon must not corrupt the TAP stream.
	if [ -n "$opts" ]; then
		"$LODEFS" -f -o "$opts" "$src" "$mnt" >"$log" 2>&1 &
	else
		"$LODEFS" -f "$src" "$mnt" >"$log" 2>&1 &
	fi
	pid=$!
	LODEFS_PIDS[$mnt]=$pid
	LODEFS_LOGS[$mnt]=$log
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$mnt" && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			diag "lodefs exited ($?) before $mnt was mounted; its log:"
			diag <"$log"
			unset "LODEFS_PIDS[$mnt]"
			return 1
		fi
		sleep 0.1
	done
	diag "$mnt is not a mountpoint after 10 s; lodefs log:"
	diag <"$log"
	return 1
}

# lodefs_umount MNT: fusermount3 -u MNT, waits (20 s at most) for the daemon
# and returns its exit status (1 if MNT would not unmount, 124 if it hung).
lodefs_umount() {
	local mnt pid i rc
	mnt=$(lodefs__key "$1")
	pid=${LODEFS_PIDS[$mnt]:-}
	# EBUSY right after a process let go of a file is normal: retry a little.
	for ((i = 0; i < 50; i++)); do
		fusermount3 -u "$mnt" 2>"$T/umount.err" && break
		sleep 0.1
	done
	if [ "$i" -eq 50 ]; then
		diag "fusermount3 -u $mnt failed: $(cat "$T/umount.err")"
		return 1
	fi
	[ -n "$pid" ] || return 0
	unset "LODEFS_PIDS[$mnt]"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		diag "lodefs (pid $pid) still running 20 s after unmount; killing it"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
	rc=$?
	if [ "$rc" -ne 0 ]; then
		diag "lodefs for $mnt exited with status $rc; its log:"
		# now: a remount at the same place gets a new log
		tail -n 40 "${LODEFS_LOGS[$mnt]:-/dev/null}" | diag
	fi
	return "$rc"
}

# lodefs_log MNT: prints the path of the daemon log for MNT.
lodefs_log() { echo "${LODEFS_LOGS[$(lodefs__key "$1")]:-}"; }

# lodefs_track PID: stops PID (TERM, then KILL after 10 s) at exit, before unmounting.
lodefs_track() { LODEFS_TRACKED+=("$1"); }

# lodefs_stop PID: TERM, wait up to 10 s, then KILL; returns the exit status.
lodefs_stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s; 0 when it succeeds, 1 on timeout.
wait_for() {
	local i n=$(($1 * 10))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# drop_caches: forgets unused dentries and inodes (root), as memory pressure would.
drop_caches() { sync && echo 2 >/proc/sys/vm/drop_caches; }

# ---- cleanup --------------------------------------------------------------

# lodefs__cleanup: the EXIT trap; keeps the test's exit status.
lodefs__cleanup() {
	local rc=$? pid mnt i
	for pid in "${LODEFS_TRACKED[@]}"; do
		lodefs_stop "$pid"
	done
	for mnt in "${!LODEFS_PIDS[@]}"; do
		# a crashed daemon leaves a mount that stat() calls ENOTCONN, so
		# do not ask mountpoint(1): just unmount, lazily if need be
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
	done
	for mnt in "${!LODEFS_PIDS[@]}"; do
		pid=${LODEFS_PIDS[$mnt]}
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		lodefs_stop "$pid"
	done
	# anything still mounted under $T (a test's own bindfs, ...): detach it
	# so that rm cannot reach through it into a store
	awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while read -r mnt; do
			fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
		done
	if [ "${LODEFS_KEEP:-0}" = 1 ]; then
		echo "# kept $T" >&2
	else
		rm -rf --one-file-system "$T"
	fi
	exit "$rc"
}
trap lodefs__cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# op OP PATH [TO]: one file operation through tests/mount/op.py; prints OK
# or the errno's name (close() errors included).
op() { python3 "$(dirname "${BASH_SOURCE[0]}")/op.py" "$@"; }

# lodefs_signal MNT SIG: sends SIG to the daemon of MNT, waits (20 s at most)
# and returns its exit status (124 if it did not exit, then it is killed).
lodefs_signal() {
	local key pid i
	key=$(lodefs__key "$1")
	pid=${LODEFS_PIDS[$key]:-}
	[ -n "$pid" ] || return 125
	kill -"$2" "$pid"
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		unset "LODEFS_PIDS[$key]"
		fusermount3 -uz "$1" 2>/dev/null
		return 124
	fi
	wait "$pid"
	local rc=$?
	unset "LODEFS_PIDS[$key]"
	return "$rc"
}

# lodefs_kill9 MNT: SIGKILL the daemon of MNT (a crash), then detach the dead mount.
lodefs_kill9() {
	local key pid
	key=$(lodefs__key "$1")
	pid=${LODEFS_PIDS[$key]:-}
	[ -n "$pid" ] || return 1
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
	unset "LODEFS_PIDS[$key]"
	fusermount3 -uz "$1" 2>/dev/null || umount -l "$1"
}

#!/usr/bin/env bash
# test_s3_faults.sh - a mount of an S3 store whose requests fail (issue 4
# item 5): mounted through tests/s3/faultproxy.py, which answers 5xx and 429,
# drops, resets, truncates and delays requests on demand.  Passing faults are
# retried and no write fails; a fault that lasts longer than timeout= fails
# the close() with EIO, names the file in .lodefs/errors and applies nothing
# of it; a wrong secret fails the mount at once without showing it.
#
# Runs under tests/s3/run_with_s3rver.sh (LODEFS_S3_PROXY, LODEFS_S3_FAULTS).
. "$(dirname "$0")/lib.sh" "$@"
need_root
need_lodefs
need_cmd python3 jq cmp
[ -n "${LODEFS_S3_PROXY:-}" ] && [ -n "${LODEFS_S3_FAULTS:-}" ] ||
	skip_all "needs tests/s3/run_with_s3rver.sh (LODEFS_S3_PROXY)"

FAULTS=$LODEFS_S3_FAULTS
SRC=s3://$LODEFS_S3_BUCKET/faults
MNT=$T/mnt

# faults LINE...: the proxy's next faults (an empty list lets all through).
faults() {
	if [ $# -gt 0 ]; then printf '%s\n' "$@" >"$FAULTS"; else : >"$FAULTS"; fi
}
# pmount MNT [OPT...]: mounts the prefix through the proxy.
pmount() {
	local m=$1
	shift
	lodefs_mount "$SRC" "$m" "endpoint=$LODEFS_S3_PROXY" "$@"
}
retries() { jq -r .backend.requests.retries "$MNT/.lodefs/stats" 2>/dev/null; }

faults
pmount "$MNT" timeout=20 "cache_dir=$T/cache" || bail_out "cannot mount $SRC through the proxy"
ok 0 "mount $SRC through the fault proxy (timeout=20)"

# phase NAME FAULT: with FAULT in the proxy, 50 small files are copied into
# docs/NAME/ (sync=close) and read back.
phase() {
	local name=$1 fault=$2 i rc=0 n=0 r0 r1 t0
	mkdir -p "$T/src/$name"
	for ((i = 1; i <= 50; i++)); do
		printf 'Phase %s, file %d: %d wallabies under a %s sky.\n' \
			"$name" "$i" "$i" "$name" >"$T/src/$name/f$i.txt"
	done
	r0=$(retries)
	t0=$SECONDS
	faults "$fault"
	mkdir -p "$MNT/docs/$name" || rc=1
	for ((i = 1; i <= 50; i++)); do
		cp "$T/src/$name/f$i.txt" "$MNT/docs/$name/" 2>>"$T/cp.err" || rc=1
	done
	ok "$rc" "$fault: all 50 writes succeed ($((SECONDS - t0)) s)" ||
		diag <"$T/cp.err"
	for ((i = 1; i <= 50; i++)); do
		cmp -s "$T/src/$name/f$i.txt" "$MNT/docs/$name/f$i.txt" && n=$((n + 1))
	done
	is "$n" 50 "$fault: all 50 read back byte for byte"
	is "$(tr -d '\n' <"$FAULTS")" "" "$fault: the proxy used every fault up"
	case $fault in
	*truncate*)
		# a PUT's answer has no body to cut short: truncate a listing
		faults "$fault"
		echo >"$MNT/.lodefs/refresh"
		ok $? "$fault: .lodefs/refresh (a LIST) goes through as well"
		;;
	*delay*)
		# a slow answer within the timeout is waited for, not retried
		[ $((SECONDS - t0)) -ge 3 ]
		ok $? "$fault: the writes waited for the slow answers ($((SECONDS - t0)) s)"
		;;
	esac
	r1=$(retries)
	case $fault in
	*delay*) ;;
	*)
		[ -n "$r0" ] && [ -n "$r1" ] && [ "$r1" -gt "$r0" ]
		ok $? "$fault: backend.requests.retries grew ($r0 -> $r1)"
		;;
	esac
	faults
}
phase p503 "5 503"
phase p500 "5 500"
phase p429 "3 429"
phase drop "3 drop"
phase reset "3 reset"
phase trunc "3 truncate 10"
phase delay "2 delay 2"

# ---- a fault that does not pass --------------------------------------------
lodefs_umount "$MNT"
ok $? "unmounted"
pmount "$MNT" timeout=3 "cache_dir=$T/cache" || bail_out "cannot mount with timeout=3"
printf 'Permanent fault document about okapis.\n%.0s' $(seq 1 40) >"$T/perm.txt"
faults "* 500"
t0=$(date +%s%N)
got=$(op write "$MNT/docs/perm.txt" <"$T/perm.txt")
el=$((($(date +%s%N) - t0) / 1000000))
el=$((el / 1000)).$((el % 1000 / 100))
is "$got" EIO "with every request answered 500, the close() fails with EIO"
python3 -c "import sys; sys.exit(not (1 <= float('$el') <= 8))"
ok $? "after about timeout=3 s of retries ($el s)"
grep -q 'perm.txt' "$MNT/.lodefs/errors"
ok $? ".lodefs/errors names the file: $(grep 'perm.txt' "$MNT/.lodefs/errors" | tail -n 1)"
faults
echo >"$MNT/.lodefs/refresh"
ok $? "once the fault is gone, .lodefs/refresh succeeds"
if [ -e "$MNT/docs/perm.txt" ]; then
	cmp -s "$T/perm.txt" "$MNT/docs/perm.txt"
	ok $? "nothing half-applied: perm.txt is there and whole"
else
	ok 0 "nothing half-applied: perm.txt is not there"
fi
is "$(jq -r '.nodes[0].ref_doc_id // "none"' "$MNT/query/k=1/okapis" 2>&1)" none \
	"and no query finds the failed document"
cp "$T/perm.txt" "$MNT/docs/perm.txt"
ok $? "a retry of the write succeeds"
ok_cmd "and reads back" cmp "$T/perm.txt" "$MNT/docs/perm.txt"
lodefs_umount "$MNT"
ok $? "unmounted"

# ---- all of it, read back without a cache, through faults ---------------------
# (the mount reads every segment: faults spread over those GETs, one each)
faults "3 pass" "1 503" "20 pass" "1 503" "20 pass" "1 reset" "20 pass" \
	"1 truncate 10" "20 pass" "1 truncate 10" "20 pass" "1 drop" "20 pass" \
	"1 429" "20 pass" "1 truncate 100"
pmount "$MNT" timeout=20 cache_dir=none || bail_out "cannot mount without a cache"
n=0
for name in p503 p500 p429 drop reset trunc delay; do
	for ((i = 1; i <= 50; i++)); do
		cmp -s "$T/src/$name/f$i.txt" "$MNT/docs/$name/f$i.txt" && n=$((n + 1))
	done
done
is "$n" 350 "a remount without a cache, through faults, reads all 350 files"
ok_cmd "and perm.txt" cmp "$T/perm.txt" "$MNT/docs/perm.txt"
r1=$(retries)
[ -n "$r1" ] && [ "$r1" -gt 0 ] && ! [ -s "$FAULTS" ]
ok $? "the GETs went through 8 faults ($r1 retries; left: $(tr '\n' ' ' <"$FAULTS"))"
got=$(jq -r '.nodes[0].ref_doc_id' "$MNT/query/k=1/wallabies under a trunc sky" 2>&1)
[[ "$got" == trunc/f*.txt ]]
ok $? "queries find the documents written through faults ($got)"
faults
lodefs_umount "$MNT"
ok $? "unmounted"

# ---- a wrong secret -----------------------------------------------------------
mkdir -p "$T/never"
t0=$SECONDS
out=$(AWS_SECRET_ACCESS_KEY=wrong-secret-xyz timeout 20 "$LODEFS" -f \
	-o "endpoint=$LODEFS_S3_PROXY,cache_dir=$T/cache-ws" "$SRC" "$T/never" 2>&1)
rc=$?
if mountpoint -q "$T/never"; then
	fusermount3 -u "$T/never"
	rc=0
fi
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ $((SECONDS - t0)) -le 10 ]
ok $? "a wrong secret fails the mount at once (exit $rc, $((SECONDS - t0)) s)"
echo "$out" | grep -qi 'signature\|secret\|key\|refused\|denied'
ok $? "with a message that says the key or signature was refused: $out"
! echo "$out" | grep -q 'wrong-secret-xyz'
ok $? "and the message does not show the secret"

done_testing

#!/usr/bin/env bash
# test_s3.sh - mounts of s3:// stores (issue 4): configuration and secrets,
# the local cache, several mounts of one prefix converging, `lode` beside a
# mount, and an S3 server that goes away in the middle of an ingest.
#
# Starts its own s3rver (tests/s3/s3rver.sh) on 127.0.0.1, and stops it by
# its PID at exit.
. "$(dirname "$0")/lib.sh" "$@"
need_root
need_lodefs
need_cmd python3 curl jq cmp
LODE=${LODE:-$(dirname "$LODEFS")/../tools/lode}
S3RVER=$(cd "$(dirname "$0")/../s3" && pwd)/s3rver.sh
"$S3RVER" install >"$T/install.log" 2>&1 ||
	skip_all "s3rver cannot be installed here: $(tail -n 3 "$T/install.log")"

SRV=$T/s3
start_server() {
	local out
	out=$("$S3RVER" start "$SRV" lodefs-test) || return 1
	PORT=${out% *}
	lodefs_track "${out#* }"
}
start_server || bail_out "s3rver does not start: $(cat "$SRV/s3rver.log")"
EP=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL AWS_REGION AWS_DEFAULT_REGION
export AWS_SHARED_CREDENTIALS_FILE=$T/none AWS_CONFIG_FILE=$T/none

# s3mount PREFIX MNT [OPT...]: mounts s3://lodefs-test/PREFIX with a cache of
# its own per mountpoint.
s3mount() {
	local prefix=$1 mnt=$2
	shift 2
	lodefs_mount "s3://lodefs-test/$prefix" "$mnt" "endpoint=$EP" \
		"cache_dir=$T/cache-$(basename "$mnt")" "$@"
}

# stat_of MNT JQ: a figure from MNT/.lodefs/stats.
stat_of() { jq -r "$2" "$1/.lodefs/stats"; }

# ---- configuration, secrets, refusals ---------------------------------------

A=$T/a
s3mount one "$A" || bail_out "cannot mount s3://lodefs-test/one"
echo "The quick brown fox jumps over the lazy dog." >"$A/docs/fox.txt"
ok $? "a document is written to an S3 store"
is "$(cat "$A/docs/fox.txt")" "The quick brown fox jumps over the lazy dog." \
	"and reads back"
is "$(jq -r '.nodes[0].ref_doc_id' "$A/query/lazy dog")" "fox.txt" "and answers queries"
is "$(jq -r .backend "$A/.lodefs/config")" "s3" ".lodefs/config says s3"
is "$(jq -r .bucket "$A/.lodefs/config")" "lodefs-test" "and the bucket"
is "$(jq -r .endpoint "$A/.lodefs/config")" "$EP" "and the endpoint"
! grep -rq "S3RVER" "$A/.lodefs/config" "$A/.lodefs/stats" "$A/.lodefs/errors" \
	"$(lodefs_log "$A")"
ok $? "the credentials are in no .lodefs/ file and not in the daemon log"
pid=$(pgrep -f "lodefs.*$A" | head -n 1)
! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q S3RVER
ok $? "nor on the command line"
objs=$(curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER \
	-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
	"$EP/lodefs-test?list-type=2&prefix=one/" | grep -o '<Key>[^<]*</Key>' | wc -l)
[ "$objs" -ge 2 ]
ok $? "the store's objects are in the bucket under one/ ($objs)"

mkdir -p "$T/never"
# refused DESC CMD...: CMD (a foreground lodefs) must fail, not mount; its
# output is left in $out.  (A mount that wrongly succeeds is undone.)
refused() {
	local desc=$1 rc
	shift
	out=$(timeout 20 "$@" 2>&1)
	rc=$?
	if mountpoint -q "$T/never"; then
		fusermount3 -u "$T/never"
		rc=0
	fi
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
	ok $? "$desc (exit $rc)"
}
# s3rver checks that an access key exists, not the signature's secret
refused "an unknown access key fails the mount at once" \
	env AWS_ACCESS_KEY_ID=NOBODY AWS_SECRET_ACCESS_KEY=not-the-secret-xyz \
	"$LODEFS" -f -o "endpoint=$EP" s3://lodefs-test/one "$T/never"
echo "$out" | grep -qi "refused\|access key\|denied"
ok $? "with a message that says the key was refused: $out"
! echo "$out" | grep -q "not-the-secret-xyz"
ok $? "and does not show the secret"
refused "a missing bucket fails the mount" \
	"$LODEFS" -f -o "endpoint=$EP" s3://no-such-bucket/x "$T/never"
echo "$out" | grep -qi "no such bucket"
ok $? "with a message that says so: $out"
refused "an endpoint nobody listens on fails the mount" \
	"$LODEFS" -f -o "endpoint=http://127.0.0.1:1,timeout=2" \
	s3://lodefs-test/x "$T/never"
echo "$out" | grep -qi "reach\|refused\|connect"
ok $? "with a message that says so: $out"

refused "cache_size=12x is refused" \
	"$LODEFS" -f -o "endpoint=$EP,cache_size=12x" s3://lodefs-test/one "$T/never"
echo "$out" | grep -q "cache_size=12x"
ok $? "naming the option: $out"

# passwd_file, as s3fs has it: refused when others can read it
printf 'S3RVER:S3RVER\n' >"$T/passwd"
chmod 0644 "$T/passwd"
refused "a passwd_file others can read is refused" \
	env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY "$LODEFS" -f \
	-o "endpoint=$EP,passwd_file=$T/passwd" s3://lodefs-test/pw "$T/never"
echo "$out" | grep -q "$T/passwd"
ok $? "naming the file: $out"
chmod 0600 "$T/passwd"
P=$T/p
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
s3mount pw "$P" "passwd_file=$T/passwd"
ok $? "a passwd_file of mode 0600 mounts"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
mountpoint -q "$P" && { echo x >"$P/docs/x.txt"; lodefs_umount "$P"; }

# ---- the cache -------------------------------------------------------------

for i in $(seq 1 40); do
	printf 'Document %d about kiwis and mangoes, version one.\n' "$i" \
		>"$A/docs/k$i.txt"
done
ok $? "40 more documents written"
echo > "$A/.lodefs/refresh" # a checkpoint may have been written: no matter
lodefs_umount "$A"
ok $? "unmounted"
s3mount one "$A" || bail_out "cannot mount s3://lodefs-test/one again"
gets=$(stat_of "$A" .backend.requests.get)
is "$(cat "$A/docs/k7.txt")" "Document 7 about kiwis and mangoes, version one." \
	"a remount reads what was written"
is "$gets" "0" "and downloaded no object again: all came from the cache"
[ "$(stat_of "$A" .backend.cache.hits)" -gt 0 ]
ok $? "the cache says it was used ($(stat_of "$A" .backend.cache.hits) hits)"
lodefs_umount "$A"
# damage every cached file: each is detected and fetched again
n=0
while IFS= read -r -d '' f; do
	sz=$(stat -c %s "$f")
	[ "$sz" -gt 0 ] || continue
	printf '\xff' | dd of="$f" bs=1 seek=$((sz - 1)) conv=notrunc status=none
	n=$((n + 1))
done < <(find "$T/cache-a" -type f -print0)
[ "$n" -gt 0 ]
ok $? "damaged the last byte of $n cache files"
s3mount one "$A" || bail_out "cannot mount after damaging the cache"
is "$(cat "$A/docs/k9.txt")" "Document 9 about kiwis and mangoes, version one." \
	"a damaged cache does not change what is read"
[ "$(stat_of "$A" .backend.cache.corrupt)" -gt 0 ]
ok $? "and the damage was detected ($(stat_of "$A" .backend.cache.corrupt) files)"

# ---- several mounts of one prefix ------------------------------------------

lodefs_umount "$A"
s3mount two "$A" refresh=1 || bail_out "mount A of two/"
B=$T/b
s3mount two "$B" refresh=1 || bail_out "mount B of two/"
C=$T/c
s3mount two "$C" refresh=3600 || bail_out "mount C of two/"

# writers on both sides at once: different keys and the same key
(for i in $(seq 1 20); do echo "from A, file $i, apricots" >"$A/docs/a$i.txt"; done) &
pa=$!
(for i in $(seq 1 20); do echo "from B, file $i, blueberries" >"$B/docs/b$i.txt"; done) &
pb=$!
(for i in $(seq 1 10); do echo "A wrote this, round $i" >"$A/docs/same.txt"; done) &
pc=$!
(for i in $(seq 1 10); do echo "B wrote this, round $i" >"$B/docs/same.txt"; done) &
pd=$!
wait $pa && wait $pb && wait $pc && wait $pd
ok $? "two mounts wrote 40 files and one shared file at the same time"

converged() {
	[ "$(ls "$A/docs" | grep -c '^[ab][0-9]*\.txt$')" -eq 40 ] &&
		[ "$(ls "$B/docs" | grep -c '^[ab][0-9]*\.txt$')" -eq 40 ] &&
		[ "$(cat "$A/docs/same.txt")" = "$(cat "$B/docs/same.txt")" ]
}
wait_for 10 converged
ok $? "within the refresh interval both mounts list all 40 and agree on same.txt"
is "$(cat "$B/docs/a17.txt")" "from A, file 17, apricots" "B reads A's file"
is "$(cat "$A/docs/b3.txt")" "from B, file 3, blueberries" "A reads B's file"
is "$(jq -r '.nodes[0].ref_doc_id' "$B/query/k=1/apricots file 5")" "a5.txt" \
	"B's queries find A's documents"
grep -q "round 10" "$A/docs/same.txt"
ok $? "the shared file holds one writer's last version: $(cat "$A/docs/same.txt")"

# what the kernel cached is dropped when another mount changes it
cat "$B/docs/a1.txt" >/dev/null
stat "$B/docs/a1.txt" >/dev/null
echo "A changed a1, now with figs" >"$A/docs/a1.txt"
wait_for 10 sh -c "grep -q figs '$B/docs/a1.txt'"
ok $? "an overwrite on A shows on B (pages and size invalidated)"
rm "$A/docs/a2.txt"
wait_for 10 sh -c "! test -e '$B/docs/a2.txt'"
ok $? "a delete on A shows on B"
mkdir -p "$A/docs/sub/deeper" && echo "nested pears" >"$A/docs/sub/deeper/p.txt"
wait_for 10 test -f "$B/docs/sub/deeper/p.txt"
ok $? "new directories and a nested file on A show on B"
mkdir "$A/docs/empty-dir"
wait_for 10 test -d "$B/docs/empty-dir"
ok $? "an empty directory made on A shows on B"
ino_before=$(stat -c %i "$B/docs/a3.txt")
mv "$A/docs/a3.txt" "$A/docs/sub/a3-moved.txt"
wait_for 10 test -f "$B/docs/sub/a3-moved.txt"
ok $? "a rename on A shows on B"
! test -e "$B/docs/a3.txt"
ok $? "and the old name is gone on B"
is "$(stat -c %i "$B/docs/sub/a3-moved.txt")" "$ino_before" \
	"the moved file keeps its inode number on B"

# a removal not committed yet (sync=fsync) wins over what another mount
# wrote before it: the name does not come back when this mount catches up
F=$T/f
s3mount two "$F" sync=fsync refresh=3600 || bail_out "mount F of two/"
echo >"$F/.lodefs/refresh"
test -f "$F/docs/b4.txt"
ok $? "F sees b4.txt"
rm "$F/docs/b4.txt" &&
	echo "B changed b4, now with damsons" >"$B/docs/b4.txt" &&
	echo >"$F/.lodefs/refresh"
ok $? "F removes b4.txt while B overwrites it, and F catches up at once"
! test -e "$F/docs/b4.txt"
ok $? "the name F removed stays gone on F"
sync_one=$(ls "$F"/docs/*.txt | head -n 1)
python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$sync_one"
wait_for 10 sh -c "! test -e '$B/docs/b4.txt'"
ok $? "and once F's removal is committed, B loses it too (F's removal came last)"
lodefs_umount "$F"

# a mount with a long interval catches up on demand
test -f "$C/docs/a5.txt" 2>/dev/null
echo >"$C/.lodefs/refresh"
ok $? "writing .lodefs/refresh succeeds"
is "$(cat "$C/docs/a5.txt" 2>/dev/null)" "from A, file 5, apricots" \
	"and C, with refresh=3600, sees A's files right after it"
[ "$(jq -r .refreshes "$C/.lodefs/refresh")" -ge 1 ]
ok $? ".lodefs/refresh reports the refreshes done"

# `lode` beside the mounts
mkdir -p "$T/src" && echo "a cherry document from lode" >"$T/src/lode-cherry.txt"
AWS_ENDPOINT_URL=$EP XDG_CACHE_HOME=$T/lode-cache \
	ok_cmd "lode add works on the s3:// store while it is mounted" \
	"$LODE" add s3://lodefs-test/two "$T/src" --base "$T/src"
wait_for 10 test -f "$A/docs/lode-cherry.txt"
ok $? "the mounts see what lode added"
out=$(AWS_ENDPOINT_URL=$EP XDG_CACHE_HOME=$T/lode-cache \
	"$LODE" query s3://lodefs-test/two "apricots file 11" 2>&1)
echo "$out" | grep -q "a11.txt"
ok $? "lode query on the s3:// store finds the mounts' documents"
lodefs_umount "$C"

# nothing acknowledged is lost: a fresh mount sees it all
lodefs_umount "$A"
ok $? "A unmounts cleanly"
lodefs_umount "$B"
ok $? "B unmounts cleanly"
D=$T/d
s3mount two "$D" || bail_out "a fresh mount of two/"
[ "$(ls "$D/docs" | grep -c '^[ab][0-9]*\.txt$')" -eq 37 ]
ok $? "a fresh mount with an empty cache has every file (37 after two rm and a mv)"
is "$(cat "$D/docs/a1.txt")" "A changed a1, now with figs" "with the latest contents"
lodefs_umount "$D"

# ---- the server goes away in the middle of an ingest ----------------------

E=$T/e
s3mount three "$E" timeout=30 || bail_out "mount of three/"
mkdir -p "$T/ingest"
for i in $(seq 1 60); do
	printf 'Outage document %d: plums, quinces and %d raisins.\n' "$i" "$i" \
		>"$T/ingest/o$i.txt"
done
(cp "$T/ingest"/o*.txt "$E/docs/" 2>"$T/cp.err"; echo $? >"$T/cp.rc") &
cpp=$!
sleep 0.3
"$S3RVER" stop "$SRV"
sleep 3
S3RVER_PORT=$PORT start_server
ok $? "s3rver stopped for 3 s in the middle of the copy, then started again"
wait $cpp
is "$(cat "$T/cp.rc")" "0" "the copy waited for the server and succeeded: $(head -c 300 "$T/cp.err")"
lodefs_umount "$E"
ok $? "unmounted after the outage"
s3mount three "$E" cache_dir=none || bail_out "remount of three/"
n=0
for i in $(seq 1 60); do
	cmp -s "$T/ingest/o$i.txt" "$E/docs/o$i.txt" && n=$((n + 1))
done
is "$n" "60" "after a remount without a cache every file is there, byte for byte"
lodefs_umount "$E"

done_testing

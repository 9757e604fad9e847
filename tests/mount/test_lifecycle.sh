#!/usr/bin/env bash
# test_lifecycle.sh - how a mount ends and starts (TAP): SIGTERM and
# fusermount3 -u flush and exit 0; SIGKILL loses nothing whose close()
# returned; a second mount of the same store is refused; a damaged store is
# refused with a message that points at `lode fsck`.
#
# Usage: test_lifecycle.sh PATH/TO/lodefs [PATH/TO/lode]
#        (or $LODEFS and $LODE, as meson sets them); needs root.
# Issue 3, item 9.
. "$(dirname "$0")/lib.sh" "$@"
LODE=${LODE:-${2:-}}
[ -n "$LODE" ] || LODE=$(dirname "$LODEFS")/../tools/lode

need_root
need_lodefs
need_cmd python3 jq cmp sha256sum

# ---- helpers (not in lib.sh) ----------------------------------------------

# daemon_pid MNT: the pid of the lodefs serving MNT (as lodefs_mount recorded it).
daemon_pid() { echo "${LODEFS_PIDS[$(lodefs__key "$1")]:-}"; }

# is_mounted MNT: true if MNT is in the mount table (a dead FUSE mount counts).
is_mounted() { awk -v m="$(lodefs__key "$1")" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# write_set MNT TAG N: writes N documents docs/TAG/fI.txt plus a node, a
# vector, an index struct and a triple, all named after TAG, with cp and
# touch; the expected content of each file goes under $T/want/TAG.  Goes on
# after a failure (returns 1 then), so that check_set shows what is missing.
write_set() {
	local m=$1 tag=$2 n=$3 i rc=0
	mkdir -p "$T/want/$tag" "$m/docs/$tag" "$m/graph/$tag/made" || rc=1
	for ((i = 1; i <= n; i++)); do
		printf 'Document %d of set %s mentions %s%d wombats.\n' "$i" "$tag" "$tag" "$i" >"$T/want/$tag/f$i.txt"
		cp "$T/want/$tag/f$i.txt" "$m/docs/$tag/f$i.txt" || rc=1
	done
	head -c 200000 /dev/urandom >"$T/want/$tag/blob.bin"
	cp "$T/want/$tag/blob.bin" "$m/docs/$tag/blob.bin" || rc=1
	printf '{"text": "Node of set %s about %snumbats.", "metadata": {"set": "%s"}}' "$tag" "$tag" "$tag" \
		>"$T/want/$tag/node.json"
	cp "$T/want/$tag/node.json" "$m/nodes/node-$tag.json" || rc=1
	python3 -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<4f", 1, 2, 3, 4))' >"$T/want/$tag/vec"
	cp "$T/want/$tag/vec" "$m/vectors/lc/$tag" || rc=1
	printf '{"__type__": "list", "__data__": {"index_id": "%s", "nodes": []}}' "$tag" >"$T/want/$tag/index.json"
	cp "$T/want/$tag/index.json" "$m/index/ix-$tag.json" || rc=1
	touch "$m/graph/$tag/made/it" || rc=1
	return "$rc"
}

# check_set MNT TAG N: prints what is missing or different (nothing if all is there).
check_set() {
	local m=$1 tag=$2 n=$3 i
	for ((i = 1; i <= n; i++)); do
		cmp -s "$T/want/$tag/f$i.txt" "$m/docs/$tag/f$i.txt" || echo "docs/$tag/f$i.txt"
	done
	cmp -s "$T/want/$tag/blob.bin" "$m/docs/$tag/blob.bin" || echo "docs/$tag/blob.bin"
	[ "$(jq -r .text "$m/nodes/node-$tag.json" 2>/dev/null)" = "Node of set $tag about ${tag}numbats." ] ||
		echo "nodes/node-$tag.json"
	cmp -s "$T/want/$tag/vec" "$m/vectors/lc/$tag" || echo "vectors/lc/$tag"
	[ "$(jq -r .__data__.index_id "$m/index/ix-$tag.json" 2>/dev/null)" = "$tag" ] || echo "index/ix-$tag.json"
	[ -e "$m/graph/$tag/made/it" ] || echo "graph/$tag/made/it"
	[ "$(cat "$m/query/k=1/${tag}${n}" 2>/dev/null | jq -r '.nodes[0].ref_doc_id')" = "$tag/f$n.txt" ] ||
		echo "query/k=1/${tag}${n} (searchable)"
}

src=$T/store
mnt=$T/mnt

lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts a new local store" || done_testing
mkdir "$mnt/vectors/lc"
ok $? "mkdir vectors/lc"

# ---- fusermount3 -u ---------------------------------------------------------------
write_set "$mnt" u1 5
ok $? "write a set of documents, a node, a vector, an index struct and a triple"
lodefs_umount "$mnt"
ok $? "fusermount3 -u: the daemon exits 0"
! is_mounted "$mnt"
ok $? "the mountpoint is no longer mounted"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
is "$(check_set "$mnt" u1 5 | tr '\n' ' ')" "" "after fusermount3 -u everything written is there"

# ---- SIGTERM ---------------------------------------------------------------------
write_set "$mnt" t1 5
ok $? "write a second set"
lodefs_signal "$mnt" TERM
is "$?" 0 "SIGTERM: the daemon exits 0"
! is_mounted "$mnt"
ok $? "and unmounts the mountpoint"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
is "$({ check_set "$mnt" u1 5; check_set "$mnt" t1 5; } | tr '\n' ' ')" "" "after SIGTERM everything written is there"
lodefs_umount "$mnt"
ok $? "unmount exits 0"

# ---- sync=fsync: SIGTERM and fusermount3 -u flush what is pending -----------------
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "mount with -o sync=fsync" || done_testing
write_set "$mnt" ft 8
lodefs_signal "$mnt" TERM
is "$?" 0 "sync=fsync, SIGTERM right after closing: the daemon exits 0"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
is "$(check_set "$mnt" ft 8 | tr '\n' ' ')" "" "SIGTERM flushed the pending writes"
lodefs_umount "$mnt"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "mount with -o sync=fsync again" || done_testing
write_set "$mnt" fu 8
lodefs_umount "$mnt"
ok $? "sync=fsync, fusermount3 -u right after closing: the daemon exits 0"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
is "$(check_set "$mnt" fu 8 | tr '\n' ' ')" "" "fusermount3 -u flushed the pending writes"

# ---- SIGKILL after close() returned loses nothing -------------------------------
write_set "$mnt" k1 5
ok $? "write a set (sync=close)"
lodefs_kill9 "$mnt"
ok $? "kill -9 the daemon right after the last close() returned, fusermount3 -uz"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again after kill -9" || done_testing
is "$(check_set "$mnt" k1 5 | tr '\n' ' ')" "" "nothing acknowledged was lost to kill -9"
is "$({ for s in u1 t1; do check_set "$mnt" $s 5; done; for s in ft fu; do check_set "$mnt" $s 8; done; } | tr '\n' ' ')" "" \
	"and the earlier sets are all there"

# kill -9 in the middle of a stream of writes: every file whose close()
# returned (the writer logs it then) must be there, whole.
cat >"$T/writer.py" <<'PY'
import os, sys
m, log = sys.argv[1], open(sys.argv[2], "w")
os.makedirs(os.path.join(m, "docs", "stream"), exist_ok=True)
i = 0
while True:
    i += 1
    data = ("Stream file %d about quolls.\n" % i) * (1 + i % 50)
    p = os.path.join(m, "docs", "stream", "s%d.txt" % i)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data.encode())
        os.close(fd)
    except OSError:
        break
    log.write("s%d.txt %d\n" % (i, len(data)))
    log.flush()
PY
python3 "$T/writer.py" "$mnt" "$T/stream.log" 2>/dev/null &
wpid=$!
sleep 1.5
lodefs_kill9 "$mnt"
wait "$wpid"
acked=$(wc -l <"$T/stream.log")
[ "$acked" -gt 5 ]
ok $? "a writer streamed files until the daemon was killed ($acked closed)"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
lost=$(python3 - "$mnt" "$T/stream.log" <<'PY'
import os, sys
m = sys.argv[1]
bad = []
for line in open(sys.argv[2]):
    name, n = line.split()
    i = int(name[1:-4])
    want = (("Stream file %d about quolls.\n" % i) * (1 + i % 50)).encode()
    try:
        got = open(os.path.join(m, "docs", "stream", name), "rb").read()
    except OSError as e:
        got = None
    if got != want:
        bad.append(name)
print(" ".join(bad))
PY
)
is "$lost" "" "every file whose close() returned before kill -9 is there, byte for byte"
last=$(tail -n 1 "$T/stream.log" | cut -d' ' -f1)
is "$(cat "$mnt/query/k=1/doc=stream%2F$last/quolls" 2>/dev/null | jq -r '.nodes[0].ref_doc_id')" "stream/$last" \
	"the last acknowledged file is searchable"
lodefs_umount "$mnt"
ok $? "unmount exits 0"
if [ -x "$LODE" ]; then
	ok_cmd "lode fsck finds the store consistent after the crashes" "$LODE" fsck "$(lodefs_source "$src")"
else
	skip "lode fsck finds the store consistent after the crashes" "no lode at $LODE"
fi

# ---- a second mount of the same store is refused ---------------------------------
lodefs_mount "$src" "$mnt"
ok $? "mount the store" || done_testing
mkdir -p "$T/mnt2"
if [ "$(lodefs_backend)" = local ]; then
	timeout 20 "$LODEFS" -f "$src" "$T/mnt2" >"$T/second.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
	ok $? "a second lodefs on the same store exits non-zero at once (status $rc)"
	grep -qi 'in use' "$T/second.log"
	ok $? "its message says the store is in use"
	diag <"$T/second.log"
	! is_mounted "$T/mnt2"
	ok $? "the second mountpoint is not mounted"
else
	# several mounts of one prefix are writers of their own (README)
	skip "a second lodefs on the same store exits non-zero at once" "local store only"
	skip "its message says the store is in use" "local store only"
	lodefs_mount "$(lodefs_source "$src")" "$T/mnt2" "endpoint=$LODEFS_S3_ENDPOINT" \
		"cache_dir=$T/cache-second"
	ok $? "a second mount of the same S3 prefix (a cache of its own) is allowed"
	is "$(check_set "$T/mnt2" k1 5 | tr '\n' ' ')" "" "and sees what the first wrote"
	lodefs_umount "$T/mnt2"
fi
is "$(check_set "$mnt" k1 5 | tr '\n' ' ')" "" "the first mount still works"
lodefs_umount "$mnt"
ok $? "unmount exits 0"
lodefs_mount "$src" "$T/mnt2"
ok $? "once the first is unmounted, the store mounts elsewhere"
lodefs_umount "$T/mnt2"

# ---- a damaged store is refused, pointing at lode fsck -----------------------------
# A fresh writer's segments: five closes, five segments that no checkpoint
# covers yet (a checkpoint's segments may outlive it when a kill -9 came
# between the two, and are then garbage that opening never reads).  Its
# middle one, since a damaged last segment of a writer is a torn write
# that recovery may drop.
lodefs_mount "$src" "$T/mnt2"
for i in 1 2 3 4 5; do
	printf 'segment %s of the damage test\n' "$i" >"$T/mnt2/docs/damage$i.txt"
done
writer=$(jq -r .backend.writer "$T/mnt2/.lodefs/stats" 2>/dev/null)
lodefs_umount "$T/mnt2"
if [ "$(lodefs_backend)" = local ]; then
	wdir=$(find "$src" -name '*.seg' -printf '%T@ %h\n' | sort -rn | awk 'NR == 1 { print $2 }')
	segs=$(find "$wdir" -name '*.seg' | sort)
else
	# the same in the bucket: that mount's (the writer's) segment objects
	segs=$(lodefs_s3_list "$(lodefs_s3_prefix "$src")/log/$writer/" | grep '\.seg$' | sort)
fi
nseg=$(printf '%s\n' "$segs" | grep -c .)
[ "$nseg" -ge 3 ]
ok $? "the store has a writer with several log segments ($nseg)"
victim=$(printf '%s\n' "$segs" | sed -n "$(((nseg + 1) / 2))p")
# store_sums: a checksum of every file (local) or object (S3) of the store
if [ "$(lodefs_backend)" = local ]; then
	size=$(stat -c %s "$victim")
	printf 'CORRUPTED-BY-TEST' | dd of="$victim" bs=1 seek=$((size / 2)) conv=notrunc status=none
	store_sums() { (cd "$src" && find . -type f ! -name '*.lock' -print0 | sort -z | xargs -0 sha256sum); }
	damaged() { timeout 20 "$LODEFS" -f "$src" "$mnt"; }
	fsck_src=$src
else
	lodefs_s3_curl GET "$victim" -o "$T/victim" &&
		size=$(stat -c %s "$T/victim") &&
		printf 'CORRUPTED-BY-TEST' | dd of="$T/victim" bs=1 seek=$((size / 2)) conv=notrunc status=none &&
		lodefs_s3_curl PUT "$victim" --data-binary "@$T/victim" >/dev/null
	store_sums() {
		lodefs_s3_list "$(lodefs_s3_prefix "$src")/" | while read -r k; do
			printf '%s %s\n' "$(lodefs_s3_curl GET "$k" | sha256sum | cut -c1-64)" "$k"
		done
	}
	# a cache of its own, as on another machine: the damage is in the bucket
	damaged() {
		timeout 20 "$LODEFS" -f -o "endpoint=$LODEFS_S3_ENDPOINT,cache_dir=$T/cache-damaged" \
			"$(lodefs_source "$src")" "$mnt"
	}
	fsck_src=$(lodefs_source "$src")
fi
ok $? "corrupt the middle of a segment that is not the last ($(basename "$victim"))"
store_sums >"$T/store.before"
damaged >"$T/damaged.log" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && is_mounted "$mnt"; then fusermount3 -u "$mnt"; fi
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
ok $? "lodefs refuses the damaged store (status $rc)"
diag <"$T/damaged.log"
! is_mounted "$mnt"
ok $? "and does not mount it"
grep -q 'lode fsck' "$T/damaged.log"
ok $? "the message says to run lode fsck"
[ "$(lodefs_backend)" = local ] && fsck_want=$(realpath "$src") || fsck_want=$fsck_src
grep -qF "lode fsck $fsck_want\`" "$T/damaged.log"
ok $? "on the store as lode takes it (lode fsck $fsck_want)"
grep -qi 'damaged\|corrupt\|checksum' "$T/damaged.log" && grep -q "$(basename "$victim")" "$T/damaged.log"
ok $? "the message says what is wrong and where ($(basename "$victim"))"
store_sums >"$T/store.after"
ok_cmd "the refused start changed nothing in the store" diff "$T/store.before" "$T/store.after"
if [ -x "$LODE" ]; then
	XDG_CACHE_HOME=$T/lode-cache "$LODE" fsck "$fsck_src" >"$T/fsck.out" 2>&1
	rc=$?
	[ "$rc" -eq 1 ] && grep -q "$(basename "$victim")" "$T/fsck.out"
	ok $? "lode fsck names the damaged segment and exits 1 (status $rc)"
else
	skip "lode fsck names the damaged segment and exits 1" "no lode at $LODE"
fi

# ---- the backend fails midway: a full disk ---------------------------------------
full=$T/full
mkdir -p "$full" "$T/mnt3"
if [ "$(lodefs_backend)" != local ]; then
	# (test_s3_faults.sh fails an S3 backend midway)
	for p in "mount a store on a 2 MiB tmpfs" "a 3 MB document that does not fit: close() is EIO" \
		".lodefs/errors names the document and says why" "what was committed before still reads back" \
		"unmount exits 0" "lode fsck finds the store clean" \
		"after a remount: the failed document is not there, the other is"; do
		skip "$p" "local store only"
	done
elif mount -t tmpfs -o size=2m tmpfs "$full" 2>/dev/null; then
	lodefs_mount "$full/store" "$T/mnt3"
	ok $? "mount a store on a 2 MiB tmpfs"
	printf 'a small document\n' >"$T/mnt3/docs/small.txt"
	head -c 3000000 /dev/urandom >"$T/big.bin"
	is "$(op write "$T/mnt3/docs/big.bin" <"$T/big.bin")" EIO \
		"a 3 MB document that does not fit: close() is EIO"
	grep -q 'big.bin not committed: .*No space left on device' "$T/mnt3/.lodefs/errors"
	ok $? ".lodefs/errors names the document and says why"
	ok_cmd "what was committed before still reads back" grep -qx 'a small document' "$T/mnt3/docs/small.txt"
	lodefs_umount "$T/mnt3"
	ok $? "unmount exits 0"
	if [ -x "$LODE" ]; then
		ok_cmd "lode fsck finds the store clean" "$LODE" fsck "$full/store"
	else
		skip "lode fsck finds the store clean" "no lode at $LODE"
	fi
	lodefs_mount "$full/store" "$T/mnt3"
	is "$(ls "$T/mnt3/docs")" "small.txt" "after a remount: the failed document is not there, the other is"
	lodefs_umount "$T/mnt3"
	umount "$full"
else
	skip "a full disk (no tmpfs)" "cannot mount tmpfs"
fi

done_testing

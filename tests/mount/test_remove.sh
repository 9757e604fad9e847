#!/usr/bin/env bash
# test_remove.sh - rm in docs/ (TAP): with -o sync=fsync removals are queued
# and committed with the next round of writes (within a second, at an
# fsync of a file or of a directory, at unmount); names are gone at once;
# a path removed and made again, or renamed onto, never meets its old
# deletion; a crash before the round may bring a removed file back, whole;
# with sync=close an rm is durable when it returns.
#
# Usage: test_remove.sh PATH/TO/lodefs [PATH/TO/lode]
#        (or $LODEFS and $LODE, as meson sets them); needs root.
. "$(dirname "$0")/lib.sh" "$@"
LODE=${LODE:-${2:-}}
[ -n "$LODE" ] || LODE=$(dirname "$LODEFS")/../tools/lode

need_root
need_lodefs
need_cmd python3 jq cmp

# ---- helpers (not in lib.sh) ----------------------------------------------

# q PATH-UNDER-query/ JQ: runs jq on a query result (prints "READ-FAILED" if unreadable).
q() {
	local out
	out=$(cat "$mnt/query/$1" 2>&1) || { echo "READ-FAILED: $out"; return 1; }
	printf '%s' "$out" | jq -c "$2" 2>&1
}

# hits WORD: the ref_doc_ids that a keyword query for WORD returns, as JSON.
hits() { q "k=10/$1" '[.nodes[].ref_doc_id] | unique'; }

# put PATH TEXT: writes TEXT to PATH and fsync()s it (everything pending
# is committed with it).
put() { printf '%s\n' "$2" | op write_fsync "$1" >/dev/null; }

# fsync_dir DIR: fsync() of a directory.
fsync_dir() {
	python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.close(fd)' "$1"
}

pending_removals() { jq -r '.writes.pending_removals' "$mnt/.lodefs/stats"; }

# fsck: `lode fsck` of the unmounted store as a test point.
fsck() {
	if [ -x "$LODE" ]; then
		ok_cmd "lode fsck finds the store consistent $1" "$LODE" fsck "$src"
	else
		skip "lode fsck finds the store consistent $1" "no lode at $LODE"
	fi
}

mnt=$T/mnt
src=$T/store
mkdir -p "$mnt" "$src"

# ---- names go at once; the deletion commits with the next round ------------
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "mount with -o sync=fsync" || done_testing
put "$mnt/docs/q.txt" "Quokkas smile at visitors on Rottnest Island."
is "$(hits quokkas)" '["q.txt"]' "a file fsync()ed is searchable"
rm "$mnt/docs/q.txt"
ok $? "rm of it"
is "$(op stat "$mnt/docs/q.txt")" ENOENT "its name is gone at once (lookup)"
ls "$mnt/docs" | grep -qx q.txt
ok $((!$?)) "and from the listing"
fsync_dir "$mnt/docs"
ok $? "fsync() of docs/ succeeds"
is "$(pending_removals)" 0 "after it no removal is pending"
is "$(hits quokkas)" '[]' "and queries no longer return the document"
put "$mnt/docs/q2.txt" "Quolls hunt at night."
rm "$mnt/docs/q2.txt"
printf 'Other words.\n' | op write_fsync "$mnt/docs/other.txt" >/dev/null
is "$(hits quolls)" '[]' "fsync() of another file commits the removals before it"
put "$mnt/docs/q3.txt" "Quetzals nest in hollow trees."
rm "$mnt/docs/q3.txt"
gone_q3() { [ "$(hits quetzals)" = '[]' ]; }
wait_for 3 gone_q3
ok $? "without any fsync the removal is committed within a second or so"

# ---- rm, then the same name made again -------------------------------------
put "$mnt/docs/a.txt" "Aardvarks dig burrows."
rm "$mnt/docs/a.txt" && printf 'Albatrosses glide for hours.\n' >"$mnt/docs/a.txt"
ok $? "rm then an immediate create of the same name"
is "$(cat "$mnt/docs/a.txt")" "Albatrosses glide for hours." "it reads the new content"
put "$mnt/docs/same.txt" "Same words twice."
rm "$mnt/docs/same.txt" && printf 'Same words twice.\n' >"$mnt/docs/same.txt"
ok $? "rm then create with the very same content"
put "$mnt/docs/b.txt" "Bisons graze."
put "$mnt/docs/c.txt" "Capybaras bathe."
rm "$mnt/docs/b.txt" && mv "$mnt/docs/c.txt" "$mnt/docs/b.txt"
ok $? "rm then mv of another file onto the same name"
is "$(cat "$mnt/docs/b.txt")" "Capybaras bathe." "the name reads the moved file"
is "$(op stat "$mnt/docs/c.txt")" ENOENT "and the old name is gone"
fsync_dir "$mnt/docs"
lodefs_kill9 "$mnt"
ok $? "kill -9 after an fsync() of docs/"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again" || done_testing
is "$(cat "$mnt/docs/a.txt" 2>&1)" "Albatrosses glide for hours." "the re-created file survived with its new content"
is "$(hits aardvarks)" '[]' "the old content is not searchable"
is "$(hits albatrosses)" '["a.txt"]' "the new one is"
is "$(cat "$mnt/docs/same.txt" 2>&1)" "Same words twice." "the file re-created with the same content is there"
is "$(cat "$mnt/docs/b.txt" 2>&1)" "Capybaras bathe." "the file moved onto a removed name is there"
is "$(op stat "$mnt/docs/c.txt")" ENOENT "its old name stays gone"
is "$(hits bisons)" '[]' "the removed file's words are not searchable"
is "$(hits capybaras)" '["b.txt"]' "the moved file's are, under its new name"

# ---- rm and create again while a round indexes ---------------------------------
put "$mnt/docs/r.txt" "Raccoons wash their food."
out=$(python3 - "$mnt/docs" <<'PY'
import os, sys, threading
d = sys.argv[1]
os.mkdir(os.path.join(d, "busy"))
for i in range(1500):  # queued, so that the round below takes a while
    with open(os.path.join(d, "busy", "b%04d.txt" % i), "w") as f:
        f.write("Busy file %d about pangolins and their scales.\n" % i)
os.unlink(os.path.join(d, "r.txt"))
def sync():
    fd = os.open(os.path.join(d, "busy", "b0000.txt"), os.O_RDONLY)
    os.fsync(fd)  # a round: the 1500 files and the removal
    os.close(fd)
t = threading.Thread(target=sync)
t.start()
made = 0
for i in range(200):  # new files while the round runs; r.txt among them
    name = "r.txt" if i == 100 else "n%03d.txt" % i
    with open(os.path.join(d, name), "w") as f:
        f.write("Rheas run fast.\n" if name == "r.txt" else "New %d.\n" % i)
    made += 1
t.join()
fd = os.open(os.path.join(d, "r.txt"), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
print(made)
PY
)
is "$out" 200 "200 creates while a round of 1500 files runs, one of them a name just removed"
lodefs_kill9 "$mnt"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again after kill -9" || done_testing
is "$(cat "$mnt/docs/r.txt" 2>&1)" "Rheas run fast." "the name made again has its new content"
is "$(hits raccoons)" '[]' "and the removed content is gone"
is "$(ls "$mnt/docs/busy" | wc -l)" 1500 "the 1500 files of the round are there"
rm -r "$mnt/docs/busy" "$mnt"/docs/n*.txt

# ---- rm, then mkdir of the same name ----------------------------------------
put "$mnt/docs/m" "Meerkats stand guard."
rm "$mnt/docs/m" && mkdir "$mnt/docs/m"
ok $? "rm of a file then mkdir of its name"
lodefs_kill9 "$mnt"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again after kill -9" || done_testing
[ -d "$mnt/docs/m" ]
ok $? "the directory is there (mkdir committed the removal with it)"
is "$(hits meerkats)" '[]' "the removed file is not"

# ---- the last file of a folder that has no record of its own -----------------
lodefs_umount "$mnt"
mkdir -p "$T/add/deep"
printf 'Lemurs leap.\n' >"$T/add/deep/only.txt"
if [ -x "$LODE" ] && (cd "$T/add" && "$LODE" add "$src" deep/only.txt >/dev/null); then
	lodefs_mount "$src" "$mnt" sync=fsync
	ok $? "mount a store with docs/deep/only.txt added by lode (deep has no record)" || done_testing
	rm "$mnt/docs/deep/only.txt"
	lodefs_kill9 "$mnt"
	lodefs_mount "$src" "$mnt" sync=fsync
	ok $? "the store mounts again after kill -9" || done_testing
	[ -d "$mnt/docs/deep" ] && [ -z "$(ls -A "$mnt/docs/deep")" ]
	ok $? "rm of the last file of such a folder is durable at once, and the folder stays"
else
	lodefs_mount "$src" "$mnt" sync=fsync || done_testing
	skip "mount a store with a file added by lode" "no lode at $LODE"
	skip "the store mounts again after kill -9" "no lode"
	skip "rm of the last file of a folder without a record" "no lode"
fi

# ---- a crash within the round's second --------------------------------------
put "$mnt/docs/k.txt" "Kakapos are flightless parrots."
rm "$mnt/docs/k.txt"
lodefs_kill9 "$mnt"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again after kill -9 right after rm" || done_testing
if [ -e "$mnt/docs/k.txt" ]; then
	diag "the removal was not committed yet: the file came back (as sync=fsync allows)"
	is "$(cat "$mnt/docs/k.txt")" "Kakapos are flightless parrots." "a removal lost to kill -9 brings the file back whole"
	is "$(hits kakapos)" '["k.txt"]' "and searchable"
else
	diag "the removal was committed before the kill"
	is "$(hits kakapos)" '[]' "a removal committed before kill -9 stays"
	ok 0 "(nothing came back)"
fi
put "$mnt/docs/w.txt" "Wombats dig too."
rm "$mnt/docs/w.txt"
sleep 2
lodefs_kill9 "$mnt"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again after kill -9 2 s after rm" || done_testing
is "$(op stat "$mnt/docs/w.txt")" ENOENT "a removal 2 s old survives kill -9"

# ---- an open file outlives its removal and the round -------------------------
put "$mnt/docs/o.txt" "Ocelots climb."
out=$(python3 - "$mnt/docs" <<'PY'
import os, sys, time
d = sys.argv[1]
f = open(os.path.join(d, "o.txt"), "rb")
os.unlink(os.path.join(d, "o.txt"))
fd = os.open(d, os.O_RDONLY)
os.fsync(fd)  # the removal is committed while the file is open
os.close(fd)
print(f.read().decode().strip(), os.fstat(f.fileno()).st_nlink)
PY
)
is "$out" "Ocelots climb. 0" "a file open for reading still reads after its removal is committed"

# ---- many removals, then SIGTERM ----------------------------------------------
mkdir "$mnt/docs/many"
python3 - "$mnt/docs/many" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(300):
    with open(os.path.join(d, "f%03d.txt" % i), "w") as f:
        f.write("Numbats eat termites, file %d.\n" % i)
fd = os.open(os.path.join(d, "f299.txt"), os.O_RDONLY)
os.fsync(fd)
os.close(fd)
PY
is "$(ls "$mnt/docs/many" | wc -l)" 300 "300 files made and fsync()ed"
rm "$mnt/docs/many"/*.txt
ok $? "rm of all 300"
is "$(ls -A "$mnt/docs/many" | wc -l)" 0 "none is listed"
lodefs_signal "$mnt" TERM
is "$?" 0 "SIGTERM right after: the daemon exits 0"
fsck "after removals and kill -9"
lodefs_mount "$src" "$mnt" sync=fsync
ok $? "the store mounts again" || done_testing
is "$(ls -A "$mnt/docs/many" 2>&1 | wc -l)" 0 "after remount all 300 are gone"
is "$(hits numbats)" '[]' "and none is searchable"
is "$(jq -r '.writes.pending_removals' "$mnt/.lodefs/stats")" 0 ".lodefs/stats: no removal pending"
lodefs_umount "$mnt"
ok $? "unmount exits 0"

# ---- sync=close: rm is durable when it returns --------------------------------
lodefs_mount "$src" "$mnt"
ok $? "mount with sync=close" || done_testing
printf 'Tapirs swim.\n' >"$mnt/docs/t.txt"
rm "$mnt/docs/t.txt"
lodefs_kill9 "$mnt"
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again after kill -9 right after rm" || done_testing
is "$(op stat "$mnt/docs/t.txt")" ENOENT "with sync=close a removal survives kill -9 at once"
lodefs_umount "$mnt"
fsck "at the end"

done_testing

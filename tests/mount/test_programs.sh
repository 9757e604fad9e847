#!/usr/bin/env bash
# test_programs.sh - real programs on docs/, and their files become searchable (TAP).
#
# Usage: test_programs.sh PATH/TO/lodefs   (or $LODEFS).  Needs git, sqlite3,
# rsync, tar, find/xargs/grep, diff and python3: LODEFS_PROGRAM_PKGS in
# tools/deps.sh (tools/check installs them; this test installs nothing and
# skips if one is missing).
#
# docs/ must behave as a local file system for programs that lean on it
# hard: git (lock files renamed over refs, packs, fsck of every object),
# tar (nested directories, modes, mtimes set after the contents), rsync
# (temporary names renamed into place, mtimes, a no-op second run), find |
# xargs grep, and sqlite3 (journal files, many small random writes and
# fsyncs).  After each program, a unique word put in one of its text files
# is found through query/ with the file's document id as ref_doc_id: every
# file counts as a document once its writer's close() returned, whatever
# program wrote it and however it was renamed into place.
. "$(dirname "$0")/lib.sh" "$@"

need_lodefs
need_cmd git sqlite3 rsync tar find xargs grep diff cmp sort python3 md5sum stat

src=$T/store
mnt=$T/mnt
work=$T/work # everything made outside the mount
mkdir -p "$work"

# git, isolated from the user's and the system's configuration
export HOME=$T/home GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0 LC_ALL=C
mkdir -p "$HOME"
cat >"$HOME/.gitconfig" <<'EOF'
[user]
	name = Lode Tester
	email = tester@example.invalid
[init]
	defaultBranch = main
[commit]
	gpgsign = false
[advice]
	detachedHead = false
EOF

# refs_of QUERY_PATH: the ref_doc_id of each hit of MNT/query/QUERY_PATH, one
# per line (nothing, and status 1, if the read or the JSON fails).
refs_of() {
	python3 - "$mnt/query/$1" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        res = json.load(f)
except (OSError, ValueError) as e:
    print(f"cannot read {sys.argv[1]}: {e}", file=sys.stderr)
    sys.exit(1)
for n in res.get("nodes", []):
    print(n.get("ref_doc_id"))
PY
}

# findable WORD DOC_ID: query/k=5/WORD lists DOC_ID as a ref_doc_id.
findable() {
	local got rc
	got=$(refs_of "k=5/$1" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && printf '%s\n' "$got" | grep -qxF -- "$2"; then
		ok 0 "query/k=5/$1 finds $2"
		return 0
	fi
	ok 1 "query/k=5/$1 finds $2"
	diag "ref_doc_ids: $(printf '%s' "$got" | tr '\n' ' ')"
	return 1
}

# tree_stat DIR: path, type, mode, size and mtime (seconds.nanoseconds) of
# everything under DIR, sorted (a directory's size is the file system's
# business: not shown).
tree_stat() {
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %T@\n' |
		awk '$2 == "d" { $4 = "-" } { print }' | sort)
}

lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts $src" || done_testing

# ---- git ----------------------------------------------------------------------
repo=$work/origin
mkdir -p "$repo/src" "$repo/notes/deep"
(
	cd "$repo" && git init -q . &&
		printf '# Orchard\n\nA small project about apples and pears.\n' >README.md &&
		printf 'int main(void) { return 0; }\n' >src/main.c &&
		git add -A && git commit -q -m "first: readme and main" &&
		printf 'The plan mentions gitvorpalwombat exactly once.\n' >notes/plan.txt &&
		git add -A && git commit -q -m "second: the plan" &&
		printf 'Deep notes about pruning the trees in winter.\n' >notes/deep/prune.txt &&
		printf '#!/bin/sh\necho build\n' >build.sh && chmod 755 build.sh &&
		git add -A && git commit -q -m "third: pruning notes and a script"
)
ok $? "a repository with 3 commits outside the mount" || done_testing

ok_cmd "git clone into docs/repo" git clone -q "$repo" "$mnt/docs/repo"
ok_cmd "git -C docs/repo fsck --strict" git -C "$mnt/docs/repo" fsck --strict
ok_cmd "the clone's work tree equals the origin's (diff -r)" \
	diff -r -x .git "$repo" "$mnt/docs/repo"
is "$(stat -c %a "$mnt/docs/repo/build.sh" 2>&1)" 755 \
	"the clone's build.sh is mode 755 (git checks out the executable bit)"
is "$(git -C "$mnt/docs/repo" status --porcelain 2>&1)" "" \
	"git status is clean right after the clone"
findable gitvorpalwombat repo/notes/plan.txt

# new commits made inside the mount
(
	cd "$mnt/docs/repo" &&
		printf 'Written in the clone: clonequokkaharvest.\n' >notes/clone.txt &&
		git add notes/clone.txt && git commit -q -m "fourth: made in the clone" &&
		printf 'More about pears.\n' >>README.md && git rm -q src/main.c &&
		git commit -q -a -m "fifth: edit and remove in the clone"
)
ok $? "git add / commit (twice) inside docs/repo"
is "$(git -C "$mnt/docs/repo" log --format=%s 2>&1 | tr '\n' '|')" \
	"fifth: edit and remove in the clone|fourth: made in the clone|third: pruning notes and a script|second: the plan|first: readme and main|" \
	"git log shows the 5 commits, newest first"
is "$(git -C "$mnt/docs/repo" status --porcelain 2>&1)" "" \
	"git status is clean after the commits"
ok_cmd "git fsck --strict after the commits" git -C "$mnt/docs/repo" fsck --strict
ok_cmd "git gc (repack, prune, pack-refs) in docs/repo" git -C "$mnt/docs/repo" gc -q
ok_cmd "git fsck --strict after git gc" git -C "$mnt/docs/repo" fsck --strict
is "$(git -C "$mnt/docs/repo" log --format=%s 2>&1 | wc -l)" 5 \
	"git log still shows 5 commits after git gc"
findable clonequokkaharvest repo/notes/clone.txt
[ ! -e "$mnt/docs/repo/src/main.c" ]
ok $? "git rm removed docs/repo/src/main.c"

# the pack protocol: clone through file:// (index-pack writes the pack)
ok_cmd "git clone file:// into docs/repo2" \
	git clone -q "file://$mnt/docs/repo" "$mnt/docs/repo2"
ok_cmd "git -C docs/repo2 fsck --strict" git -C "$mnt/docs/repo2" fsck --strict
is "$(git -C "$mnt/docs/repo2" rev-parse HEAD 2>&1)" \
	"$(git -C "$mnt/docs/repo" rev-parse HEAD 2>&1)" \
	"docs/repo2 has the same HEAD as docs/repo"

# ---- tar x --------------------------------------------------------------------
tsrc=$work/tarsrc
mkdir -p "$tsrc/tree/a/b/c" "$tsrc/tree/empty" "$tsrc/tree/x"
printf 'Top level readme of the tarball.\n' >"$tsrc/tree/README.txt"
printf 'Deep inside: tarbandicootlantern lives here.\n' >"$tsrc/tree/a/b/c/deep.txt"
printf 'Middle file about lighthouses.\n' >"$tsrc/tree/a/b/mid.md"
printf 'A file in a.\n' >"$tsrc/tree/a/one.txt"
printf 'An executable.\n' >"$tsrc/tree/x/run.sh"
head -c 200000 /dev/urandom >"$tsrc/tree/x/blob.bin" # binary: stored, not indexed
: >"$tsrc/tree/x/empty.txt"
chmod 755 "$tsrc/tree/x/run.sh"
chmod 640 "$tsrc/tree/a/one.txt"
chmod 700 "$tsrc/tree/x"
# distinct whole-second mtimes (tar's default format keeps seconds), dirs last
i=0
while read -r p; do
	i=$((i + 1))
	touch -h -d "2001-02-03 04:05:$(printf %02d "$i")" "$tsrc/$p"
done < <(cd "$tsrc" && find tree -depth)
tar -cf "$work/tree.tar" -C "$tsrc" tree
ok $? "a tarball outside the mount (nested dirs, modes, mtimes)"

mkdir -p "$mnt/docs/tarx"
ok_cmd "tar -xf into docs/tarx" tar -xf "$work/tree.tar" -C "$mnt/docs/tarx"
ok_cmd "diff -r: the extracted tree equals the source" \
	diff -r "$tsrc/tree" "$mnt/docs/tarx/tree"
ok_cmd "tar --compare (tar d): contents, modes and mtimes match the tarball" \
	tar -df "$work/tree.tar" -C "$mnt/docs/tarx"
is "$(tree_stat "$mnt/docs/tarx")" "$(tree_stat "$tsrc")" \
	"types, modes, sizes and mtimes of files and directories match the source"
findable tarbandicootlantern tarx/tree/a/b/c/deep.txt

# ---- rsync -a -----------------------------------------------------------------
rsrc=$work/rsrc
mkdir -p "$rsrc/alpha/beta" "$rsrc/gamma"
printf 'Synced with rsync: rsyncpangolinmeadow.\n' >"$rsrc/alpha/beta/synced.txt"
printf 'Another synced file.\n' >"$rsrc/alpha/other.txt"
printf 'Gamma notes in markdown.\n' >"$rsrc/gamma/notes.md"
seq 1 20000 >"$rsrc/gamma/numbers.txt"
head -c 65536 /dev/urandom >"$rsrc/gamma/random.bin"
chmod 600 "$rsrc/alpha/other.txt"
touch -d "2019-05-06 07:08:09.123456789" "$rsrc/alpha/other.txt"
# directories in the past: rsync -a compares whole seconds, so it leaves a
# new directory's mtime alone when the source's is in the same second (on
# ext4 too), and the nanosecond checks below would see that, not lodefs
touch -d "2018-01-02 03:04:05.25" "$rsrc/alpha/beta"
touch -d "2018-01-02 03:04:06.5" "$rsrc/alpha" "$rsrc/gamma"
touch -d "2018-01-02 03:04:07.75" "$rsrc"

ok_cmd "rsync -a into docs/rs" rsync -a "$rsrc/" "$mnt/docs/rs/"
ok_cmd "diff -r: the synced tree equals the source" diff -r "$rsrc" "$mnt/docs/rs"
out=$(rsync -a --itemize-changes "$rsrc/" "$mnt/docs/rs/" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ]
ok $? "a second rsync -a --itemize-changes has nothing to transfer" || {
	diag "rsync exit $rc; it itemized:"
	printf '%s\n' "$out" | head -n 20 | diag
}
# what rsync -a preserved: mtimes to the nanosecond as on a local file system
# (rsync itself compares whole seconds unless --modify-window=-1)
is "$(tree_stat "$mnt/docs/rs")" "$(tree_stat "$rsrc")" \
	"types, modes, sizes and mtimes (ns) of the synced tree match the source"
out=$(rsync -a --modify-window=-1 --itemize-changes "$rsrc/" "$mnt/docs/rs/" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ]
ok $? "rsync -a --modify-window=-1 (nanosecond mtimes) has nothing to transfer" || {
	diag "rsync exit $rc; it itemized:"
	printf '%s\n' "$out" | head -n 20 | diag
}
findable rsyncpangolinmeadow rs/alpha/beta/synced.txt

# ---- find | xargs grep --------------------------------------------------------
# the word is in .txt files of all three trees, and in one .md that find skips
rc=0
for f in repo/notes/deep/prune.txt tarx/tree/a/one.txt rs/alpha/other.txt \
	rs/gamma/notes.md; do
	printf 'Needle: xargsneedleword.\n' >>"$mnt/docs/$f" || rc=1
done
ok $rc "append a word to 4 files (3 .txt, 1 .md)"
is "$(cd "$mnt" && find docs -name '*.txt' -print0 | xargs -0 grep -l xargsneedleword | sort | tr '\n' ' ')" \
	"docs/repo/notes/deep/prune.txt docs/rs/alpha/other.txt docs/tarx/tree/a/one.txt " \
	"find docs -name '*.txt' | xargs grep -l finds exactly the 3 .txt files"
is "$(refs_of k=10/xargsneedleword 2>&1 | sort | tr '\n' ' ')" \
	"repo/notes/deep/prune.txt rs/alpha/other.txt rs/gamma/notes.md tarx/tree/a/one.txt " \
	"query/k=10/xargsneedleword finds the 4 appended files"
is "$(git -C "$mnt/docs/repo" status --porcelain 2>&1)" " M notes/deep/prune.txt" \
	"git status in docs/repo sees the appended file as modified"

# ---- sqlite3 ------------------------------------------------------------------
db=$mnt/docs/db.sqlite
sql=$work/load.sql
{
	echo "CREATE TABLE t (id INTEGER PRIMARY KEY, word TEXT NOT NULL, n INTEGER);"
	echo "CREATE INDEX t_word ON t (word);"
	for ((b = 0; b < 10; b++)); do
		echo "BEGIN;"
		for ((r = 1; r <= 100; r++)); do
			i=$((b * 100 + r))
			echo "INSERT INTO t (word, n) VALUES ('w$((i * 7919 % 1000))', $i);"
		done
		echo "COMMIT;"
	done
} >"$sql"
ok_cmd "sqlite3: create a table and insert 1000 rows in 10 transactions" \
	sqlite3 -bail "$db" ".read $sql"
is "$(sqlite3 "$db" 'SELECT count(*), sum(n) FROM t;' 2>&1)" "1000|500500" \
	"sqlite3: count(*) is 1000"
is "$(sqlite3 "$db" 'PRAGMA integrity_check;' 2>&1)" ok \
	"sqlite3: PRAGMA integrity_check is ok"
ok_cmd "sqlite3: an UPDATE and a DELETE in one transaction" sqlite3 -bail "$db" \
	"BEGIN; UPDATE t SET word = word || 'x' WHERE n % 3 = 0; DELETE FROM t WHERE n > 900; COMMIT;"
dump=$(sqlite3 "$db" .dump 2>&1 | md5sum)
[ ! -e "$db-journal" ]
ok $? "sqlite3 removed its rollback journal (docs/db.sqlite-journal)"

# the same in WAL mode (a -wal and a -shm file, the -shm one mmap()ed shared)
wal=$mnt/docs/wal.sqlite
ok_cmd "sqlite3 WAL mode: create and insert 1000 rows in 10 transactions" \
	sqlite3 -bail "$wal" "PRAGMA journal_mode=WAL;" ".read $sql"
is "$(sqlite3 "$wal" 'PRAGMA journal_mode; SELECT count(*) FROM t; PRAGMA integrity_check;' 2>&1 | tr '\n' ' ')" \
	"wal 1000 ok " "sqlite3 WAL mode: count(*) 1000, integrity_check ok"

lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"
lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts the same store again" || done_testing

is "$(sqlite3 "$db" 'SELECT count(*) FROM t; PRAGMA integrity_check;' 2>&1 | tr '\n' ' ')" \
	"900 ok " "after a remount: count(*) is 900 (after the DELETE), integrity_check ok"
is "$(sqlite3 "$db" .dump 2>&1 | md5sum)" "$dump" \
	"after a remount: sqlite3 .dump is the same as before"
is "$(sqlite3 "$wal" 'SELECT count(*) FROM t; PRAGMA integrity_check;' 2>&1 | tr '\n' ' ')" \
	"1000 ok " "after a remount: the WAL database has 1000 rows, integrity_check ok"

# ---- everything is still there after the remount ----------------------------
ok_cmd "after a remount: git fsck --strict in docs/repo" \
	git -C "$mnt/docs/repo" fsck --strict
is "$(git -C "$mnt/docs/repo" log --format=%s 2>&1 | wc -l)" 5 \
	"after a remount: git log shows 5 commits"
ok_cmd "after a remount: tar --compare still matches" \
	tar -df "$work/tree.tar" -C "$mnt/docs/tarx" --exclude=tree/a/one.txt
out=$(rsync -a --itemize-changes --exclude=/alpha/other.txt \
	--exclude=/gamma/notes.md "$rsrc/" "$mnt/docs/rs/" 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ]
ok $? "after a remount: rsync -a --itemize-changes has nothing to transfer" || {
	diag "rsync exit $rc; it itemized:"
	printf '%s\n' "$out" | head -n 20 | diag
}
findable gitvorpalwombat repo/notes/plan.txt
findable clonequokkaharvest repo/notes/clone.txt
findable tarbandicootlantern tarx/tree/a/b/c/deep.txt
findable rsyncpangolinmeadow rs/alpha/beta/synced.txt

errs=$(grep -i 'failed' "$mnt/.lodefs/errors" 2>&1)
is "$errs" "" ".lodefs/errors has no failed commit, rename, rm or mkdir"

lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"
done_testing

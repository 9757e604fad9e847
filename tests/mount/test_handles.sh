#!/usr/bin/env bash
# test_handles.sh - file handles and inode numbers outlive cache drops, mv and remounts (TAP).
#
# Usage: test_handles.sh PATH/TO/lodefs PATH/TO/handles
#        (or $LODEFS and $LODEFS_HANDLES, as meson sets them); needs root.
#
# Why: an NFS server gives clients file handles made by name_to_handle_at()
# and opens them later with open_by_handle_at(), after the kernel may have
# forgotten the inode (memory pressure; here: drop_caches).  A FUSE file
# system survives that only if it sets FUSE_CAP_EXPORT_SUPPORT and answers
# the kernel's LOOKUP of "." in a node it was told to FORGET; otherwise the
# open fails with ESTALE.  (bindfs without -o noforget shows exactly that
# failure; with noforget it passes.)
. "$(dirname "$0")/lib.sh" "$@"
HANDLES=${LODEFS_HANDLES:-${2:-}}

need_root
need_lodefs
need_cmd python3 cmp stat
[ -n "$HANDLES" ] && [ -x "$HANDLES" ] ||
	skip_all "no handles program (tests/handles.c) at '$HANDLES'"
[ -w /proc/sys/vm/drop_caches ] || skip_all "cannot write /proc/sys/vm/drop_caches"

src=$T/store
mnt=$T/mnt
ino() { stat -c %i -- "$1"; }

# d_ino_matches DIR: every entry's inode number from readdir equals its st_ino.
d_ino_matches() {
	python3 - "$1" <<'PY'
import os, sys
bad = [f"{e.name}: d_ino {e.inode()} st_ino {os.lstat(e.path).st_ino}"
       for e in os.scandir(sys.argv[1])
       if e.inode() != os.lstat(e.path).st_ino]
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts $src" || done_testing

# ---- documents, written through the mount --------------------------------
printf 'Apples grow on trees in orchards across the valley.\n' >"$T/a.txt"
printf '# Lighthouses\n\nLighthouses guide ships past the rocks at night.\n' >"$T/b.md"
cp "$T/a.txt" "$mnt/docs/a.txt"
ok $? "write docs/a.txt"
mkdir -p "$mnt/docs/sub/deeper" && cp "$T/b.md" "$mnt/docs/sub/deeper/b.md"
ok $? "mkdir -p docs/sub/deeper and write docs/sub/deeper/b.md"
ok_cmd "docs/a.txt reads back exactly" cmp "$T/a.txt" "$mnt/docs/a.txt"
ok_cmd "docs/sub/deeper/b.md reads back exactly" \
	cmp "$T/b.md" "$mnt/docs/sub/deeper/b.md"

# ---- open_by_handle_at after the kernel dropped its caches ----------------
ok_cmd "handle of a doc opens after a cache drop" "$HANDLES" "$mnt/docs/a.txt"
ok_cmd "handle of a nested doc opens after a cache drop" \
	"$HANDLES" "$mnt/docs/sub/deeper/b.md"
ok_cmd "handle of a doc directory opens after a cache drop" \
	"$HANDLES" "$mnt/docs/sub"
ok_cmd "handle of docs/ opens after a cache drop" "$HANDLES" "$mnt/docs"
node=$(ls "$mnt/nodes" 2>/dev/null | head -n 1)
if [ -n "$node" ]; then
	ok_cmd "handle of a node file (nodes/$node) opens after a cache drop" \
		"$HANDLES" "$mnt/nodes/$node"
else
	ok 1 "nodes/ lists the nodes of the documents written"
fi

# ---- stable inodes: mv ----------------------------------------------------
ino_a=$(ino "$mnt/docs/a.txt")
"$HANDLES" -s "$T/a.fh" "$mnt/docs/a.txt"
ok $? "save the handle of docs/a.txt"
mv "$mnt/docs/a.txt" "$mnt/docs/a2.txt"
ok $? "mv docs/a.txt docs/a2.txt"
is "$(ino "$mnt/docs/a2.txt")" "$ino_a" "mv within a directory keeps st_ino"
ok_cmd "the handle taken before mv opens the renamed doc" \
	"$HANDLES" -l "$T/a.fh" "$mnt/docs/a2.txt"
mv "$mnt/docs/a2.txt" "$mnt/docs/sub/a3.txt"
ok $? "mv docs/a2.txt docs/sub/a3.txt"
is "$(ino "$mnt/docs/sub/a3.txt")" "$ino_a" "mv to another directory keeps st_ino"
ok_cmd "the handle taken before both mv opens the moved doc" \
	"$HANDLES" -l "$T/a.fh" "$mnt/docs/sub/a3.txt"
ok_cmd "the moved doc reads back exactly" cmp "$T/a.txt" "$mnt/docs/sub/a3.txt"

# ---- . and .. ---------------------------------------------------------------
is "$(ino "$mnt/docs/sub/.")" "$(ino "$mnt/docs/sub")" "docs/sub/. is docs/sub"
is "$(ino "$mnt/docs/sub/deeper/..")" "$(ino "$mnt/docs/sub")" \
	"docs/sub/deeper/.. is docs/sub"
is "$(ino "$mnt/docs/..")" "$(ino "$mnt")" "docs/.. is the mount root"
is "$(ls -la "$mnt/docs/sub" | awk '$NF == "." || $NF == ".." { print $NF }' |
	sort | tr '\n' ' ')" ". .. " "ls -la docs/sub shows . and .."
is "$(cd "$mnt/docs/sub/deeper" && cd .. && pwd -P)" \
	"$(cd "$mnt/docs/sub" && pwd -P)" "cd .. from docs/sub/deeper lands in docs/sub"
ok_cmd "readdir's d_ino is st_ino in docs/sub" d_ino_matches "$mnt/docs/sub"
ok_cmd "readdir's d_ino is st_ino in the mount root" d_ino_matches "$mnt"
ok_cmd "readdir's d_ino is st_ino in nodes/" d_ino_matches "$mnt/nodes"

# ---- stable inodes: unmount and mount again --------------------------------
ino_sub=$(ino "$mnt/docs/sub")
ino_b=$(ino "$mnt/docs/sub/deeper/b.md")
# mv re-derives the moved doc's nodes, so pick a node that exists now
node=$(ls "$mnt/nodes" 2>/dev/null | head -n 1)
ino_node=
[ -n "$node" ] && ino_node=$(ino "$mnt/nodes/$node")
lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"
lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts the same store again" || done_testing
is "$(ino "$mnt/docs/sub/a3.txt")" "$ino_a" "a moved doc keeps st_ino across a remount"
is "$(ino "$mnt/docs/sub/deeper/b.md")" "$ino_b" "a nested doc keeps st_ino across a remount"
is "$(ino "$mnt/docs/sub")" "$ino_sub" "a doc directory keeps st_ino across a remount"
if [ -n "$node" ]; then
	is "$(ino "$mnt/nodes/$node" 2>&1)" "$ino_node" \
		"a node file keeps st_ino across a remount"
fi
ok_cmd "docs read back exactly after a remount" \
	cmp "$T/b.md" "$mnt/docs/sub/deeper/b.md"
ok_cmd "handle of a doc opens after a remount and a cache drop" \
	"$HANDLES" "$mnt/docs/sub/a3.txt"

# ---- inode numbers are never reused; a deleted file's handle is stale -----
"$HANDLES" -s "$T/gone.fh" "$mnt/docs/sub/a3.txt"
rm "$mnt/docs/sub/a3.txt"
ok $? "rm docs/sub/a3.txt"
printf 'A new document after the delete.\n' >"$mnt/docs/new.txt"
ok $? "write docs/new.txt"
ino_new=$(ino "$mnt/docs/new.txt")
[ -n "$ino_new" ] && [ "$ino_new" != "$ino_a" ]
ok $? "a new doc does not reuse the deleted doc's st_ino ($ino_new vs $ino_a)"
out=$("$HANDLES" -l "$T/gone.fh" "$mnt/docs/new.txt" 2>&1)
case $out in
*"open_by_handle_at"*"Stale file handle"*) ok 0 "the deleted doc's handle is ESTALE" ;;
*)
	ok 1 "the deleted doc's handle is ESTALE"
	diag "handles said: $out"
	;;
esac

lodefs_umount "$mnt"
ok $? "unmount: the daemon exits 0"
done_testing

#!/usr/bin/env bash
# test_persist.sh - persist/, LlamaIndex's persist directory, through a real
# mount (TAP): the fixtures copied in and read back byte for byte (also after
# a remount), upstream files compared as JSON, the other views and query/
# after an import (with the fixtures' expected query results), docs/ ingest
# seen as LlamaIndex loads it, refusals that change nothing, readers that
# never see a torn or mixed file, Python's and other write patterns.
#
# Usage: test_persist.sh PATH/TO/lodefs   (or $LODEFS, as meson sets it); needs root.
# Issue 5.
. "$(dirname "$0")/lib.sh" "$@"

need_root
need_lodefs
need_cmd cmp dd jq stat sha256sum

PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CHECK=$(cd "$(dirname "$0")" && pwd)/persist_check.py
FIX=${LODEFS_SHARED:-$(dirname "$0")/../../../shared}/fixtures
[ -d "$FIX/py_persist" ] || skip_all "no fixtures at $FIX"
PERSIST_FILES="default__vector_store.json docstore.json graph_store.json image__vector_store.json index_store.json"

# check DESC ARGS...: persist_check.py ARGS as one test point (its output on failure).
check() {
	local desc=$1
	shift
	ok_cmd "$desc" "$PY" "$CHECK" "$@"
}

# pmount NAME: unmounts $mnt if mounted, mounts the store $T/st-NAME there.
mnt=$T/mnt
pmount() {
	if mountpoint -q "$mnt"; then
		lodefs_umount "$mnt"
		ok $? "unmounted cleanly (daemon exit 0) before $1" || return 1
	fi
	lodefs_mount "$T/st-$1" "$mnt"
	ok $? "mount the store $1" || done_testing
}

# cp_in DIR NAME...: cp each DIR/NAME into persist/, in that order.
cp_in() {
	local dir=$1 f rc=0 out
	shift
	for f in "$@"; do
		out=$(cp "$dir/$f" "$mnt/persist/$f" 2>&1) || {
			rc=1
			diag "cp $f: $out"
		}
	done
	return $rc
}

# cmp_out DIR NAME...: cmp each persist file with DIR/NAME; prints differences.
cmp_out() {
	local dir=$1 f
	shift
	for f in "$@"; do
		cmp "$mnt/persist/$f" "$dir/$f" 2>&1 | head -n 1
	done
}

errors_count() { wc -l <"$mnt/.lodefs/errors"; }
new_errors() { tail -n +$(($1 + 1)) "$mnt/.lodefs/errors"; }

# one_error DESC E0 PATTERN: exactly one line after the first E0 of
# .lodefs/errors, and it matches PATTERN.
one_error() {
	local lines
	lines=$(new_errors "$2")
	if [ "$(printf '%s' "$lines" | grep -c '')" = 1 ] &&
		printf '%s\n' "$lines" | grep -q -- "$3"; then
		ok 0 "$1: one line in .lodefs/errors"
	else
		ok 1 "$1: one line in .lodefs/errors"
		diag "new lines (want one matching '$3'):"
		printf '%s\n' "${lines:-(none)}" | diag
	fi
}

# ==== the fixtures, copied in and read back byte for byte ========================
for set in py_persist py_persist_single py_persist_v0_10 \
	"realworld/23Mariya__QA-with-Documents"; do
	dir=$FIX/$set
	name=$(basename "$set")
	mapfile -t files < <(cd "$dir" && ls | LC_ALL=C sort)
	pmount "$name"
	cp_in "$dir" "${files[@]}"
	ok $? "$set: cp of ${#files[@]} files into persist/, alphabetical order"
	out=$(cmp_out "$dir" "${files[@]}")
	is "$out" "" "$set: every file reads back byte for byte"
	if [ -f "$FIX/$name.expected.json" ]; then
		check "$set: query/ requests answer as SimpleVectorStore.query, graph/ as SimpleGraphStore" \
			query "$mnt" "$FIX/$name.expected.json"
	fi
	lodefs_umount "$mnt"
	ok $? "$set: unmounted cleanly"
	lodefs_mount "$T/st-$name" "$mnt"
	ok $? "$set: mounted again" || done_testing
	out=$(cmp_out "$dir" "${files[@]}")
	is "$out" "" "$set: after a remount, every file reads back byte for byte"
done

# The order StorageContext.persist writes them in.
pmount py-order
order="docstore.json index_store.json default__vector_store.json image__vector_store.json graph_store.json"
cp_in "$FIX/py_persist" $order
ok $? "py_persist: cp in Python's persist order"
is "$(cmp_out "$FIX/py_persist" $order)" "" "py_persist in Python's order: byte for byte"
is "$(ls "$mnt/persist" | tr '\n' ' ')" "$PERSIST_FILES " "ls persist/ lists the five files"

# ==== upstream files: the same JSON back ========================================
up=$FIX/upstream/run-llama__llama_index
n=0
while read -r dir; do
	n=$((n + 1))
	pmount "up$n"
	for f in docstore.json index_store.json graph_store.json image__vector_store.json; do
		[ -f "$up/$dir/$f" ] || continue
		if cp "$up/$dir/$f" "$mnt/persist/$f" 2>"$T/cp.err"; then
			check "upstream $dir/$f: reads back as the same JSON" \
				same "$mnt/persist/$f" "$up/$dir/$f"
		else
			ok 1 "upstream $dir/$f: cp into persist/"
			diag <"$T/cp.err"
		fi
	done
done < <(cd "$up" && find . -name '*.json' -printf '%h\n' | LC_ALL=C sort -u)
[ "$n" -ge 4 ]
ok $? "upstream: $n directories of persisted stores tried"

# The layout before namespaces: vector_store.json is the default namespace.
pmount legacy
cp "$FIX/py_persist/default__vector_store.json" "$mnt/persist/vector_store.json"
ok $? "cp of a legacy vector_store.json"
cmp "$mnt/persist/default__vector_store.json" "$FIX/py_persist/default__vector_store.json" >/dev/null
ok $? "it reads back as default__vector_store.json"
is "$(ls "$mnt/persist" | tr '\n' ' ')" "$PERSIST_FILES " "ls persist/ does not show vector_store.json"

# ==== one store with py_persist: views, refusals, writes, readers ==================
P=$FIX/py_persist
pmount main
kq="$mnt/query/k=1/mode=keyword/apple pie dessert"
is "$(jq -c '.nodes' "$kq" 2>&1)" "[]" "before the import, a keyword query finds nothing"
cp_in "$P" $order
ok $? "py_persist imported"
check "nodes/, vectors/default/ (float32 bytes), index/, kv/ and graph/ show the import" \
	views "$mnt" "$P"
is "$(jq -r '.nodes[0].node_id' "$kq" 2>&1)" \
	90c7c20f-cdfe-5606-99c0-318a512af11a "after it, the same query finds an imported node"

# stat and ls -l
bad=
for f in $PERSIST_FILES; do
	s=$(stat -c %s "$mnt/persist/$f")
	r=$(wc -c <"$mnt/persist/$f")
	[ "$s" = "$r" ] || bad="$bad $f:stat=$s,read=$r"
done
is "$bad" "" "stat's size is the number of bytes read, for every file"
out=$(ls -l "$mnt/persist" 2>&1)
ok $? "ls -l persist/ works"
is "$(printf '%s\n' "$out" | grep -c '^-rw-r--r--')" 5 "ls -l shows five regular files, mode 0644"

# file handles (NFS): the kernel forgets the inode, the handle finds it again
if [ -x "${LODEFS_HANDLES:-}" ]; then
	ok_cmd "a file handle of persist/docstore.json opens after a cache drop" \
		"$LODEFS_HANDLES" "$mnt/persist/docstore.json"
	ok_cmd "a file handle of persist/ opens after a cache drop" \
		"$LODEFS_HANDLES" "$mnt/persist"
else
	skip "file handles of persist/" "no handles program (LODEFS_HANDLES)"
	skip "file handles of persist/" "no handles program (LODEFS_HANDLES)"
fi

# -- refusals change nothing --
snap() { (cd "$mnt" && "$PY" "$CHECK" manifest persist nodes vectors index kv graph); }
snap >"$T/before"
ok $? "a manifest of persist/ and the views"
r0=$(jq .persist.refused "$mnt/.lodefs/stats")

printf '{"docstore/data": {"x": ' >"$T/bad-json"
printf '[1, 2, 3]' >"$T/bad-shape"
"$PY" - "$P/default__vector_store.json" >"$T/bad-dims" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
k = next(iter(v["embedding_dict"]))
v["embedding_dict"][k] = v["embedding_dict"][k][:-1]
print(json.dumps(v), end="")
PY
for c in "invalid JSON:bad-json:docstore.json" "wrong shape:bad-shape:index_store.json" \
	"vectors of two lengths:bad-dims:default__vector_store.json"; do
	desc=${c%%:*}
	rest=${c#*:}
	src=${rest%%:*}
	dst=${rest#*:}
	e0=$(errors_count)
	"$PY" "$CHECK" write python "$T/$src" "$mnt/persist/$dst" >"$T/w.out" 2>"$T/w.err"
	rc=$?
	is "$rc" 1 "$desc: Python's open/write/close into $dst fails"
	grep -q 'Invalid argument' "$T/w.err"
	ok $? "$desc: close() says EINVAL" || diag <"$T/w.err"
	one_error "$desc" "$e0" "persist/$dst"
done
is "$(jq .persist.refused "$mnt/.lodefs/stats")" $((r0 + 3)) ".lodefs/stats counts the three refused imports"

e0=$(errors_count)
is "$(echo '{}' | op write "$mnt/persist/notes.json")" EINVAL "a name that is not a persist file: EINVAL at create"
one_error "create notes.json" "$e0" "persist/notes.json"
e0=$(errors_count)
is "$(op unlink "$mnt/persist/docstore.json")" EPERM "rm of a persist file: EPERM"
one_error "rm" "$e0" "persist/docstore.json"
e0=$(errors_count)
is "$(op mkdir "$mnt/persist/sub")" EPERM "mkdir in persist/: EPERM"
one_error "mkdir" "$e0" "persist/sub"
e0=$(errors_count)
truncate -s 0 "$mnt/persist/docstore.json" 2>/dev/null
ok $((!$?)) "truncate by name of a persist file fails"
one_error "truncate" "$e0" "persist/docstore.json"
is "$(op rename "$mnt/persist/docstore.json" "$mnt/persist/old.json")" EXDEV \
	"rename inside persist/: EXDEV (mv then copies, and the copy is refused)"
snap >"$T/after"
cmp "$T/before" "$T/after" >/dev/null
ok $? "after the refusals every persist file and view is unchanged" ||
	diff "$T/before" "$T/after" | head -n 10 | diag

# -- write patterns --
B=$FIX/py_persist_v0_10/docstore.json
check "Python's open('w')/write/close" write python "$B" "$mnt/persist/docstore.json"
cmp "$mnt/persist/docstore.json" "$B" >/dev/null
ok $? "... reads back byte for byte"
dd if="$P/docstore.json" of="$mnt/persist/docstore.json" bs=7 status=none
ok $? "dd bs=7 (1,400 writes of 7 bytes)"
cmp "$mnt/persist/docstore.json" "$P/docstore.json" >/dev/null
ok $? "... reads back byte for byte"
check "writes at offsets, last piece first" write reverse "$B" "$mnt/persist/docstore.json"
cmp "$mnt/persist/docstore.json" "$B" >/dev/null
ok $? "... reads back byte for byte"
check "fsync imports: the new content shows before close" \
	write fsync "$P/docstore.json" "$mnt/persist/docstore.json"
cmp "$mnt/persist/docstore.json" "$P/docstore.json" >/dev/null
ok $? "... and after close"
check "a write in place (no O_TRUNC) keeps the rest of the file" \
	patch "$mnt/persist/docstore.json" "a classic dessert" "a classic pudding"
is "$(jq -r .text "$mnt/nodes/90c7c20f-cdfe-5606-99c0-318a512af11a.json" 2>&1)" \
	"Apple pie is a classic pudding made with sliced apples." "... and nodes/ shows the change"
cp "$P/docstore.json" "$mnt/persist/docstore.json"
cmp "$mnt/persist/docstore.json" "$P/docstore.json" >/dev/null
ok $? "cp of the original docstore.json back over it"

# -- readers --
check "a reader keeps reading the snapshot it opened while the file is replaced" \
	snapshot "$mnt/persist/docstore.json" "$P/docstore.json" "$B"
out=$("$PY" "$CHECK" atomic "$mnt/persist/docstore.json" "$P/docstore.json" "$B" 3 2>&1)
ok $? "3 s of rewrites with three readers: every read is one whole content" || diag "$out"
diag "$out"
cp "$P/docstore.json" "$mnt/persist/docstore.json"

# -- several mounts of one prefix (S3): the other mount's next open sees it --
if [ "$(lodefs_backend)" = s3 ]; then
	mnt2=$T/mnt2
	lodefs_mount "$(lodefs_source "$T/st-main")" "$mnt2" \
		"endpoint=$LODEFS_S3_ENDPOINT" "cache_dir=$T/cache2"
	ok $? "a second mount of the same prefix"
	cmp "$mnt2/persist/docstore.json" "$P/docstore.json" >/dev/null
	ok $? "it reads the docstore the first mount imported"
	cp "$B" "$mnt/persist/docstore.json"
	echo >"$mnt2/.lodefs/refresh"
	cmp "$mnt2/persist/docstore.json" "$B" >/dev/null
	ok $? "after a refresh it reads what the first mount wrote since"
	lodefs_umount "$mnt2"
	ok $? "second mount unmounted cleanly"
	cp "$P/docstore.json" "$mnt/persist/docstore.json"
else
	skip "a second mount of the same store" "local stores have one mount"
fi

st=$(jq -c '.persist | [.exports > 0, .reused > 0, .bytes_generated > 0, .imports >= 10, .bytes_imported > 0]' "$mnt/.lodefs/stats")
is "$st" "[true,true,true,true,true]" ".lodefs/stats has persist exports, reuse, bytes, imports"

# ==== docs/ ingest, seen through persist/ ==========================================
pmount ingest
for d in a b c; do
	"$PY" - "$mnt/docs/$d.txt" "$d" <<'PY'
import sys
words = {"a": "Apples grow in orchards and ripen in autumn.",
         "b": "Lighthouses guide ships along rocky coasts at night.",
         "c": "Bees carry pollen from flower to flower in spring."}[sys.argv[2]]
with open(sys.argv[1], "w") as f:
    f.write((words + " ") * 40 + "\n")
PY
done
ok $? "three documents written to docs/"
check "docstore, index_store and default__vector_store are what LlamaIndex loads" \
	ingest "$mnt" a.txt b.txt c.txt
rm "$mnt/docs/b.txt"
ok $? "rm docs/b.txt"
check "b.txt's nodes are gone from docstore, ref_doc_info, vector store and nodes_dict" \
	gone "$mnt" b.txt
check "a.txt and c.txt are still whole" ingest "$mnt" a.txt c.txt

lodefs_umount "$mnt"
ok $? "last unmount: daemon exit 0"
done_testing

#!/usr/bin/env bash
# test_views.sh - nodes/, vectors/, index/, kv/, graph/ (with get_rel_map),
# query/ (path options, JSON requests, exact stat sizes, at most 3 kernel
# round trips per query file) and .lodefs/ through a real mount (TAP).
#
# Usage: test_views.sh PATH/TO/lodefs   (or $LODEFS, as meson sets it); needs root.
# Issue 3, items 2, 3 and 4.
. "$(dirname "$0")/lib.sh" "$@"

need_root
need_lodefs
need_cmd python3 jq cmp stat

# ---- helpers (not in lib.sh) ----------------------------------------------

# op (lib.sh, tests/mount/op.py) asserts exact errnos, close()'s included.


# f32 V...: the float32 little-endian bytes of the numbers, on stdout.
f32() { python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<%df" % (len(sys.argv) - 1), *map(float, sys.argv[1:])))' "$@"; }

# q PATH-UNDER-query/ JQ: runs jq on a query result ("READ-FAILED..." if unreadable).
q() {
	local out
	out=$(cat "$mnt/query/$1" 2>&1) || { echo "READ-FAILED: $out"; return 1; }
	printf '%s' "$out" | jq -c "$2" 2>&1
}

errors_count() { wc -l <"$mnt/.lodefs/errors"; }

# new_errors N: the lines of .lodefs/errors after the first N.
new_errors() { tail -n +$(($1 + 1)) "$mnt/.lodefs/errors"; }

# refused DESC WANT-ERRNO PATTERN CMD...: runs op CMD... (stdin passed on),
# checks the errno, then that exactly one new line in .lodefs/errors
# matches PATTERN (two test points).
refused() {
	local desc=$1 want=$2 pat=$3 e0 got lines
	shift 3
	e0=$(errors_count)
	got=$(op "$@")
	is "$got" "$want" "$desc: $want"
	lines=$(new_errors "$e0")
	if [ "$(printf '%s\n' "$lines" | grep -c -- "$pat")" = 1 ] &&
		[ "$(printf '%s' "$lines" | grep -c '')" = 1 ]; then
		ok 0 "$desc: one line in .lodefs/errors"
	else
		ok 1 "$desc: one line in .lodefs/errors"
		diag "new lines in .lodefs/errors (want exactly one, matching '$pat'):"
		printf '%s\n' "${lines:-(none)}" | diag
	fi
}

# listing DIR: the sorted names in DIR (ls -A), one line.
listing() { ls -A "$1" 2>&1 | sort | tr '\n' ' '; }

src=$T/store
mnt=$T/mnt

# A secret in the environment must not show up anywhere (item 4: no secrets).
# (Under S3 the server's own secret, which it needs.)
if [ "$(lodefs_backend)" = s3 ]; then
	SECRET=$AWS_SECRET_ACCESS_KEY
else
	SECRET=lodefsTestSecret-6c1f0e
	export AWS_ACCESS_KEY_ID=AKIALODEFSTEST AWS_SECRET_ACCESS_KEY=$SECRET
fi
lodefs_mount "$src" "$mnt"
ok $? "lodefs mounts a new local store" || done_testing
[ "$(lodefs_backend)" = s3 ] || unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

is "$(listing "$mnt/vectors")" "default image " "a new store lists vectors/default and vectors/image"

# Documents to search.
cat >"$T/mk.py" <<'PY'
import os, sys
m = sys.argv[1]
docs = {
    "fruit/apples1.txt": ("Apples grow on trees in orchards. Apple harvest is in autumn.", "alice", "fruit"),
    "fruit/apples2.txt": ("Apple orchards need bees. Apples ripen slowly.", "bob", "fruit"),
    "fruit/apples3.txt": ("Cider is pressed from apples after the harvest.", "alice", "drink"),
    "fruit/pears.txt": ("Pears grow on trees too, and orchards often mix apples and pears.", "carol", "fruit"),
    "ships.txt": ("Lighthouses guide ships past the rocks at night.", "bob", "sea"),
}
for p, (text, author, topic) in docs.items():
    full = os.path.join(m, "docs", p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(text + "\n")
    os.setxattr(full, "user.author", author.encode())
    os.setxattr(full, "user.topic", topic.encode())
PY
python3 "$T/mk.py" "$mnt"
ok $? "five documents with user.author and user.topic written"

# ==== nodes/ ====================================================================
dim=$(($(stat -c %s "$mnt/vectors/default/$(ls "$mnt/vectors/default" | head -n 1)") / 4))
[ "$dim" -gt 0 ]
ok $? "documents' nodes have vectors in vectors/default (dim $dim)"

printf '{"id_":"other","text":"Zebras run across the savanna plains.","metadata":{"color":"striped"}}' |
	op write "$mnt/nodes/zeb1.json" >"$T/out"
is "$(cat "$T/out")" OK "write nodes/zeb1.json"
is "$(jq -r '.id_' "$mnt/nodes/zeb1.json" 2>&1)" zeb1 "the file name's id wins over id_"
is "$(jq -r '.text, .metadata.color' "$mnt/nodes/zeb1.json" 2>&1 | tr '\n' ' ')" \
	"Zebras run across the savanna plains. striped " "nodes/zeb1.json reads back text and metadata"
is "$(q 'zebras' '[.nodes[] | [.node_id, .text, .metadata.color]]')" \
	'[["zeb1","Zebras run across the savanna plains.","striped"]]' "query finds the node written"
is "$(stat -c %s "$mnt/vectors/default/zeb1" 2>&1)" $((4 * dim)) \
	"a node without embedding gets a vector of the namespace's dimension"
is "$(jq -c '.__data__.id_, .__data__.text' "$mnt/kv/docstore%2Fdata/zeb1.json" 2>&1 | tr '\n' ' ')" \
	'"zeb1" "Zebras run across the savanna plains." ' "the node is in kv/docstore%2Fdata"
python3 - "$dim" >"$T/emb.json" <<'PY'
import json, sys
d = int(sys.argv[1])
emb = [((i * 7) % 13 - 6) / 8.0 for i in range(d)]
print(json.dumps({"text": "Embedded node about walruses.", "metadata": {}, "embedding": emb}))
PY
is "$(op write "$mnt/nodes/emb1.json" <"$T/emb.json")" OK "write a node that carries an embedding"
python3 -c '
import json, struct, sys
emb = json.load(open(sys.argv[1]))["embedding"]
got = open(sys.argv[2], "rb").read()
sys.exit(0 if got == struct.pack("<%df" % len(emb), *emb) else 1)' "$T/emb.json" "$mnt/vectors/default/emb1" 2>/dev/null
ok $? "its embedding is vectors/default/emb1, float32 for float32"
printf '{"text":"Zebras were replaced by okapis.","metadata":{}}' | op write "$mnt/nodes/zeb1.json" >/dev/null
is "$(q 'okapis' '[.nodes[].node_id]')" '["zeb1"]' "rewriting nodes/zeb1.json replaces the node"
is "$(q 'savanna' '[.nodes[].node_id]')" '[]' "the old text is gone"
is "$(printf '{"text":"Two writes make one node about ibexes.","metadata":{}}' | op write2 "$mnt/nodes/two.json")" OK \
	"a node written in two write() calls"
is "$(q 'ibexes' '[.nodes[].node_id]')" '["two"]' "is stored whole at close"

nodes1=$(listing "$mnt/nodes")
refused "invalid JSON in nodes/bad.json" EINVAL 'bad' write "$mnt/nodes/bad.json" <<<'{"id_":"x"'
is "$(listing "$mnt/nodes")" "$nodes1" "the refused node is not there, nothing else changed"
refused "a JSON array as a node" EINVAL 'arr' write "$mnt/nodes/arr.json" <<<'[1,2]'
refused "invalid JSON over an existing node" EINVAL 'zeb1' write "$mnt/nodes/zeb1.json" <<<'{"text": '
is "$(jq -r .text "$mnt/nodes/zeb1.json" 2>&1)" "Zebras were replaced by okapis." \
	"the existing node is unchanged (nothing half-applied)"
is "$(q 'okapis' '[.nodes[].node_id]')" '["zeb1"]' "and still found by query"
is "$(printf '{"text":"x"}' | op write "$mnt/nodes/noext")" EINVAL "a node file name without .json is EINVAL"
is "$(op rename "$mnt/nodes/two.json" "$mnt/nodes/three.json")" EXDEV "rename inside nodes/ is EXDEV (mv copies)"
rm "$mnt/nodes/two.json"
ok $? "rm nodes/two.json"
[ ! -e "$mnt/nodes/two.json" ] && [ ! -e "$mnt/kv/docstore%2Fdata/two.json" ]
ok $? "the node is gone from nodes/ and kv/"
is "$(q 'ibexes' '[.nodes[].node_id]')" '[]' "a removed node is no longer found"

# percent-encoded ids (item 5)
printf '{"text":"Percent node about otters.","metadata":{}}' | op write "$mnt/nodes/50%25off.json" >/dev/null
printf '{"text":"Slash node about beavers.","metadata":{}}' | op write "$mnt/nodes/a%2Fb.json" >/dev/null
printf '{"text":"Dot node about herons.","metadata":{}}' | op write "$mnt/nodes/%2Ehidden.json" >/dev/null
is "$(q 'otters' '.ids')" '["50%off"]' "nodes/50%25off.json is the node 50%off"
is "$(q 'beavers' '.ids')" '["a/b"]' "nodes/a%2Fb.json is the node a/b"
is "$(q 'herons' '.ids')" '[".hidden"]' "nodes/%2Ehidden.json is the node .hidden"
ls "$mnt/nodes" | grep -qx 'a%2Fb.json' && ls "$mnt/nodes" | grep -qx '%2Ehidden.json' &&
	ls "$mnt/nodes" | grep -qx '50%25off.json'
ok $? "ls nodes shows the encoded names"
is "$(jq -r .id_ "$mnt/nodes/a%2Fb.json" 2>&1)" "a/b" "inside the file the id is decoded"
[ -e "$mnt/vectors/default/a%2Fb" ] && [ -e "$mnt/kv/docstore%2Fdata/a%2Fb.json" ]
ok $? "vectors/ and kv/ use the same encoding"

# ==== vectors/ ===================================================================
is "$(op mkdir "$mnt/vectors/foo")" OK "mkdir vectors/foo makes a namespace"
is "$(listing "$mnt/vectors")" "default foo image " "ls vectors lists it"
f32 1 0 0 0 >"$T/v1"
f32 0 1 0 0 >"$T/v2"
f32 0.6 0.8 0 0 >"$T/v3"
is "$(op write "$mnt/vectors/foo/v1" <"$T/v1")" OK "write vectors/foo/v1 (4 float32)"
op write "$mnt/vectors/foo/v2" <"$T/v2" >/dev/null
op write "$mnt/vectors/foo/v3" <"$T/v3" >/dev/null
ok_cmd "vectors/foo/v1 reads back byte for byte" cmp "$T/v1" "$mnt/vectors/foo/v1"
is "$(stat -c %s "$mnt/vectors/foo/v1")" 16 "its stat size is 16"
is "$(listing "$mnt/vectors/foo")" "v1 v2 v3 " "ls vectors/foo lists the three vectors"
printf 'abcde' >"$T/v5b"
refused "a 5-byte vector" EINVAL 'v5b' write "$mnt/vectors/foo/v5b" <"$T/v5b"
f32 1 2 3 >"$T/v3d"
refused "a 3-dimension vector in a 4-dimension namespace" EINVAL 'foo/v3d' write "$mnt/vectors/foo/v3d" <"$T/v3d"
refused "a wrong-size vector over an existing one" EINVAL 'foo/v1' write "$mnt/vectors/foo/v1" <"$T/v3d"
is "$(listing "$mnt/vectors/foo")" "v1 v2 v3 " "refused vectors are not there"
ok_cmd "and vectors/foo/v1 is unchanged" cmp "$T/v1" "$mnt/vectors/foo/v1"
f32 1 0 >"$T/vd2"
refused "a 2-dimension vector in vectors/default" EINVAL 'default/vd2' write "$mnt/vectors/default/vd2" <"$T/vd2"
is "$(op write "$mnt/vectors/nope/x" <"$T/v1")" ENOENT "a vector in a namespace that does not exist is ENOENT"
is "$(listing "$mnt/vectors")" "default foo image " "and makes no namespace"
# a vector for an existing node, in another namespace
f32 0.96 0.28 0 0 >"$T/vz"
op write "$mnt/vectors/foo/zeb1" <"$T/vz" >/dev/null
rm "$mnt/vectors/foo/v2"
ok $? "rm vectors/foo/v2"
is "$(listing "$mnt/vectors/foo")" "v1 v3 zeb1 " "it is gone from ls"

# ==== query/: JSON vector requests against those vectors ==========================
cat >"$T/qv.json" <<'EOF'
{"query_embedding": [1, 0, 0, 0], "similarity_top_k": 3, "ns": "foo"}
EOF
is "$(op write "$mnt/query/qv.json" <"$T/qv.json")" OK "write a vector query (query_embedding, ns foo) to query/qv.json"
is "$(jq -c '[.mode, .similarity_top_k, .ids]' "$mnt/query/qv.json" 2>&1)" '["vector",3,["v1","zeb1","v3"]]' \
	"cat query/qv.json: top 3 by cosine similarity"
is "$(jq -c '[.similarities[] | . * 1000 | round]' "$mnt/query/qv.json" 2>&1)" '[1000,960,600]' \
	"the similarities are the cosines (1, 0.96, 0.6)"
is "$(jq -c '[.nodes[] | [.rank, .node_id, (.score * 1000 | round)]]' "$mnt/query/qv.json" 2>&1)" \
	'[[1,"v1",1000],[2,"zeb1",960],[3,"v3",600]]' "nodes carry rank, node_id and score"
is "$(jq -r '.nodes[1].text' "$mnt/query/qv.json" 2>&1)" "Zebras were replaced by okapis." \
	"a hit whose node exists carries its text"
is "$(stat -c %s "$mnt/query/qv.json")" "$(wc -c <"$mnt/query/qv.json")" "stat size of query/qv.json is the bytes read"
printf '{"query_embedding": [1, 0, 0, 0], "similarity_top_k": 5, "ns": "foo", "node_ids": ["v3", "zeb1"]}' |
	op write "$mnt/query/qn.json" >/dev/null
is "$(jq -c .ids "$mnt/query/qn.json" 2>&1)" '["zeb1","v3"]' "node_ids restricts the candidates"
printf '{"query_embedding": [0, 0, 1, 0], "similarity_top_k": 1, "ns": "foo"}' | op write "$mnt/query/qv.json" >/dev/null
is "$(jq -c '.similarity_top_k' "$mnt/query/qv.json" 2>&1)" 1 "rewriting a request file changes its result"
# refused at close or when read: either way EINVAL and one line
e0=$(errors_count)
got=$(op write "$mnt/query/qd.json" <<<'{"query_embedding": [1, 0], "ns": "foo"}')
[ "$got" = OK ] && got=$(op read "$mnt/query/qd.json")
is "$got" EINVAL "a query_embedding of the wrong dimension (2, namespace has 4) is EINVAL"
is "$(new_errors "$e0" | grep -c 'qd.json')" 1 "with one line in .lodefs/errors"

# ==== query/: path options ========================================================
is "$(q 'apples' '[.query_str, .mode, .similarity_top_k]')" '["apples","keyword",2]' \
	"query/apples: query_str, mode (keyword without a model), similarity_top_k 2"
is "$(q 'apples' '[.nodes[] | keys] | unique')" '[["metadata","node_id","rank","ref_doc_id","score","text"]]' \
	"each hit has rank, score, node_id, ref_doc_id, text, metadata"
is "$(q 'apples' '[([.nodes[].rank] == [range(1; (.nodes|length)+1)]), (.ids == [.nodes[].node_id]), (.similarities == [.nodes[].score]), ([.nodes[].score] == ([.nodes[].score] | sort | reverse))]')" \
	'[true,true,true,true]' "ranks 1..n, ids and similarities match nodes, scores descending"
is "$(q 'k=4/apples' '[.similarity_top_k, (.nodes | length)]')" '[4,4]' "k=4 gives 4 hits"
is "$(q 'k=4/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples1.txt","fruit/apples2.txt","fruit/apples3.txt","fruit/pears.txt"]' \
	"the 4 hits are the 4 documents about apples"
for m in keyword vector hybrid mmr; do
	is "$(q "mode=$m/k=3/apple orchards" '[.mode, (.nodes | length)]')" "[\"$m\",3]" "mode=$m answers with 3 hits"
done
is "$(q 'k=5/mode=keyword/apples' '.ids')" "$(q 'mode=keyword/k=5/apples' '.ids')" "options in any order give the same result"
is "$(q 'doc=fruit%2Fpears.txt/k=5/apples' '[.nodes[].ref_doc_id] | unique')" '["fruit/pears.txt"]' \
	"doc=<id> (a / as %2F) restricts to that document"
is "$(q 'doc=ships.txt/doc=fruit%2Fpears.txt/k=5/apples ships' '[.nodes[].ref_doc_id] | unique')" '["fruit/pears.txt","ships.txt"]' \
	"several doc= mean any of them"
is "$(q 'where=author==alice/k=5/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples1.txt","fruit/apples3.txt"]' \
	"where=author==alice (an xattr) filters"
is "$(q 'where=author==alice/where=topic==fruit/k=5/apples' '[.nodes[].ref_doc_id]')" '["fruit/apples1.txt"]' \
	"two where= AND together"
is "$(q 'where=author!=alice/k=5/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples2.txt","fruit/pears.txt"]' \
	"where=author!=alice"
is "$(q 'where=author~in~bob,carol/k=5/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples2.txt","fruit/pears.txt"]' \
	"where=author~in~bob,carol"
is "$(q 'where=file_size>62/k=5/apples' '[.nodes[].ref_doc_id]')" '["fruit/pears.txt"]' \
	"where=file_size>62 compares numbers"
is "$(q 'where=file_size>=62/k=5/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples1.txt","fruit/pears.txt"]' \
	"where=file_size>=62"
out=$(cat "$mnt/query/format=text/k=1/lighthouses" 2>&1)
printf '%s\n' "$out" | head -n 1 | grep -q '^1\. .*(ships.txt)' &&
	printf '%s\n' "$out" | grep -qx 'Lighthouses guide ships past the rocks at night.'
ok $? "format=text: '1. score id (ref_doc_id)' then the text"
! jq -e . >/dev/null 2>&1 <<<"$out"
ok $? "format=text is not JSON"
is "$(q 'zzzzunseen' '[.nodes, .ids, .similarities]')" '[[],[],[]]' "a query with no hits has empty lists"

for p in "k=3/apples" "apples" "format=text/k=3/apples" "where=author==alice/k=5/apples"; do
	is "$(stat -c %s "$mnt/query/$p")" "$(cat "$mnt/query/$p" | wc -c)" "stat size of query/$p is the bytes read"
done

refused "unknown option foo=1" ENOENT 'foo' read "$mnt/query/foo=1/apples"
refused "k=abc" EINVAL 'k=abc' read "$mnt/query/k=abc/apples"
refused "k=0" EINVAL 'k=0' read "$mnt/query/k=0/apples"
refused "mode=bogus" EINVAL 'bogus' read "$mnt/query/mode=bogus/apples"
refused "a malformed where (author~~x)" EINVAL 'where' read "$mnt/query/where=author~~x/apples"
refused "alpha=2" EINVAL 'alpha' read "$mnt/query/alpha=2/apples"
refused "an unknown namespace (ns=nope)" EINVAL 'nope' read "$mnt/query/ns=nope/mode=vector/apples"

# Results follow the store.
is "$(q 'puffins' '.ids')" '[]' "query/puffins: no hits yet"
s0=$(stat -c %s "$mnt/query/puffins")
printf 'Puffins nest on cliffs by the sea.\n' >"$mnt/docs/puffins.txt"
is "$(q 'puffins' '[.nodes[].ref_doc_id]')" '["puffins.txt"]' "the same query file sees a document closed since"
[ "$(stat -c %s "$mnt/query/puffins")" -gt "$s0" ] &&
	[ "$(stat -c %s "$mnt/query/puffins")" = "$(cat "$mnt/query/puffins" | wc -c)" ]
ok $? "and its stat size follows"
rm "$mnt/docs/puffins.txt"
is "$(q 'puffins' '.ids')" '[]' "and no longer finds it once removed"

# ==== query/: JSON requests ========================================================
cat >"$T/q1.json" <<'EOF'
{"query_str": "apples", "similarity_top_k": 4}
EOF
is "$(op write "$mnt/query/q1.json" <"$T/q1.json")" OK "write query/q1.json (query_str, similarity_top_k)"
is "$(jq -c '[.query_str, .similarity_top_k, .ids]' "$mnt/query/q1.json" 2>&1)" \
	"$(q 'k=4/apples' '[.query_str, .similarity_top_k, .ids]')" "query/q1.json answers as query/k=4/apples"
is "$(listing "$mnt/query" | tr ' ' '\n' | grep -c '^q1.json$')" 1 "ls query lists q1.json"
cat >"$T/qand.json" <<'EOF'
{"query_str": "apples", "similarity_top_k": 5, "filters": {"filters": [
  {"key": "author", "value": "alice", "operator": "=="},
  {"key": "topic", "value": "fruit", "operator": "=="}], "condition": "and"}}
EOF
op write "$mnt/query/qand.json" <"$T/qand.json" >/dev/null
is "$(jq -c '[.nodes[].ref_doc_id]' "$mnt/query/qand.json" 2>&1)" '["fruit/apples1.txt"]' "filters with condition and"
cat >"$T/qor.json" <<'EOF'
{"query_str": "apples", "similarity_top_k": 5, "filters": {"filters": [
  {"key": "author", "value": "carol", "operator": "=="},
  {"key": "topic", "value": "drink", "operator": "=="}], "condition": "or"}}
EOF
op write "$mnt/query/qor.json" <"$T/qor.json" >/dev/null
is "$(jq -c '[.nodes[].ref_doc_id] | sort' "$mnt/query/qor.json" 2>&1)" '["fruit/apples3.txt","fruit/pears.txt"]' \
	"filters with condition or"
cat >"$T/qnest.json" <<'EOF'
{"query_str": "apples", "similarity_top_k": 5, "filters": {"filters": [
  {"key": "topic", "value": "fruit", "operator": "=="},
  {"filters": [{"key": "author", "value": "bob", "operator": "=="},
               {"key": "author", "value": "carol", "operator": "=="}], "condition": "or"}],
  "condition": "and"}}
EOF
op write "$mnt/query/qnest.json" <"$T/qnest.json" >/dev/null
is "$(jq -c '[.nodes[].ref_doc_id] | sort' "$mnt/query/qnest.json" 2>&1)" '["fruit/apples2.txt","fruit/pears.txt"]' \
	"nested filters (and of an or)"
cat >"$T/qin.json" <<'EOF'
{"query_str": "apples", "similarity_top_k": 5, "filters": {"filters": [
  {"key": "author", "value": ["bob", "carol"], "operator": "nin"}]}}
EOF
op write "$mnt/query/qin.json" <"$T/qin.json" >/dev/null
is "$(jq -c '[.nodes[].ref_doc_id] | sort' "$mnt/query/qin.json" 2>&1)" '["fruit/apples1.txt","fruit/apples3.txt"]' \
	"operator nin with a list"
printf '{"query_str": "apples", "similarity_top_k": 5, "doc_ids": ["fruit/apples2.txt"]}' | op write "$mnt/query/qdoc.json" >/dev/null
is "$(jq -c '[.nodes[].ref_doc_id] | unique' "$mnt/query/qdoc.json" 2>&1)" '["fruit/apples2.txt"]' "doc_ids restricts to documents"
printf '{"query_str": "apple orchards", "similarity_top_k": 3, "mode": "hybrid", "alpha": 0.3}' | op write "$mnt/query/qh.json" >/dev/null
is "$(jq -c '[.mode, (.nodes | length)]' "$mnt/query/qh.json" 2>&1)" '["hybrid",3]' "mode hybrid with alpha"
printf '{"query_str": "apple orchards", "similarity_top_k": 3, "mode": "mmr", "mmr_threshold": 0.2}' | op write "$mnt/query/qm.json" >/dev/null
is "$(jq -c '[.mode, (.nodes | length)]' "$mnt/query/qm.json" 2>&1)" '["mmr",3]' "mode mmr with mmr_threshold"
printf '{"query_str": "apples", "similarity_top_k": 2, "mode": "text_search"}' | op write "$mnt/query/qs.json" >/dev/null
is "$(jq -c '.mode' "$mnt/query/qs.json" 2>&1)" '"keyword"' "LlamaIndex's text_search mode is keyword"
long=$(python3 -c 'print("apples " * 60 + "orchards " * 40)')
printf '{"query_str": "%s", "similarity_top_k": 2}' "$long" | op write "$mnt/query/qlong.json" >/dev/null
is "$(jq -c '(.query_str | length) > 255, (.nodes | length)' "$mnt/query/qlong.json" 2>&1 | tr '\n' ' ')" "true 2 " \
	"a query text longer than a file name works as JSON"
for f in q1 qand qor qh; do
	is "$(stat -c %s "$mnt/query/$f.json")" "$(wc -c <"$mnt/query/$f.json")" "stat size of query/$f.json is the bytes read"
done
qls=$(listing "$mnt/query")
refused "invalid JSON request" EINVAL 'qbad.json' write "$mnt/query/qbad.json" <<<'{"query_str": '
[ ! -e "$mnt/query/qbad.json" ]
ok $? "a refused request leaves no file behind"
refused "an unknown field (similarity_topk)" EINVAL 'qtypo.json' write "$mnt/query/qtypo.json" \
	<<<'{"query_str": "apples", "similarity_topk": 3}'
refused "a bad filter operator" EINVAL 'qop.json' write "$mnt/query/qop.json" \
	<<<'{"query_str": "apples", "filters": {"filters": [{"key": "a", "value": 1, "operator": "~="}]}}'
refused "invalid JSON over an existing request" EINVAL 'q1.json' write "$mnt/query/q1.json" <<<'nope'
is "$(jq -c '[.query_str, .similarity_top_k]' "$mnt/query/q1.json" 2>&1)" '["apples",4]' \
	"the existing request is unchanged"
is "$(listing "$mnt/query")" "$qls" "ls query/ is unchanged by refused requests"
rm "$mnt/query/q1.json"
ok $? "rm query/q1.json"
[ ! -e "$mnt/query/q1.json" ] && ! listing "$mnt/query" | tr ' ' '\n' | grep -qx q1.json
ok $? "q1.json is gone"

# ==== query/: at most 3 kernel round trips (lookup, open, read) ====================
# Reading .lodefs/stats costs requests of its own: read it three times in a
# row, the difference between the 2nd and 3rd read is one read's own cost
# (c); then read, cat a new query, read: that difference minus c is the
# query's.  All within a fraction of a second, so that no cached entry
# expires; on a slow build (sanitizers, an S3 store) query/'s own name may
# time out in between and cost a lookup, so the measurement is made up to
# three times and the cheapest counts: a regression costs more every time.
python3 - "$mnt" >"$T/rt.out" 2>&1 <<'PY'
import json, os, subprocess, sys
m = sys.argv[1]
K = ["lookup", "getattr", "open", "read", "flush"]
def stats():
    with open(os.path.join(m, ".lodefs/stats"), "rb") as f:
        return json.loads(f.read())["requests"]
best = None
for attempt in range(3):
    os.listdir(os.path.join(m, "query"))          # query/ looked up once
    os.stat(os.path.join(m, "query"))
    stats(); a = stats(); b = stats()
    cost = {k: b[k] - a[k] for k in K}            # one stats read
    c = stats()
    text = "round trip counting %d %d" % (os.getpid(), attempt)
    r = subprocess.run(["cat", os.path.join(m, "query", text)],
                       capture_output=True)
    d = stats()
    q = {k: d[k] - c[k] - cost[k] for k in K}
    print("stats read costs", cost)
    print("cat query costs", q, "cat exit", r.returncode, "bytes", len(r.stdout))
    ok = r.returncode == 0 and r.stdout.startswith(b"{") and \
        all(v >= 0 for v in q.values())
    if ok and (best is None or sum(q.values()) < best):
        best = sum(q.values())
    if best is not None and best <= 3:
        break
print("SUM", best if best is not None else "invalid")
PY
diag <"$T/rt.out"
sum=$(sed -n 's/^SUM //p' "$T/rt.out")
[ -n "$sum" ] && [ "$sum" != invalid ] && [ "$sum" -le 3 ]
ok $? "cat query/<new text> costs at most 3 of lookup+open+read+getattr+flush (got $sum)"
[ -n "$sum" ] && [ "$sum" != invalid ] && [ "$sum" -ge 2 ]
ok $? "and the counters saw it (at least lookup and open: $sum)"

# ==== index/ =======================================================================
I1='{"__type__": "vector_store", "__data__": {"index_id": "i1", "summary": null, "nodes_dict": {"n1": "n1"}, "doc_id_dict": {}, "embeddings_dict": {}}}'
is "$(op write "$mnt/index/i1.json" <<<"$I1")" OK "write index/i1.json"
is "$(jq -cS . "$mnt/index/i1.json" 2>&1)" "$(jq -cS . <<<"$I1")" "index/i1.json reads back the same JSON"
is "$(jq -cS . "$mnt/kv/index_store%2Fdata/i1.json" 2>&1)" "$(jq -cS . <<<"$I1")" "it is kv/index_store%2Fdata/i1.json"
is "$(op write "$mnt/index/kg.json" <<<'{"__type__": "kg", "__data__": {"index_id": "kg", "table": {}}}')" OK \
	"another index type (kg)"
is "$(listing "$mnt/index")" "i1.json kg.json " "ls index lists both"
refused "invalid JSON in index/bad.json" EINVAL 'bad' write "$mnt/index/bad.json" <<<'{"__type__": '
refused "an index struct without __type__" EINVAL 'notype' write "$mnt/index/notype.json" <<<'{"__data__": {}}'
refused "invalid JSON over index/i1.json" EINVAL 'i1' write "$mnt/index/i1.json" <<<'{'
is "$(jq -cS . "$mnt/index/i1.json" 2>&1)" "$(jq -cS . <<<"$I1")" "index/i1.json is unchanged"
is "$(listing "$mnt/index")" "i1.json kg.json " "refused index structs are not there"
rm "$mnt/index/kg.json"
ok $? "rm index/kg.json"
is "$(listing "$mnt/index")" "i1.json " "it is gone"
[ ! -e "$mnt/kv/index_store%2Fdata/kg.json" ]
ok $? "and gone from kv/"

# ==== kv/ ==========================================================================
kvl=$(listing "$mnt/kv")
for c in 'docstore%2Fdata' 'docstore%2Fmetadata' 'docstore%2Fref_doc_info' 'index_store%2Fdata'; do
	grep -q -- "$c " <<<"$kvl"
	ok $? "ls kv lists $c"
done
nid=$(jq -r '.node_ids[0]' "$mnt/kv/docstore%2Fref_doc_info/ships.txt.json" 2>/dev/null)
is "$(jq -cS '.__data__' "$mnt/kv/docstore%2Fdata/$nid.json" 2>&1)" "$(jq -cS . "$mnt/nodes/$nid.json" 2>&1)" \
	"nodes/<id>.json is kv/docstore%2Fdata/<id>.json's __data__"
is "$(jq -r '.metadata.author' "$mnt/kv/docstore%2Fref_doc_info/ships.txt.json" 2>&1)" bob \
	"ref_doc_info has the document's metadata"
is "$(op write "$mnt/kv/docstore%2Fdata/kvnode.json" \
	<<<'{"__type__": "1", "__data__": {"id_": "kvnode", "text": "Quokkas smile on Rottnest island.", "metadata": {}}}')" OK \
	"write a node straight into kv/docstore%2Fdata"
is "$(jq -r .text "$mnt/nodes/kvnode.json" 2>&1)" "Quokkas smile on Rottnest island." "it is visible in nodes/ at once"
is "$(q quokkas .ids)" '["kvnode"]' "and found by query"
is "$(op mkdir "$mnt/kv/mycoll")" OK "mkdir kv/mycoll makes a collection"
is "$(op write "$mnt/kv/mycoll/k1.json" <<<'{"a": 1, "b": [true, null]}')" OK "write kv/mycoll/k1.json"
is "$(jq -c . "$mnt/kv/mycoll/k1.json" 2>&1)" '{"a":1,"b":[true,null]}' "it reads back"
refused "invalid JSON in kv/mycoll/k2.json" EINVAL 'k2' write "$mnt/kv/mycoll/k2.json" <<<'notjson'
is "$(listing "$mnt/kv/mycoll")" "k1.json " "the refused key is not there"
refused "writing kv/lodefs%2Ffiles" EPERM 'lodefs' write "$mnt/kv/lodefs%2Ffiles/x.json" <<<'{}'
rm "$mnt/kv/mycoll/k1.json"
ok $? "rm kv/mycoll/k1.json"
is "$(listing "$mnt/kv/mycoll")" "" "the key is gone"

# ==== graph/ =======================================================================
mkdir -p "$mnt/graph/Alice/knows" && touch "$mnt/graph/Alice/knows/Bob"
ok $? "mkdir -p graph/Alice/knows && touch graph/Alice/knows/Bob"
mkdir -p "$mnt/graph/Bob/knows" "$mnt/graph/Bob/likes" "$mnt/graph/Carol/knows" "$mnt/graph/a%2Fb/rel%25x" &&
	touch "$mnt/graph/Bob/knows/Carol" "$mnt/graph/Bob/likes/Tea" "$mnt/graph/Carol/knows/Dave" \
		"$mnt/graph/Alice/knows/Eve" "$mnt/graph/a%2Fb/rel%25x/%2Eobj"
ok $? "five more triples"
is "$(listing "$mnt/graph/Alice")" "knows " "ls graph/Alice lists the relation"
is "$(listing "$mnt/graph/Alice/knows")" "Bob Eve " "ls graph/Alice/knows lists the objects"
is "$(listing "$mnt/graph/Bob")" "knows likes " "ls graph/Bob lists two relations"
is "$(ls "$mnt/graph" | sort | tr '\n' ' ')" "Alice Bob Carol a%2Fb " "ls graph lists each subject once"
is "$(jq .triples "$mnt/.lodefs/stats" 2>&1)" 6 ".lodefs/stats counts 6 triples"
[ -f "$mnt/graph/Bob/knows/Carol" ]
ok $? "a triple is a file"
# get_rel_map, as llama_index.core.graph_stores.simple computes it
cat >"$T/relmap.py" <<'PY'
import json, sys
g = {"Alice": [["knows", "Bob"], ["knows", "Eve"]], "Bob": [["knows", "Carol"], ["likes", "Tea"]],
     "Carol": [["knows", "Dave"]], "a/b": [["rel%x", ".obj"]]}
def one(subj, depth=2, limit=30):
    if depth == 0:
        return []
    out, n = [], 0
    for rel, obj in g.get(subj, []):
        if n >= limit:
            break
        out.append([subj, rel, obj])
        out += one(obj, depth=depth - 1)
        n += 1
    return out
def rel_map(subjs, depth=2, limit=30):
    m = {s: one(s, depth, limit) for s in subjs}
    ret, n = {}, 0
    for s in m:
        if n + len(m[s]) > limit:
            ret[s] = m[s][: limit - n]
            break
        ret[s] = m[s]
        n += len(m[s])
    return ret
subj, depth, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(json.dumps(rel_map([subj], depth, limit), sort_keys=True, separators=(",", ":")))
PY
for spec in "Alice:" "Alice:depth=1/" "Alice:depth=3/" "Alice:depth=3/limit=2/" "Alice:limit=1/" "Bob:depth=1/" "Dave:" "a%2Fb:"; do
	s=${spec%%:*}
	p=${spec#*:}
	d=$(sed -n 's/.*depth=\([0-9]*\).*/\1/p' <<<"$p")
	l=$(sed -n 's/.*limit=\([0-9]*\).*/\1/p' <<<"$p")
	want=$(python3 "$T/relmap.py" "$(python3 -c 'import sys,urllib.parse as u; print(u.unquote(sys.argv[1]))' "$s")" "${d:-2}" "${l:-30}")
	is "$(jq -cS . "$mnt/graph/.rel_map/$p$s" 2>&1)" "$want" "graph/.rel_map/$p$s is get_rel_map([$s], ${d:-2}, ${l:-30})"
done
is "$(stat -c %s "$mnt/graph/.rel_map/Alice")" "$(wc -c <"$mnt/graph/.rel_map/Alice")" "stat size of a rel_map file is the bytes read"
rm "$mnt/graph/Bob/likes/Tea"
ok $? "rm graph/Bob/likes/Tea"
[ ! -e "$mnt/graph/Bob/likes/Tea" ]
ok $? "the triple is gone"
is "$(jq -c '.Alice | map(select(.[2] == "Tea")) | length' "$mnt/graph/.rel_map/Alice" 2>&1)" 0 "and gone from get_rel_map"
is "$(jq .triples "$mnt/.lodefs/stats" 2>&1)" 5 ".lodefs/stats counts 5 triples"

# ==== ordinary tools write the views: cp (open, fstat, write, close), cat > ====
printf '{"text": "Copied node about axolotls.", "metadata": {}}' >"$T/cpnode.json"
cp "$T/cpnode.json" "$mnt/nodes/cpnode.json"
ok $? "cp a file into nodes/"
is "$(jq -r .text "$mnt/nodes/cpnode.json" 2>&1)" "Copied node about axolotls." "the copied node is there"
cp "$T/v3" "$mnt/vectors/foo/cpvec"
ok $? "cp a file into vectors/foo/"
ok_cmd "the copied vector is there" cmp "$T/v3" "$mnt/vectors/foo/cpvec"
printf '{"__type__": "list", "__data__": {"index_id": "cpix", "nodes": []}}' >"$T/cpix.json"
cp "$T/cpix.json" "$mnt/index/cpix.json"
ok $? "cp a file into index/"
is "$(jq -r .__data__.index_id "$mnt/index/cpix.json" 2>&1)" cpix "the copied index struct is there"
printf '{"k": "copied"}' >"$T/cpk.json"
cp "$T/cpk.json" "$mnt/kv/mycoll/cpk.json"
ok $? "cp a file into kv/mycoll/"
is "$(jq -r .k "$mnt/kv/mycoll/cpk.json" 2>&1)" copied "the copied kv value is there"
cat "$T/cpnode.json" >"$mnt/nodes/catnode.json"
ok $? "cat FILE > nodes/catnode.json (cat fstat()s its output)"
is "$(jq -r .text "$mnt/nodes/catnode.json" 2>&1)" "Copied node about axolotls." "the node written by cat is there"
cp "$T/qand.json" "$mnt/query/cpq.json"
ok $? "cp a request into query/"
is "$(jq -c '[.nodes[].ref_doc_id]' "$mnt/query/cpq.json" 2>&1)" '["fruit/apples1.txt"]' "and read its result"

# bash's > opens the file, dup2()s it and closes the first descriptor (a
# FLUSH with nothing written yet) before echo writes: that is no refusal.
e0=$(errors_count)
echo '{"text": "Echoed node about tapirs.", "metadata": {}}' >"$mnt/nodes/echo.json"
ok $? "echo JSON > nodes/echo.json"
echo '{"__type__": "list", "__data__": {"index_id": "echo", "nodes": []}}' >"$mnt/index/echo.json"
ok $? "echo JSON > index/echo.json"
echo '{"k": "echoed"}' >"$mnt/kv/mycoll/echo.json"
ok $? "echo JSON > kv/mycoll/echo.json"
is "$(q tapirs .ids)" '["echo"]' "the echoed node is stored"
is "$(new_errors "$e0" | grep -c .)" 0 "successful shell redirections add no line to .lodefs/errors"
new_errors "$e0" | diag

# ==== .lodefs/ ======================================================================
jq -e . "$mnt/.lodefs/stats" >/dev/null 2>&1
ok $? ".lodefs/stats is JSON"
is "$(jq -c '[has("documents"), has("nodes"), has("vectors"), has("triples"), has("bytes"), has("backend"), has("queries"), has("requests")]' "$mnt/.lodefs/stats" 2>&1)" \
	'[true,true,true,true,true,true,true,true]' "stats has documents, nodes, vectors, triples, bytes, backend, queries, requests"
is "$(jq .documents "$mnt/.lodefs/stats" 2>&1)" 5 "stats counts the 5 documents"
is "$(jq .nodes "$mnt/.lodefs/stats" 2>&1)" "$(ls "$mnt/nodes" | wc -l)" "stats' node count is the number of files in nodes/"
is "$(jq -c '.vectors.foo | if type == "object" then .vectors else . end' "$mnt/.lodefs/stats" 2>&1)" "$(ls "$mnt/vectors/foo" | wc -l)" "stats counts the vectors of namespace foo"
n0=$(jq .queries.served "$mnt/.lodefs/stats" 2>/dev/null)
cat "$mnt/query/stats counter check $$" >/dev/null
n1=$(jq .queries.served "$mnt/.lodefs/stats" 2>/dev/null)
[ -n "$n0" ] && [ -n "$n1" ] && [ "$n1" -gt "$n0" ]
ok $? "queries.served counts a query ($n0 -> $n1)"
is "$(jq -r '.backend.kind // .backend' "$mnt/.lodefs/stats" 2>&1)" "$(lodefs_backend)" "stats names the backend ($(lodefs_backend))"
jq -e . "$mnt/.lodefs/config" >/dev/null 2>&1
ok $? ".lodefs/config is JSON"
is "$(jq -c '[.sync, .chunk_size, .chunk_overlap]' "$mnt/.lodefs/config" 2>&1)" '["close",1024,200]' \
	"config shows the effective defaults (sync close, chunk 1024/200)"
is "$(jq -c '.ann_threshold' "$mnt/.lodefs/config" 2>&1)" 50000 \
	"config shows the HNSW threshold (default 50000)"
is "$(jq -c '.ann | [.graphs, .built, .loaded]' "$mnt/.lodefs/stats" 2>&1)" '[0,0,0]' \
	"stats show the HNSW graphs (none below the threshold)"
if [ "$(lodefs_backend)" = s3 ]; then
	is "$(jq -r '.source' "$mnt/.lodefs/config" 2>&1)" "$(lodefs_source "$src")" "config names the store"
else
	is "$(jq -r '.store // .source' "$mnt/.lodefs/config" 2>&1)" "$(realpath "$src")" "config names the store"
fi
is "$(stat -c %s "$mnt/.lodefs/config")" "$(wc -c <"$mnt/.lodefs/config")" "stat size of .lodefs/config is the bytes read"
leak=$(grep -l -- "$SECRET" "$mnt/.lodefs/config" "$mnt/.lodefs/stats" "$mnt/.lodefs/errors" "$(lodefs_log "$mnt")" 2>/dev/null)
pid=${LODEFS_PIDS[$(lodefs__key "$mnt")]}
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$SECRET" && leak="$leak ps"
is "$leak" "" "a secret in the environment is in none of config, stats, errors, the log, ps"
n=$(errors_count)
[ "$n" -gt 10 ]
ok $? ".lodefs/errors holds the refusals above ($n lines)"
bad=$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z [^ ]+ .+$' "$mnt/.lodefs/errors")
is "$bad" 0 "every line of .lodefs/errors is 'TIME PATH REASON'"
is "$(stat -c %s "$mnt/.lodefs/errors")" "$(wc -c <"$mnt/.lodefs/errors")" "stat size of .lodefs/errors is the bytes read"
# the PATH of a refusal names the refused file: VIEW/NAME as under the mount,
# or NAME as under the view's folder
errpath() { # VIEW REL: refuse writing VIEW/REL, print the PATH field of the new line
	local e0
	e0=$(errors_count)
	op write "$mnt/$1/$2" >/dev/null
	new_errors "$e0" | tail -n 1 | cut -d' ' -f2
}
for vr in "nodes bad.json" "vectors foo/bad" "index bad.json" "kv mycoll/bad.json" "query bad.json"; do
	set -- $vr
	got=$(errpath "$1" "$2" <<<'{"xy') # 5 bytes: bad JSON, bad vector size
	case $got in "$1/$2" | "$2") r=0 ;; *) r=1 ;; esac
	ok $r "the .lodefs/errors line for a refused $1/$2 names it (PATH '$got')"
done
for f in stats config errors; do
	w=$(printf 'x' | op write "$mnt/.lodefs/$f")
	case $w in EACCES | EPERM | EROFS) r=0 ;; *) r=1 ;; esac
	ok $r ".lodefs/$f cannot be written ($w)"
done

is "$(op mkdir "$mnt/vectors/emptyns")" OK "mkdir vectors/emptyns (a namespace with no vector yet)"
lodefs_umount "$mnt"
ok $? "unmount exits 0"

# ==== everything is still there after a remount ====================================
lodefs_mount "$src" "$mnt"
ok $? "the store mounts again" || done_testing
ok_cmd "vectors/foo/v1 is kept byte for byte" cmp "$T/v1" "$mnt/vectors/foo/v1"
is "$(listing "$mnt/vectors")" "default emptyns foo image " "namespaces foo and emptyns are kept"
is "$(jq -r .text "$mnt/nodes/zeb1.json" 2>&1)" "Zebras were replaced by okapis." "nodes are kept"
is "$(jq -cS . "$mnt/index/i1.json" 2>&1)" "$(jq -cS . <<<"$I1")" "index structs are kept"
is "$(jq -cS . "$mnt/graph/.rel_map/Alice" 2>&1)" '{"Alice":[["Alice","knows","Bob"],["Bob","knows","Carol"],["Alice","knows","Eve"]]}' \
	"triples are kept"
is "$(q 'where=author==alice/k=5/apples' '[.nodes[].ref_doc_id] | sort')" '["fruit/apples1.txt","fruit/apples3.txt"]' \
	"queries with filters answer the same"
lodefs_umount "$mnt"
ok $? "unmount exits 0"

done_testing

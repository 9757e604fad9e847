#!/usr/bin/env bash
# test_embed.sh - -o embed=URL: documents and query texts embedded by an
# OpenAI-compatible server (tests/embed_server.py on 127.0.0.1), its
# retries, and what a write does while the server is down (TAP).
#
# Usage: test_embed.sh PATH/TO/lodefs   (or $LODEFS, as meson sets it);
# needs root.  LODEFS_EMBED_SERVER is the server script (meson sets it).
. "$(dirname "$0")/lib.sh" "$@"

need_root
need_lodefs
need_cmd jq cmp stat
[ -x /usr/bin/python3 ] || skip_all "needs /usr/bin/python3"
SRV=${LODEFS_EMBED_SERVER:-$(dirname "$0")/../embed_server.py}
[ -f "$SRV" ] || skip_all "no tests/embed_server.py"
DIM=8

# srv_start: the server on a free port; sets PORT and SRV_PID.
srv_start() {
	: >"$T/port"
	/usr/bin/python3 "$SRV" --dim $DIM >"$T/port" 2>"$T/srv.log" &
	SRV_PID=$!
	lodefs_track "$SRV_PID"
	wait_for 10 test -s "$T/port" || bail_out "the embeddings server did not start"
	PORT=$(head -n 1 "$T/port")
}
srv() { curl -sf "http://127.0.0.1:$PORT$1" ${2:+-d "$2"}; }
requests() { srv /stats | jq .requests; }
# f32 V...: the float32 little-endian bytes of the numbers, on stdout.
f32() { python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<%df" % (len(sys.argv) - 1), *map(float, sys.argv[1:])))' "$@"; }
# want_vec TEXT: the server's vector of TEXT as float32 bytes.
want_vec() { f32 $(/usr/bin/python3 "$SRV" --vec "$1" $DIM | jq -r '.[]'); }
errors_count() { wc -l <"$mnt/.lodefs/errors"; }

need_cmd curl
srv_start
src=$T/store
mnt=$T/mnt
mkdir -p "$mnt"
out=$("$LODEFS" -f -o "embed=http://127.0.0.1:$PORT" "$src" "$mnt" 2>&1)
rc=$?
[ "$rc" != 0 ] && printf '%s' "$out" | grep -q "needs embed_dim"
ok $? "embed= without embed_dim is refused at mount ($rc)"
SECRET=lodefsEmbedKey-93e1a7
export LODEFS_EMBED_API_KEY=$SECRET
lodefs_mount "$src" "$mnt" "embed=http://127.0.0.1:$PORT" embed_model=test-model embed_dim=$DIM
ok $? "mounts with -o embed=URL,embed_model=test-model,embed_dim=$DIM" || done_testing
unset LODEFS_EMBED_API_KEY

is "$(jq -c '.embed | [.url, .model, .dim]' "$mnt/.lodefs/config" 2>&1)" \
	"[\"http://127.0.0.1:$PORT\",\"test-model\",$DIM]" ".lodefs/config shows the server, model and dim"
is "$(jq -c .bm25_bigrams "$mnt/.lodefs/config" 2>&1)" true ".lodefs/config: word pairs in the keyword index by default"
! grep -rq "$SECRET" "$mnt/.lodefs/config" "$mnt/.lodefs/stats" "$mnt/.lodefs/errors" \
	"${LODEFS_LOGS[$(lodefs__key "$mnt")]}"
ok $? "the API key shows nowhere in .lodefs/ or the daemon's output"

# ---- documents get the server's vectors -------------------------------------
printf 'apple orchards in spring' | op write "$mnt/docs/apple.txt" >/dev/null
printf 'banana boats at sea' >"$mnt/docs/banana.txt"
ok $? "two documents written"
is "$(srv /stats | jq -c '[.auth[0], .models[0]]')" "[\"Bearer $SECRET\",\"test-model\"]" \
	"requests carry the key as Bearer and the model"
node=$(ls "$mnt/nodes" | while read -r n; do
	jq -r 'select(.relationships["1"].node_id == "apple.txt") | .id_' "$mnt/nodes/$n"
done)
[ -n "$node" ]
ok $? "apple.txt has a node ($node)"
is "$(stat -c %s "$mnt/vectors/default/$node" 2>&1)" $((4 * DIM)) "its vector has $DIM dimensions"
want_vec 'apple orchards in spring' >"$T/want"
cmp -s "$T/want" "$mnt/vectors/default/$node"
ok $? "vectors/default/<node> is exactly the server's vector of the node's text"

# ---- a query text is embedded by the server ---------------------------------
n0=$(requests)
printf '{"query_str": "apple", "mode": "vector", "similarity_top_k": 1}' |
	op write "$mnt/query/qv.json" >/dev/null
is "$(jq -c '[.mode, .nodes[0].ref_doc_id]' "$mnt/query/qv.json" 2>&1)" '["vector","apple.txt"]' \
	"a vector query by text finds apple.txt"
is "$(srv /stats | jq -r '.texts[-1]')" "apple" "the query text went to the server"
[ "$(requests)" -gt "$n0" ]
ok $? "one more request for the query"
printf '{"query_str": "banana sea", "mode": "hybrid", "similarity_top_k": 2}' |
	op write "$mnt/query/qh.json" >/dev/null
is "$(jq -c '[.mode, .nodes[0].ref_doc_id, (.nodes | length)]' "$mnt/query/qh.json" 2>&1)" \
	'["hybrid","banana.txt",2]' "mode hybrid fuses the server's vectors with BM25"

# ---- retries ------------------------------------------------------------------
n0=$(requests)
srv /control '{"fail": 2, "status": 503}' >/dev/null
is "$(printf 'cherry trees' | op write "$mnt/docs/cherry.txt")" OK \
	"two 503 answers, then success: the write succeeds"
is "$(( $(requests) - n0 ))" 3 "after two retries (three requests)"
n0=$(requests)
srv /control '{"close": 1}' >/dev/null
is "$(printf 'damson jam' | op write "$mnt/docs/damson.txt")" OK \
	"a dropped connection is retried"
is "$(( $(requests) - n0 ))" 2 "two requests"

# ---- a wrong dimension is refused ---------------------------------------------
srv /control '{"dim": 4}' >/dev/null
e0=$(errors_count)
is "$(printf 'elder flowers' | op write "$mnt/docs/elder.txt")" EIO \
	"a server answering 4 dimensions for embed_dim=$DIM: close() fails with EIO"
tail -n +$((e0 + 1)) "$mnt/.lodefs/errors" | grep -q "elder.txt.*4 dimensions; embed_dim is $DIM"
ok $? "with the reason in .lodefs/errors"
srv /control "{\"dim\": $DIM}" >/dev/null

# ---- sync=fsync: the documents of a commit round in one request ---------------
lodefs_mount "$T/store2" "$T/mnt2" "embed=http://127.0.0.1:$PORT" embed_dim=$DIM sync=fsync
ok $? "a second store mounted with sync=fsync"
n0=$(requests)
for i in 1 2 3 4 5; do printf 'round document %s' "$i" >"$T/mnt2/docs/r$i.txt"; done
is "$(op write_fsync "$T/mnt2/docs/r6.txt" <<<"round document 6")" OK "six files written, the last fsync'd"
is "$(( $(requests) - n0 ))" 1 "the round's six documents went in one request"
is "$(srv /stats | jq '.inputs[-1]')" 6 "with six inputs"
is "$(ls "$T/mnt2/vectors/default" | wc -l)" 6 "six vectors"
lodefs_umount "$T/mnt2"

# ---- the server down -----------------------------------------------------------
lodefs_stop "$SRV_PID"
e0=$(errors_count)
is "$(printf 'fig rolls' | op write "$mnt/docs/fig.txt")" EIO \
	"server down: close() fails with EIO (after the retries)"
tail -n +$((e0 + 1)) "$mnt/.lodefs/errors" | grep -q "fig.txt.*embeddings server"
ok $? "one line in .lodefs/errors names the document and the server"
is "$(printf 'apple orchards in autumn' | op write "$mnt/docs/apple.txt")" EIO \
	"a new version of apple.txt fails the same way"
is "$(jq -r '.nodes[0].ref_doc_id' "$mnt/query/k=1/banana boats" 2>&1)" banana.txt \
	"server down: keyword queries still answer"
e0=$(errors_count)
is "$(cat "$mnt/query/mode=vector/banana boats" >/dev/null 2>"$T/qerr"; echo $?; grep -c 'Input/output error' "$T/qerr")" "1
1" "a query that needs the text's vector fails with EIO"
tail -n +$((e0 + 1)) "$mnt/.lodefs/errors" | grep -q "query failed: embeddings server"
ok $? "with the reason in .lodefs/errors"
lodefs_umount "$mnt"
ok $? "unmounts"

# What the store holds, seen without a server: nothing half-applied.
lodefs_mount "$src" "$mnt" bm25_bigrams=0
ok $? "mounts again without the server" || done_testing
is "$(cat "$mnt/docs/apple.txt" 2>&1)" "apple orchards in spring" "apple.txt is the last version that was stored"
[ ! -e "$mnt/docs/fig.txt" ] && [ ! -e "$mnt/docs/elder.txt" ]
ok $? "the refused documents were not stored"
cmp -s "$T/want" "$mnt/vectors/default/$node"
ok $? "apple.txt's node keeps the server's vector"
is "$(ls "$mnt/vectors/default" | wc -l)" 4 "four documents, four vectors (apple, banana, cherry, damson)"
is "$(jq -c .bm25_bigrams "$mnt/.lodefs/config" 2>&1)" false "-o bm25_bigrams=0 shows in .lodefs/config"
is "$(jq -r '.nodes[0].ref_doc_id' "$mnt/query/cherry trees" 2>&1)" cherry.txt "keyword queries work without the server"
lodefs_umount "$mnt"

done_testing

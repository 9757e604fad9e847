#!/usr/bin/env bash
# test_lode.sh - the lode command end to end, as a user runs it (TAP).
set -u
lode=${1:?usage: test_lode.sh PATH/TO/lode}
work=$(mktemp -d /tmp/lodefs-lode-XXXXXX)
s3rver=${LODEFS_S3RVER:-$(cd "$(dirname "$0")" && pwd)/s3/s3rver.sh}
# s3rver, if the S3 cases started it, is stopped by its PID (s3rver.sh stop).
trap '[ -f "$work/s3/pid" ] && "$s3rver" stop "$work/s3"; rm -rf "$work"' EXIT
store=$work/store
n=0
failed=0

ok() { # ok DESCRIPTION COMMAND...: the command must succeed
	local d=$1
	shift
	n=$((n + 1))
	if "$@" >"$work/out" 2>"$work/err"; then
		echo "ok $n - $d"
	else
		echo "not ok $n - $d"
		sed 's/^/# /' "$work/out" "$work/err"
		failed=$((failed + 1))
	fi
}

no() { # no DESCRIPTION COMMAND...: the command must fail
	local d=$1
	shift
	n=$((n + 1))
	if "$@" >"$work/out" 2>"$work/err"; then
		echo "not ok $n - $d (succeeded)"
		failed=$((failed + 1))
	else
		echo "ok $n - $d"
	fi
}

status_is() { # status_is WANT COMMAND...
	local want=$1
	shift
	"$@" >"$work/out" 2>"$work/err"
	[ $? -eq "$want" ]
}

mkdir -p "$work/in/sub"
printf 'Otters hold hands while they sleep in the kelp.\n' >"$work/in/otters.txt"
printf 'Lighthouses guide ships past the rocks at night.\n' >"$work/in/sub/light.md"
head -c 4096 /dev/urandom >"$work/in/blob.bin"
printf '\xff\xfe\x00binary' >>"$work/in/blob.bin"

ok "add a directory" "$lode" add "$store" "$work/in" --base "$work/in" -q
ok "query finds the document by keyword" \
	sh -c "'$lode' query '$store' 'otters sleeping' -k 1 | grep -q 'otters.txt'"
ok "query --json is JSON with nodes[0].ref_doc_id" \
	sh -c "'$lode' query '$store' lighthouses --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"nodes\"][0][\"ref_doc_id\"]==\"sub/light.md\"'"
ok "get returns the exact bytes of a text file" \
	sh -c "'$lode' get '$store' otters.txt | cmp - '$work/in/otters.txt'"
ok "get returns the exact bytes of a binary file" \
	sh -c "'$lode' get '$store' blob.bin | cmp - '$work/in/blob.bin'"
ok "a binary file is not indexed" \
	sh -c "! '$lode' get '$store' blob.bin --kv docstore/ref_doc_info"
ok "--where filters by metadata" \
	sh -c "'$lode' query '$store' 'ships rocks otters' -k 5 --where 'file_name==light.md' --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin); assert [n[\"ref_doc_id\"] for n in d[\"nodes\"]]==[\"sub/light.md\"]'"
ok "adding the same files again changes nothing" \
	sh -c "'$lode' add '$store' '$work/in' --base '$work/in' | grep -q '^0 indexed, 3 unchanged'"
ok "stats counts documents" \
	sh -c "'$lode' stats '$store' --json | python3 -c 'import json,sys; assert json.load(sys.stdin)[\"documents\"]==2'"
ok "fsck of a healthy store exits 0" "$lode" fsck "$store"
ok "rm deletes a document" "$lode" rm "$store" otters.txt
ok "the deleted document is gone" \
	sh -c "'$lode' query '$store' otters | grep -q 'no results'"
no "get of a deleted document fails" "$lode" get "$store" otters.txt
no "rm of a missing id fails" "$lode" rm "$store" otters.txt
ok "compact then the store still answers" \
	sh -c "'$lode' compact '$store' && '$lode' query '$store' lighthouses | grep -q light.md"

for cmd in add query get rm stats compact fsck import export import-vectors search; do
	ok "$cmd --help exits 0" sh -c "'$lode' $cmd --help | grep -q usage"
done
ok "no arguments is a usage error (2)" status_is 2 "$lode"
ok "unknown command is a usage error (2)" status_is 2 "$lode" frobnicate
ok "bad -k is a usage error (2)" status_is 2 "$lode" query "$store" x -k zero
ok "bad --where is a usage error (2)" status_is 2 "$lode" query "$store" x --where '=='
no "malformed --meta is refused" "$lode" add "$store" "$work/in/sub/light.md" --meta '{bad'
ok "query on a missing store fails (1)" status_is 1 "$lode" query "$work/nope" x

# A second writer is refused while the first holds the store.
exec 9>"$store/.lodefs.lock"
flock -x 9
ok "a second writer is refused while the store is in use" \
	sh -c "'$lode' add '$store' '$work/in/sub/light.md' 2>&1 | grep -q 'in use'"
flock -u 9
exec 9>&-

# ---- import and export: LlamaIndex persist directories ----------------------

skip() { # skip DESCRIPTION REASON: a test point that could not run here
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

# same_files A B: every file of A is in B, byte for byte (says which not).
same_files() {
	local f rc=0
	for f in "$1"/*; do
		cmp "$f" "$2/$(basename "$f")" || rc=1
	done
	return $rc
}

# canon DIR OUT: OUT/f = json.dumps(json.loads(DIR/f)), Python's spelling.
canon() {
	mkdir -p "$2" &&
		python3 -c 'import json, os, sys
for n in os.listdir(sys.argv[1]):
    t = open(os.path.join(sys.argv[1], n), encoding="utf-8").read()
    open(os.path.join(sys.argv[2], n), "w").write(json.dumps(json.loads(t)))' "$1" "$2"
}

# save NAME: keeps the last command's stdout and stderr as NAME.out, .err
# (the next ok or no overwrites out and err).
save() { cp "$work/out" "$work/$1.out" && cp "$work/err" "$work/$1.err"; }

# no_temp DIR: export left no temporary file behind.
no_temp() { [ -z "$(find "$1" -name '.*.lode-*')" ]; }

# export_same STORE OUT REF: export STORE to OUT; OUT has REF's files.
export_same() { "$lode" export -q "$1" "$2" && same_files "$3" "$2"; }

# export_has STORE OUT NAME FILE: export STORE; OUT/NAME is FILE.
export_has() { "$lode" export -q "$1" "$2" && cmp "$4" "$2/$3"; }

# export_as_python STORE OUT SRC: export STORE; every file of SRC comes
# out as Python writes it after loading it.
export_as_python() {
	"$lode" export -q "$1" "$2" && canon "$3" "$2.py" && same_files "$2.py" "$2"
}

# tty_lines FILE N: N progress lines, each drawn after a \r and ended by
# a newline, in what a terminal received.
tty_lines() {
	[ "$(grep -ac $'\r[^\r]*MB/s\r\\?$' "$1")" -eq "$2" ]
}

fixtures=${LODEFS_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/../shared}/fixtures
if [ -d "$fixtures/py_persist" ]; then
	i=0
	for fx in py_persist py_persist_single py_persist_v0_10 \
		realworld/23Mariya__QA-with-Documents; do
		i=$((i + 1))
		ps=$work/ps$i
		ok "import $fx into a fresh store" \
			"$lode" import "$ps" "$fixtures/$fx"
		ok "export it again" "$lode" export "$ps" "$work/ex$i"
		ok "$fx: every file exported byte for byte as it was" \
			same_files "$fixtures/$fx" "$work/ex$i"
		ok "$fx: default__ and image__vector_store.json are always there" \
			test -f "$work/ex$i/default__vector_store.json" -a \
			-f "$work/ex$i/image__vector_store.json"
		ok "$fx: export leaves no temporary file" no_temp "$work/ex$i"
	done

	ok "an import ends with a checkpoint: no log segment is left" \
		sh -c "'$lode' stats '$work/ps1' --json | python3 -c 'import json, sys
e = json.load(sys.stdin)[\"engine\"]
assert e[\"segments\"] == 0 and e[\"checkpoint_bytes\"] > 0, e'"
	ok "and a query answers from it" \
		sh -c "'$lode' query '$work/ps1' 'apples orchards' -k 1 | grep -q 'Apples grow'"

	# Upstream files, some pretty-printed: what comes out is what Python
	# writes after loading them.
	i=0
	while read -r d; do
		i=$((i + 1))
		rel=${d#"$fixtures"/}
		ok "import upstream $rel" "$lode" import "$work/up$i" "$d"
		ok "upstream $rel: exported as json.dumps(json.loads(file))" \
			export_as_python "$work/up$i" "$work/upx$i" "$d"
	done < <(find "$fixtures/upstream" -name '*.json' -printf '%h\n' | sort -u)

	# The layout before namespaces: vector_store.json is the default.
	mkdir -p "$work/legacy"
	cp --no-preserve=mode "$fixtures/py_persist/"*.json "$work/legacy/"
	mv "$work/legacy/default__vector_store.json" "$work/legacy/vector_store.json"
	ok "a legacy vector_store.json is imported" \
		"$lode" import "$work/lg" "$work/legacy"
	ok "as the default namespace" \
		export_has "$work/lg" "$work/lgx" default__vector_store.json \
		"$fixtures/py_persist/default__vector_store.json"
	ok "and no vector_store.json comes out" test ! -e "$work/lgx/vector_store.json"
	cp --no-preserve=mode "$fixtures/py_persist/default__vector_store.json" "$work/legacy/"
	printf '{"embedding_dict": {}, "text_id_to_ref_doc_id": {}, "metadata_dict": {}}' \
		>"$work/legacy/vector_store.json"
	printf 'a note beside the persist files\n' >"$work/legacy/notes.txt"
	ok "with default__vector_store.json too, both are accepted" \
		"$lode" import "$work/lg2" "$work/legacy"
	save lg2
	ok "and vector_store.json is listed as skipped" \
		grep -q 'skipped vector_store.json' "$work/lg2.err"
	ok "an unknown file is listed as skipped on stderr" \
		grep -q 'skipped notes.txt' "$work/lg2.err"
	ok "the namespaced one is the one imported" \
		export_has "$work/lg2" "$work/lg2x" default__vector_store.json \
		"$fixtures/py_persist/default__vector_store.json"

	# Progress goes to a terminal only.
	ok "import: nothing on stderr when it is not a terminal" \
		"$lode" import "$work/np" "$fixtures/py_persist"
	save np
	ok "(so: no progress)" test ! -s "$work/np.err"
	ok "the summary goes to stdout" grep -q '^5 files imported' "$work/np.out"
	ok "export: nothing on stderr when it is not a terminal" \
		"$lode" export "$work/np" "$work/npx"
	save npx
	ok "(so: no progress)" test ! -s "$work/npx.err"
	ok "the summary goes to stdout" grep -q '^5 files exported' "$work/npx.out"
	if command -v script >/dev/null 2>&1; then
		script -qec "'$lode' import '$work/tty' '$fixtures/py_persist'" \
			/dev/null >"$work/tty.out" 2>&1
		ok "a terminal shows a progress line per file (name, %, MB, MB/s)" \
			grep -aq 'docstore.json .*100% .*MB .*MB/s' "$work/tty.out"
		ok "and one for the check of the files after the first" \
			grep -aq '(checking JSON) .*100% .*MB/s' "$work/tty.out"
		ok "drawn after a carriage return, ended by a newline: 6 lines" \
			tty_lines "$work/tty.out" 6
		script -qec "'$lode' export '$work/tty' '$work/ttyx'" \
			/dev/null >"$work/ttyx.out" 2>&1
		ok "export shows it too" \
			grep -aq 'image__vector_store.json .*100% .*MB/s' "$work/ttyx.out"
	else
		skip "a terminal shows a progress line per file" "script(1) is missing"
		skip "redrawn with carriage returns, ended by a newline" "script(1) is missing"
		skip "export shows it too" "script(1) is missing"
	fi

	# A refused file: invalid JSON anywhere, and nothing is imported.
	rs=$work/rs
	"$lode" import -q "$rs" "$fixtures/py_persist"
	"$lode" export -q "$rs" "$work/rs.before"
	mkdir -p "$work/bad"
	cp --no-preserve=mode "$fixtures/py_persist_single/"*.json "$work/bad/"
	head -c 2000 "$fixtures/py_persist/default__vector_store.json" \
		>"$work/bad/default__vector_store.json"
	ok "a directory with a malformed file is refused (1)" \
		status_is 1 "$lode" import "$rs" "$work/bad"
	save bad
	ok "the message names the file and says it is not valid JSON" \
		grep -q 'bad/default__vector_store.json: not valid JSON' "$work/bad.err"
	ok "and that nothing was imported" \
		grep -q 'nothing was imported' "$work/bad.err"
	ok "the store is as it was (its export is the same)" \
		export_same "$rs" "$work/rs.after" "$work/rs.before"

	# The largest file is imported first, not checked beforehand: the
	# core refuses it whole.
	mkdir -p "$work/bad1"
	cp --no-preserve=mode "$fixtures/py_persist_single/"*.json "$work/bad1/"
	head -c 9000 "$fixtures/py_persist_single/docstore.json" \
		>"$work/bad1/docstore.json"
	ok "a malformed docstore.json, the largest file, is refused (1)" \
		status_is 1 "$lode" import "$rs" "$work/bad1"
	save bad1
	ok "the message names it" grep -q 'bad1/docstore.json: ' "$work/bad1.err"
	ok "it was refused by the import itself, not by the check" \
		sh -c "! grep -q 'not valid JSON' '$work/bad1.err'"
	ok "and says that nothing was imported" \
		grep -q 'nothing was imported' "$work/bad1.err"
	ok "the store is as it was" \
		export_same "$rs" "$work/rs.after1" "$work/rs.before"
	printf '{"docstore/data": {"x": ' >"$work/bad1/docstore.json"
	ok "a malformed docstore.json that is not the largest is refused (1)" \
		status_is 1 "$lode" import "$rs" "$work/bad1"
	save bad1b
	ok "by the check, before anything is imported" \
		grep -q 'bad1/docstore.json: not valid JSON' "$work/bad1b.err"
	ok "the store is as it was" \
		export_same "$rs" "$work/rs.after1b" "$work/rs.before"
	cp --no-preserve=mode "$fixtures/py_persist/docstore.json" "$work/bad1/"
	printf ' \n' >"$work/bad1/graph_store.json"
	ok "a file of blanks is not JSON either (1)" \
		status_is 1 "$lode" import "$rs" "$work/bad1"
	save blank
	ok "it is named" grep -q 'bad1/graph_store.json: not valid JSON' "$work/blank.err"
	: >"$work/bad1/graph_store.json"
	ok "nor is an empty file (1)" status_is 1 "$lode" import "$rs" "$work/bad1"
	ok "the store is still as it was" \
		export_same "$rs" "$work/rs.after2" "$work/rs.before"

	# A file of the wrong shape is refused by the core at its turn: the
	# files imported before it stay, and are named.
	mkdir -p "$work/shape"
	cp --no-preserve=mode "$fixtures/py_persist/docstore.json" "$work/shape/"
	printf '[1, 2, 3]' >"$work/shape/index_store.json"
	ok "a file of the wrong shape is refused (1)" \
		status_is 1 "$lode" import "$work/sh" "$work/shape"
	save shape
	ok "the message names it" grep -q 'shape/index_store.json: ' "$work/shape.err"
	ok "and the file imported before it, which is kept" \
		grep -q 'imported before it, and kept: docstore.json' "$work/shape.err"

	# A store in use (mounted) is refused, and left alone.
	exec 9>"$rs/.lodefs.lock"
	flock -x 9
	ok "import into a store in use is refused (1)" \
		status_is 1 "$lode" import "$rs" "$fixtures/py_persist_single"
	save inuse
	ok "saying it is in use" grep -q 'in use' "$work/inuse.err"
	ok "export of a store in use works (it only reads)" \
		"$lode" export "$rs" "$work/rs.inuse"
	flock -u 9
	exec 9>&-
	ok "the store refused while in use is unchanged" \
		same_files "$work/rs.before" "$work/rs.inuse"

	# Export over an earlier export: replaced, other files left alone.
	cp -r "$work/rs.before" "$work/rs.again"
	printf 'stale' >"$work/rs.again/docstore.json"
	echo keep >"$work/rs.again/mine.txt"
	ok "export into a directory that has files replaces its own" \
		export_same "$rs" "$work/rs.again" "$work/rs.before"
	ok "and leaves the others alone" grep -qx keep "$work/rs.again/mine.txt"
	ok "and no temporary file" no_temp "$work/rs.again"
	ok "export makes missing parent directories" \
		"$lode" export "$rs" "$work/deep/er/dir"
	ok "the files get 0666 less the umask, as Python's open() gives" \
		sh -c "umask 027 && '$lode' export -q '$rs' '$work/modes' &&
			test \"\$(stat -c %a '$work/modes/docstore.json')\" = 640"
	printf 'not a directory' >"$work/afile"
	ok "export to a path that is a file fails (1)" \
		status_is 1 "$lode" export "$rs" "$work/afile"

	# A vector store file whose namespace is not valid refuses the
	# directory before anything is imported.
	mkdir -p "$work/badns"
	cp --no-preserve=mode "$fixtures/py_persist_single/"*.json "$work/badns/"
	cp "$work/badns/image__vector_store.json" "$work/badns/__vector_store.json"
	ok "a file named __vector_store.json (empty namespace) is refused (1)" \
		status_is 1 "$lode" import "$rs" "$work/badns"
	save badns
	ok "the message says why" \
		grep -q '__vector_store.json: not a valid vector store namespace' "$work/badns.err"
	ok "the store is as it was" \
		export_same "$rs" "$work/rs.after3" "$work/rs.before"
else
	skip "import and export of the fixtures" "no $fixtures"
fi

# What lode add stored exports as Python would write it.
ok "export of a store made by lode add" "$lode" export "$store" "$work/addx"
ok "its files are json.dumps(json.loads(file))" \
	export_as_python "$store" "$work/addx2" "$work/addx"

# Export where it cannot write: exit 1, no file, no temporary file.
mkdir -p "$work/ro"
if [ "$(id -u)" -ne 0 ]; then
	chmod 0555 "$work/ro"
	ro_ok=1
else
	chattr +i "$work/ro" 2>/dev/null && ro_ok=1 || ro_ok=0
fi
if [ "$ro_ok" = 1 ]; then
	ok "export into an unwritable directory fails (1)" \
		status_is 1 "$lode" export "$store" "$work/ro"
	save ro
	ok "saying why" \
		grep -q 'ro: Permission denied\|ro: Operation not permitted' "$work/ro.err"
	ok "and leaves nothing there" test -z "$(ls -A "$work/ro")"
	chattr -i "$work/ro" 2>/dev/null
	chmod 0755 "$work/ro"
else
	skip "export into an unwritable directory fails" "chattr +i refused here"
	skip "saying why" "chattr +i refused here"
	skip "and leaves nothing there" "chattr +i refused here"
fi
# A disk that fills up in the middle: nothing half-written, nothing renamed.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 &&
	[ -d "$fixtures/py_persist" ] &&
	unshare -m sh -c "mount -t tmpfs -o size=16k none '$work/ro'" 2>/dev/null; then
	unshare -m sh -c "mount -t tmpfs -o size=16k none '$work/ro' &&
		{ '$lode' export '$work/ps1' '$work/ro/out'; echo \$? >'$work/full.rc'; } &&
		ls -A '$work/ro/out' >'$work/full.ls'" 2>"$work/full.err"
	ok "export onto a full disk fails (1)" grep -qx 1 "$work/full.rc"
	cp "$work/err" "$work/why"
ok "saying so" grep -q 'No space left on device' "$work/full.err"
	ok "and leaves no file, not even the complete ones" test ! -s "$work/full.ls"
else
	skip "export onto a full disk fails" "needs root, unshare and tmpfs"
	skip "saying so" "needs root, unshare and tmpfs"
	skip "and leaves no file, not even the complete ones" "needs root, unshare and tmpfs"
fi

ok "import without a directory is a usage error (2)" status_is 2 "$lode" import "$work/u"
ok "export without a directory is a usage error (2)" status_is 2 "$lode" export "$store"
ok "import of a missing directory fails (1)" status_is 1 "$lode" import "$work/u" "$work/nope"
mkdir -p "$work/empty"
ok "import of a directory without persist files fails (1)" \
	status_is 1 "$lode" import "$work/u" "$work/empty"
ok "export of a missing store fails (1)" status_is 1 "$lode" export "$work/nope" "$work/u"

# The same on an s3:// store (s3rver on 127.0.0.1, when it can be started).
# Only where s3rver is installed already (tests/s3/s3rver.sh install, which
# the S3 suites run): installing it here could wait long on a network.
if [ -d "$fixtures/py_persist" ] && command -v node >/dev/null 2>&1 &&
	[ -f "$(dirname "$s3rver")/node_modules/s3rver/bin/s3rver.js" ] &&
	out=$("$s3rver" start "$work/s3" lodefs-test 2>/dev/null); then
	port=${out%% *}
	s3env=(env -u AWS_SESSION_TOKEN -u AWS_PROFILE AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER
		AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1
		AWS_SHARED_CREDENTIALS_FILE="$work/none" AWS_CONFIG_FILE="$work/none"
		XDG_CACHE_HOME="$work/s3cache")
	ok "import into an s3:// store" \
		"${s3env[@]}" "$lode" import s3://lodefs-test/p "$fixtures/py_persist"
	ok "export of the s3:// store" \
		"${s3env[@]}" "$lode" export s3://lodefs-test/p "$work/s3x"
	ok "byte for byte as the files imported" \
		same_files "$fixtures/py_persist" "$work/s3x"
	ok "a malformed file is refused on s3:// too (1)" \
		status_is 1 "${s3env[@]}" "$lode" import s3://lodefs-test/p "$work/bad"
	ok "and the s3:// store is as it was" \
		"${s3env[@]}" "$lode" export s3://lodefs-test/p "$work/s3y"
	ok "(its export is the same)" same_files "$work/s3x" "$work/s3y"
	"$s3rver" stop "$work/s3"
else
	for d in "import into an s3:// store" "export of the s3:// store" \
		"byte for byte as the files imported" \
		"a malformed file is refused on s3:// too (1)" \
		"and the s3:// store is as it was" "(its export is the same)"; do
		skip "$d" "s3rver is not installed or does not start"
	done
fi

# ---- import-vectors and search: TexMex .fvecs files -------------------------

# fvecs FILE ROWS DIM SEED [BADROW BADDIM]: random rows (python3's struct,
# no numpy); BADROW gets dimension field BADDIM (its floats stay DIM).
fvecs() {
	python3 - "$@" <<'PY'
import random, struct, sys
path, rows, dim, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
bad = int(sys.argv[5]) if len(sys.argv) > 5 else -1
baddim = int(sys.argv[6]) if len(sys.argv) > 6 else dim
r = random.Random(seed)
with open(path, "wb") as f:
    for i in range(rows):
        f.write(struct.pack("<i", baddim if i == bad else dim))
        f.write(struct.pack("<%df" % dim, *[r.uniform(-1, 1) for _ in range(dim)]))
PY
}

# want_topk BASE QUERIES K [IDS]: the exact cosine top-k in double, ties to
# the larger id (SimpleVectorStore's heap), one line per query.
want_topk() {
	python3 - "$@" <<'PY'
import math, struct, sys
def read(p):
    b = open(p, "rb").read(); out = []; o = 0
    while o < len(b):
        d = struct.unpack_from("<i", b, o)[0]
        out.append(struct.unpack_from("<%df" % d, b, o + 4)); o += 4 + 4 * d
    return out
base, queries, k = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
ids = open(sys.argv[4]).read().split("\n")[:len(base)] if len(sys.argv) > 4 else ["v%d" % i for i in range(len(base))]
for q in queries:
    qq = math.sqrt(sum(x * x for x in q))
    s = []
    for i, r in enumerate(base):
        rr = math.sqrt(sum(x * x for x in r))
        s.append((sum(a * b for a, b in zip(q, r)) / (qq * rr), ids[i]))
    s.sort(reverse=True)
    print(" ".join(i for _, i in s[:k]))
PY
}

vs=$work/vstore
fvecs "$work/base.fvecs" 500 24 1
fvecs "$work/q.fvecs" 20 24 2
ok "import-vectors of a 500 x 24 file" \
	sh -c "'$lode' import-vectors '$vs' emb '$work/base.fvecs' | grep -q '^500 vectors of 24 dimensions'"
ok "the rows read back exactly (v7 = row 7)" \
	sh -c "'$lode' get '$vs' v7 --vector emb >'$work/v7' &&
		python3 -c 'import struct,sys; b=open(\"$work/base.fvecs\",\"rb\").read(); o=7*(4+4*24)+4;
want=[float(\"%.9g\" % x) for x in struct.unpack_from(\"<24f\",b,o)];
got=[float(l) for l in open(\"$work/v7\")];
sys.exit(want!=got)'"
want_topk "$work/base.fvecs" "$work/q.fvecs" 10 >"$work/want10"
ok "search -k 10 gives the exact top 10 of every query, best first" \
	sh -c "'$lode' search '$vs' emb '$work/q.fvecs' -k 10 | cmp - '$work/want10'"
want_topk "$work/base.fvecs" "$work/q.fvecs" 1 >"$work/want1"
ok "search -k 1" sh -c "'$lode' search '$vs' emb '$work/q.fvecs' -k 1 | cmp - '$work/want1'"
ok "a row searched for finds itself first with score 1" \
	sh -c "python3 -c 'import sys; b=open(\"$work/base.fvecs\",\"rb\").read(); r=4+4*24; sys.stdout.buffer.write(b[42*r:43*r])' >'$work/self.fvecs' &&
		'$lode' search '$vs' emb '$work/self.fvecs' -k 2 --scores | grep -q '^v42:1 '"

awk 'BEGIN { for (i = 0; i < 500; i++) printf "doc-%03d\n", 499 - i }' >"$work/ids"
ok "import-vectors --ids names the rows" \
	"$lode" import-vectors "$vs" named "$work/base.fvecs" --ids "$work/ids" -q
want_topk "$work/base.fvecs" "$work/q.fvecs" 5 "$work/ids" >"$work/want5"
ok "and search reports those ids" \
	sh -c "'$lode' search '$vs' named '$work/q.fvecs' -k 5 | cmp - '$work/want5'"

# Refusals: nothing is imported, the namespace is as it was.
"$lode" search "$vs" emb "$work/q.fvecs" -k 10 >"$work/before"
fvecs "$work/baddim.fvecs" 30 24 3 17 25
ok "a row of another dimension is refused (1)" \
	status_is 1 "$lode" import-vectors "$vs" emb "$work/baddim.fvecs"
cp "$work/err" "$work/why"
ok "naming the row" grep -q 'row 17 .*dimension 25, row 0 has 24' "$work/why"
fvecs "$work/trunc.fvecs" 30 24 4
truncate -s -5 "$work/trunc.fvecs"
ok "a truncated file is refused (1)" \
	status_is 1 "$lode" import-vectors "$vs" emb "$work/trunc.fvecs"
cp "$work/err" "$work/why"
ok "saying so" grep -q 'truncated: row 29' "$work/why"
head -n 499 "$work/ids" >"$work/ids499"
ok "an id count that differs from the row count is refused (1)" \
	status_is 1 "$lode" import-vectors "$vs" emb2 "$work/base.fvecs" --ids "$work/ids499"
cp "$work/err" "$work/why"
ok "saying both counts" grep -q '499 ids for the 500 rows' "$work/why"
fvecs "$work/d16.fvecs" 10 16 5
ok "a dimension other than the namespace's is refused (1)" \
	status_is 1 "$lode" import-vectors "$vs" emb "$work/d16.fvecs"
cp "$work/err" "$work/why"
ok "naming both dimensions" grep -q 'namespace emb holds 24' "$work/why"
python3 -c "import struct; open('$work/nan.fvecs','wb').write(struct.pack('<i3f',3,1,float('nan'),0))"
ok "a NaN value is refused (1)" \
	status_is 1 "$lode" import-vectors "$vs" emb3 "$work/nan.fvecs"
cp "$work/err" "$work/why"
ok "saying which value" grep -q 'row 0: value 1 is not a finite number' "$work/why"
ok "every refusal says nothing was imported" grep -q 'nothing was imported' "$work/why"
ok "after the refusals the namespace answers as before" \
	sh -c "'$lode' search '$vs' emb '$work/q.fvecs' -k 10 | cmp - '$work/before'"
ok "and the refused namespaces do not exist" \
	sh -c "! '$lode' search '$vs' emb2 '$work/q.fvecs' 2>&1 && ! '$lode' search '$vs' emb3 '$work/q.fvecs'"
ok "search with queries of another dimension fails (1)" \
	status_is 1 "$lode" search "$vs" emb "$work/d16.fvecs"
ok "search -k 0 is a usage error (2)" status_is 2 "$lode" search "$vs" emb "$work/q.fvecs" -k 0
ok "importing again over the same ids replaces those vectors only" \
	sh -c "'$lode' import-vectors '$vs' emb '$work/q.fvecs' -q &&
		'$lode' search '$vs' emb '$work/q.fvecs' -k 1 --scores | head -n 1 | grep -qx 'v0:1' &&
		'$lode' search '$vs' emb '$work/self.fvecs' -k 1 | grep -qx v42"
ok "fsck after the vector imports exits 0" "$lode" fsck "$vs"

# Damage: flip bytes in the middle of the checkpoint's kv object.
"$lode" add "$store" "$work/in/otters.txt" --base "$work/in" -q
victim=$(find "$store" -type f -path '*ckpt*' -name 'kv*' | head -n 1)
if [ -n "$victim" ]; then
	size=$(stat -c %s "$victim")
	printf 'XY' | dd of="$victim" bs=1 seek=$((size / 2)) conv=notrunc status=none
fi
ok "the test found a checkpoint to damage" test -n "$victim"
ok "fsck of a damaged store exits 1" status_is 1 "$lode" fsck "$store"
ok "fsck names the damaged object" \
	sh -c "'$lode' fsck '$store' | grep -q ckpt"
ok "opening a damaged store says to run lode fsck" \
	sh -c "'$lode' query '$store' otters 2>&1 | grep -q 'lode fsck'"

echo "1..$n"
[ "$failed" -eq 0 ]

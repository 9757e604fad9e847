#!/usr/bin/env bash
# test_lode.sh - the lode command end to end, as a user runs it (TAP).
set -u
lode=${1:?usage: test_lode.sh PATH/TO/lode}
work=$(mktemp -d /tmp/lodefs-lode-XXXXXX)
trap 'rm -rf "$work"' EXIT
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

for cmd in add query get rm stats compact fsck; do
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

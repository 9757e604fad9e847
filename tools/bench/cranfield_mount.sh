#!/usr/bin/env bash
# cranfield_mount.sh - Cranfield retrieval quality through a lodefs mount.
#
# usage: tools/bench/cranfield_mount.sh [LODEFS] [-o OPTS] [-- ARGS...]
#
# Mounts a fresh store (in a temporary directory) with LODEFS (default: the
# newest build*/fs/lodefs of the checkout) and the mount options OPTS (none
# by default: the defaults are what is measured), then runs
# cranfield_mount.py on it (with /usr/bin/python3): the 1,400 documents
# written to docs/cran/, one JSON request per query with the full query
# text, binary nDCG@10 and recall@100 printed.  ARGS go to the script
# (--mode M, --alpha A, --per-query FILE; see its usage).  The collection
# is $LODEFS_SHARED/fixtures/cranfield (default ../shared next to the
# checkout).  Needs /dev/fuse (root or a fuse group).
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tools/bench/benchlib.sh"

given=
opts=
while [ $# -gt 0 ]; do
	case $1 in
	-o) opts=$2; shift 2 ;;
	--) shift; break ;;
	*) given=$1; shift ;;
	esac
done
lodefs=$(bench_binary cranfield_mount.sh fs/lodefs "$given")
export LODEFS_SHARED=${LODEFS_SHARED:-$root/../shared}
dir=$(mktemp -d "${TMPDIR:-/tmp}/lodefs-cran.XXXXXX")
mkdir "$dir/mnt"
cleanup() {
	fusermount3 -u "$dir/mnt" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
if [ -n "$opts" ]; then
	"$lodefs" -o "$opts" "$dir/store" "$dir/mnt"
else
	"$lodefs" "$dir/store" "$dir/mnt"
fi
echo "lodefs $lodefs${opts:+ -o $opts}"
/usr/bin/python3 "$root/tools/bench/cranfield_mount.py" "$dir/mnt" "$@"

#!/usr/bin/env bash
# corpus.sh - the benchmarks' deterministic text corpus.
#
# usage: tools/bench/corpus.sh N DIR
#
# Writes N files (DIR/dNN/fNNNNN.txt, 100 folders) of about 2 KB of
# pseudo-English (a fixed word list, a fixed seed; sentences of 6-16 words,
# paragraphs of 2-5 sentences, 1.7-2.5 KB per file, mean ~2,034 bytes),
# after removing DIR.  Used by ingest.sh and s3_ingest.sh.
# Park-Miller (16807, 2^31-1) is exact in awk's doubles, so mawk and gawk
# write the same bytes.
set -euo pipefail
[ $# -eq 2 ] || { sed -n 4p "$0" | sed 's/^# //' >&2; exit 2; }
files=$1
src=$2
rm -rf -- "$src"
mkdir -p "$src"
awk -v n="$files" -v out="$src" '
BEGIN {
	nw = split("the of and to in a is that for it as was with be by " \
	"on not he this are or his from at which but have an had they " \
	"you were their one all we can her has there been if more when " \
	"will would who so no river mountain valley harvest ancient city " \
	"market winter summer garden orchard apple farmer bridge tower " \
	"engine storage memory signal window library letter record season " \
	"village harbour ship voyage island forest stone metal copper " \
	"silver bread water fire light shadow music painter teacher " \
	"student question answer number measure weight distance journey " \
	"road station railway machine factory worker merchant coin price " \
	"trade law court king queen council church school doctor fever " \
	"medicine plant seed flower leaf root branch bird horse sheep wool " \
	"cloth thread needle kitchen table chair door roof wall floor " \
	"candle lamp clock hour morning evening night moon star planet " \
	"ocean wave storm rain snow wind cloud north south east west " \
	"large small old new early late quiet bright dark heavy careful " \
	"simple strange common rare quick slow grow build carry write " \
	"read count travel follow discover explain remember repair gather " \
	"divide observe describe compare produce store open close between " \
	"under over through after before during without across", w, " ")
	seed = 20240601
	for (d = 0; d < 100 && d < n; d++)
		system("mkdir -p " out "/d" sprintf("%02d", d))
	for (f = 0; f < n; f++) {
		path = sprintf("%s/d%02d/f%05d.txt", out, f % 100, f)
		target = 1700 + rnd(401)
		text = ""
		while (length(text) < target) {
			para = ""
			ns = 2 + rnd(4)
			for (s = 0; s < ns; s++) {
				sent = ""
				nwords = 6 + rnd(11)
				for (i = 0; i < nwords; i++) {
					word = w[1 + rnd(nw)]
					if (i == 0)
						word = toupper(substr(word, 1, 1)) substr(word, 2)
					else
						sent = sent (rnd(12) == 0 ? ", " : " ")
					sent = sent word
				}
				para = para (s ? " " : "") sent "."
			}
			text = text (text == "" ? "" : "\n\n") para
		}
		printf "%s\n", text > path
		close(path)
	}
}
function rnd(k) {
	seed = (seed * 16807) % 2147483647
	return seed % k
}'

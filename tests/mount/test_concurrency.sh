#!/usr/bin/env bash
# test_concurrency.sh - 8 writers and 8 query readers at once: nothing lost, every closed document found (TAP).
#
# Usage: test_concurrency.sh PATH/TO/lodefs   (or $LODEFS); needs /usr/bin/python3.
#   LODEFS_CONC_SECONDS        how long the sync=close run lasts (default 30)
#   LODEFS_CONC_FSYNC_SECONDS  how long the sync=fsync run lasts (default a
#                              third of that, at least 3)
#
# Each writer process i writes new files docs/w<i>/f<n>.txt, each with a
# unique token (a made-up word) in its text, and appends "i n token" to its
# record file only after the file's close() returned.  Each reader process
# loops: reads the records written so far, picks a random one, and reads
# query/k=3/<token>, which must list docs/w<i>/f<n>.txt as a ref_doc_id with
# the token in the hit's text: the file was closed before the query began,
# so the query must reflect it (SPEC.md: "Results reflect every write whose
# close() has returned").  Readers also read recorded files back and
# .lodefs/stats while the writers run.  At the end: no process saw an error,
# every recorded file exists with exactly the bytes written and nothing else
# is there, .lodefs/stats counts exactly that many documents, and
# .lodefs/errors shows no failed commit; all of it again after a remount.
#
# Run twice:
# - sync=close (default): a reader checks every file once its close()
#   returned.
# - sync=fsync: close() only queues a file (durable "at fsync or within a
#   second"), so a writer fsync()s every other file (os.fsync, before
#   close) and readers check only those: a file counts as closed-before-the-
#   query there once fsync() and close() both returned.  The others must be
#   there at the end, and counted in .lodefs/stats within 3 s.
. "$(dirname "$0")/lib.sh" "$@"

need_lodefs
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no /usr/bin/python3"

SECONDS_CLOSE=${LODEFS_CONC_SECONDS:-30}
SECONDS_FSYNC=${LODEFS_CONC_FSYNC_SECONDS:-$((SECONDS_CLOSE / 3))}
[ "$SECONDS_FSYNC" -ge 3 ] || SECONDS_FSYNC=3
WRITERS=8
READERS=8

cat >"$T/conc.py" <<'PY'
"""Workers of test_concurrency.sh: writer, reader, verify."""
import json, os, random, sys, time

FILLER = [
    "Apples grow on trees in orchards across the valley.",
    "The lighthouse keeper climbs the stairs every evening.",
    "Rivers carry sediment from the mountains to the sea.",
    "A quiet library holds many thousands of old books.",
    "Bees visit flowers and carry pollen between them.",
    "Trains leave the station at a quarter past the hour.",
    "The recipe needs flour, butter, sugar and two eggs.",
    "Winter storms close the mountain pass for weeks.",
]


def letters(n):
    """n >= 0 as a word of letters a..p (no digits: one token, never split)."""
    s = ""
    while True:
        s = chr(ord("a") + n % 16) + s
        n //= 16
        if n == 0:
            return s


def token(seed, i, n):
    rnd = random.Random(f"tok {seed} {i} {n}")
    tail = "".join(rnd.choice("bcdfghjklmnprstvwxz") for _ in range(6))
    # fixed ends: no stemmer rule strips a trailing q, and "zx" starts no word
    return f"zx{letters(i)}y{letters(n)}{tail}q"


def content(seed, i, n):
    """The exact text of docs/w<i>/f<n>.txt: filler with the token inside."""
    rnd = random.Random(f"doc {seed} {i} {n}")
    # mostly small files; one in 16 large enough for several chunks
    count = rnd.randint(150, 400) if rnd.random() < 1 / 16 else rnd.randint(0, 12)
    sents = [rnd.choice(FILLER) for _ in range(count)]
    sents.insert(rnd.randint(0, len(sents)),
                 f"Writer {i} wrote file {n} with the token {token(seed, i, n)}.")
    return (" ".join(sents) + "\n").encode()


def rel(i, n):
    return f"w{i}/f{n}.txt"


class Records:
    """Reads the writers' record files incrementally, whole lines only."""

    def __init__(self, recdir, writers):
        self.paths = [os.path.join(recdir, f"w{i}.rec") for i in range(writers)]
        self.offs = [0] * writers
        self.items = []

    def refresh(self):
        for k, p in enumerate(self.paths):
            try:
                with open(p, "rb") as f:
                    f.seek(self.offs[k])
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            self.offs[k] += end
            for line in data[:end].decode().splitlines():
                i, n, synced, t_closed = line.split()
                self.items.append((int(i), int(n), synced == "1", float(t_closed)))
        return self.items


def writer(mnt, recdir, seed, i, seconds, mode):
    errors = 0
    d = os.path.join(mnt, "docs", f"w{i}")
    os.mkdir(d)
    rec = os.open(os.path.join(recdir, f"w{i}.rec"),
                  os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        data = content(seed, i, n)
        path = os.path.join(d, f"f{n}.txt")
        synced = mode == "close" or n % 2 == 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                # one, two or three write() calls
                cuts = sorted(random.Random(n).sample(range(len(data)), 2))
                for a, b in ((0, cuts[0]), (cuts[0], cuts[1]), (cuts[1], len(data))):
                    view = memoryview(data)[a:b]
                    while view:
                        view = view[os.write(fd, view):]
                if mode == "fsync" and synced:
                    os.fsync(fd)
            finally:
                os.close(fd)  # an error here (EIO) raises, too
        except OSError as e:
            errors += 1
            print(f"writer {i}: {rel(i, n)}: {e!r}", file=sys.stderr)
            if errors >= 20:
                break
            n += 1
            continue
        t_closed = time.monotonic()
        os.write(rec, f"{i} {n} {int(synced)} {t_closed:.6f}\n".encode())
        n += 1
    os.close(rec)
    print(json.dumps({"writer": i, "files": n, "errors": errors}))
    return 1 if errors else 0


def read_query(mnt, tok):
    path = os.path.join(mnt, "query", "k=3", tok)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError as e:
        size = os.stat(path).st_size
        raise ValueError(f"{e} in the {len(data)} bytes read (st_size now {size}), "
                         f"ending {data[-60:]!r}") from None


def reader(mnt, recdir, seed, j, seconds, writers):
    rnd = random.Random(f"reader {seed} {j}")
    recs = Records(recdir, writers)
    errors = misses = queries = rereads = stats_reads = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        items = [r for r in recs.refresh() if r[2]]
        if not items:
            time.sleep(0.01)
            continue
        # the newest records half of the time: the hardest case
        i, n, _, t_closed = (rnd.choice(items[-16:]) if rnd.random() < 0.5
                             else rnd.choice(items))
        tok = token(seed, i, n)
        want = rel(i, n)
        t_query = time.monotonic()  # after the record was read: after close
        try:
            res = read_query(mnt, tok)
            queries += 1
            nodes = res["nodes"]
            for nd in nodes:
                for key in ("rank", "score", "node_id", "ref_doc_id", "text", "metadata"):
                    if key not in nd:
                        raise ValueError(f"hit without {key}: {nd}")
            if not any(nd["ref_doc_id"] == want and tok in nd["text"] for nd in nodes):
                misses += 1
                if misses <= 10:
                    print(f"reader {j}: query/k=3/{tok} misses {want}, closed "
                          f"{(t_query - t_closed) * 1000:.1f} ms before the query "
                          f"began; ref_doc_ids: {[nd['ref_doc_id'] for nd in nodes]}",
                          file=sys.stderr)
        except (OSError, ValueError, KeyError, TypeError) as e:
            errors += 1
            print(f"reader {j}: query/k=3/{tok} ({want}): {e!r}", file=sys.stderr)
        r = rnd.random()
        try:
            if r < 0.25:
                rereads += 1
                with open(os.path.join(mnt, "docs", want), "rb") as f:
                    got = f.read()
                if got != content(seed, i, n):
                    errors += 1
                    print(f"reader {j}: docs/{want} reads back {len(got)} bytes, "
                          f"not the {len(content(seed, i, n))} written", file=sys.stderr)
            elif r < 0.30:
                stats_reads += 1
                with open(os.path.join(mnt, ".lodefs", "stats"), "rb") as f:
                    json.loads(f.read())
        except (OSError, ValueError) as e:
            errors += 1
            print(f"reader {j}: {e!r}", file=sys.stderr)
        if errors >= 20:
            break
    print(json.dumps({"reader": j, "queries": queries, "misses": misses,
                      "errors": errors, "rereads": rereads, "stats": stats_reads}))
    return 1 if errors or misses or not queries else 0


def verify(mnt, recdir, seed, writers):
    """Prints the number of recorded files; problems on stderr, exit 1."""
    recs = Records(recdir, writers).refresh()
    bad = 0
    want = {}
    for i, n, _, _ in recs:
        want.setdefault(i, set()).add(f"f{n}.txt")
        p = os.path.join(mnt, "docs", rel(i, n))
        try:
            with open(p, "rb") as f:
                got = f.read()
        except OSError as e:
            bad += 1
            if bad <= 10:
                print(f"docs/{rel(i, n)}: {e!r}", file=sys.stderr)
            continue
        if got != content(seed, i, n):
            bad += 1
            if bad <= 10:
                print(f"docs/{rel(i, n)}: {len(got)} bytes, not the "
                      f"{len(content(seed, i, n))} written", file=sys.stderr)
    top = sorted(os.listdir(os.path.join(mnt, "docs")))
    if top != sorted(f"w{i}" for i in range(writers)):
        bad += 1
        print(f"docs/ holds {top[:20]}", file=sys.stderr)
    for i in range(writers):
        try:
            names = set(os.listdir(os.path.join(mnt, "docs", f"w{i}")))
        except OSError as e:
            bad += 1
            print(f"docs/w{i}: {e!r}", file=sys.stderr)
            continue
        extra = names - want.get(i, set())
        lost = want.get(i, set()) - names
        if extra or lost:
            bad += 1
            print(f"docs/w{i}: not recorded: {sorted(extra)[:10]}; "
                  f"recorded, not listed: {sorted(lost)[:10]}", file=sys.stderr)
    print(len(recs))
    return 1 if bad else 0


if __name__ == "__main__":
    role, mnt, recdir, seed = sys.argv[1:5]
    a = sys.argv[5:]
    if role == "writer":
        sys.exit(writer(mnt, recdir, seed, int(a[0]), float(a[1]), a[2]))
    if role == "reader":
        sys.exit(reader(mnt, recdir, seed, int(a[0]), float(a[1]), int(a[2])))
    sys.exit(verify(mnt, recdir, seed, int(a[0])))
PY

# stat_documents: the "documents" count in MNT/.lodefs/stats.
stat_documents() {
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["documents"])' \
		"$mnt/.lodefs/stats" 2>&1
}

# documents_are N: .lodefs/stats counts N documents.
documents_are() { [ "$(stat_documents)" = "$1" ]; }

# run MODE SECONDS: one whole run on a fresh store mounted with -o sync=MODE.
run() {
	local mode=$1 secs=$2 src=$T/store-$1 mnt=$T/mnt-$1 rec=$T/rec-$1
	local seed=$RANDOM$RANDOM i rc failed written got what q m e b
	local -a pids=() roles=() logs=()
	what="sync=$mode"
	mkdir -p "$rec"
	lodefs_mount "$src" "$mnt" "sync=$mode"
	ok $? "$what: lodefs mounts $src" || return 1
	diag "$what: $WRITERS writers and $READERS readers for $secs s (seed $seed)"

	for ((i = 0; i < WRITERS; i++)); do
		"$PY" "$T/conc.py" writer "$mnt" "$rec" "$seed" "$i" "$secs" "$mode" \
			>"$rec/writer$i.out" 2>"$rec/writer$i.err" &
		pids+=($!) roles+=("writer $i") logs+=("$rec/writer$i")
	done
	for ((i = 0; i < READERS; i++)); do
		"$PY" "$T/conc.py" reader "$mnt" "$rec" "$seed" "$i" "$secs" "$WRITERS" \
			>"$rec/reader$i.out" 2>"$rec/reader$i.err" &
		pids+=($!) roles+=("reader $i") logs+=("$rec/reader$i")
	done
	declare -A failed_role=()
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}"
		rc=$?
		[ "$rc" -eq 0 ] || failed_role[${roles[$i]}]=$rc
	done

	# writers
	failed=0
	for ((i = 0; i < WRITERS; i++)); do
		[ -n "${failed_role[writer $i]:-}" ] && failed=1
	done
	written=$(cat "$rec"/writer*.out 2>/dev/null | "$PY" -c '
import json, sys
print(sum(json.loads(l)["files"] for l in sys.stdin if l.strip()))' 2>/dev/null)
	ok "$failed" "$what: $WRITERS writers wrote ${written:-?} files without an error" || {
		for ((i = 0; i < WRITERS; i++)); do
			[ -n "${failed_role[writer $i]:-}" ] || continue
			diag "writer $i exited ${failed_role[writer $i]}:"
			head -n 5 "$rec/writer$i.err" "$rec/writer$i.out" | diag
		done
	}

	# readers
	failed=0
	for ((i = 0; i < READERS; i++)); do
		[ -n "${failed_role[reader $i]:-}" ] && failed=1
	done
	got=$(cat "$rec"/reader*.out 2>/dev/null | "$PY" -c '
import json, sys
r = [json.loads(l) for l in sys.stdin if l.strip()]
print(sum(x["queries"] for x in r), sum(x["misses"] for x in r),
      sum(x["errors"] for x in r), sum(x["rereads"] for x in r))' 2>/dev/null)
	read -r q m e b <<<"$got"
	diag "$what: readers ran ${q:-?} queries (${m:-?} missed the file), read ${b:-?} files back, ${e:-?} errors"
	ok "$failed" "$what: $READERS readers: every query found its file, closed$([ "$mode" = fsync ] && echo " and fsync()ed") before the query began; no error" || {
		for ((i = 0; i < READERS; i++)); do
			[ -n "${failed_role[reader $i]:-}" ] || continue
			diag "reader $i exited ${failed_role[reader $i]}:"
			head -n 5 "$rec/reader$i.err" "$rec/reader$i.out" | diag
		done
	}

	# the end state
	check_end "$what" "$mnt" "$rec" "$seed" "$mode"

	lodefs_umount "$mnt"
	ok $? "$what: unmount: the daemon exits 0"
	lodefs_mount "$src" "$mnt" "sync=$mode"
	ok $? "$what: lodefs mounts the same store again" || return 1
	check_end "$what, after a remount" "$mnt" "$rec" "$seed" close
	lodefs_umount "$mnt"
	ok $? "$what: unmount again: the daemon exits 0"
}

# check_end WHAT MNT REC SEED MODE: the files, the count, the errors.
check_end() {
	local what=$1 mnt=$2 rec=$3 seed=$4 mode=$5 n out rc errs
	out=$("$PY" "$T/conc.py" verify "$mnt" "$rec" "$seed" "$WRITERS" 2>"$rec/verify.err")
	rc=$?
	n=$(printf '%s\n' "$out" | tail -n 1)
	ok "$rc" "$what: every recorded file ($n) is there with exactly its bytes, and nothing else" ||
		head -n 12 "$rec/verify.err" | diag
	if [ "$mode" = fsync ]; then
		# unsynced files: durable and counted "within a second"
		wait_for 3 documents_are "$n"
	fi
	is "$(stat_documents)" "$n" "$what: .lodefs/stats counts $n documents"
	errs=$(grep -i 'fail' "$mnt/.lodefs/errors" 2>&1)
	is "$errs" "" "$what: .lodefs/errors shows no failed commit"
}

run close "$SECONDS_CLOSE"
run fsync "$SECONDS_FSYNC"
done_testing

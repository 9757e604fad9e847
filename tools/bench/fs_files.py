#!/usr/bin/env python3
"""fs_files.py - the timed loops of fs_files.sh (one phase per call).

usage: fs_files.py PHASE ARGS...   (prints one line: "key value" pairs)

  small-create DIR N DURABLE   create+write+close N ~2 KB text files
                               DIR/fNNNNN.txt (O_CREAT|O_EXCL), then makes
                               them durable: DURABLE is
                                 close     nothing (durable at close)
                                 fsync     open+fsync+close of the last file
                                           (lodefs sync=fsync commits every
                                           pending file before answering)
                                 syncfs:D  syncfs(2) of directory D (the
                                           disk under the files)
  small-stat DIR N             os.stat of each file
  small-readdir DIR N          os.scandir of DIR, names only
  small-unlink DIR N           os.unlink of each file
  seq-write PATH MB DURABLE    MB MiB of random bytes in 1 MiB writes, then
                               close; then durable as above, or
                                 stats:MNT  poll MNT/.lodefs/stats until the
                                            commit of that file is done
  seq-read PATH                open, 1 MiB reads to EOF, close; also the
                               time to the end of the first read (lodefs
                               checks a value read from a checkpoint, or
                               a large one's first MiB, before its first
                               byte)

The data is made before the clock starts.  Every timing is
time.perf_counter() around the system calls only; the interpreter's
per-call overhead (~1 us) is the same for every target.
"""
import ctypes
import json
import os
import random
import sys
import time

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are "
    "or his from at which but have an had they you were their one all we can "
    "her has there been if more when will would who so no river mountain "
    "valley harvest ancient city market winter summer garden orchard apple "
    "farmer bridge tower engine storage memory signal window library letter "
    "record season village harbour ship voyage island forest stone metal "
    "copper silver bread water fire light shadow music painter teacher "
    "student question answer number measure weight distance journey road "
    "station railway machine factory worker merchant coin price trade law "
    "court king queen council church school doctor fever medicine plant "
    "seed flower leaf root branch bird horse sheep wool cloth thread needle "
    "kitchen table chair door roof wall floor candle lamp clock hour morning "
    "evening night moon star planet ocean wave storm rain snow wind cloud "
    "north south east west large small old new early late quiet bright dark "
    "heavy careful simple strange common rare quick slow grow build carry "
    "write read count travel follow discover explain remember repair gather "
    "divide observe describe compare produce store open close between under "
    "over through after before during without across").split()

CHUNK = 1 << 20


def texts(n, seed=20240601):
    """n deterministic ~2 KB (1.7-2.1 KB) pseudo-English texts, as bytes."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = 1700 + rng.randrange(401)
        paras = []
        size = 0
        while size < target:
            sents = []
            for _ in range(2 + rng.randrange(4)):
                words = [rng.choice(WORDS) for _ in range(6 + rng.randrange(11))]
                words[0] = words[0].capitalize()
                sents.append(" ".join(words) + ".")
            para = " ".join(sents)
            paras.append(para)
            size += len(para) + 2
        out.append(("\n\n".join(paras) + "\n").encode())
    return out


def name(d, i):
    return os.path.join(d, "f%05d.txt" % i)


libc = ctypes.CDLL(None, use_errno=True)


def syncfs(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs " + path)
    finally:
        os.close(fd)


def fsync_path(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lodefs_stats(mnt):
    with open(os.path.join(mnt, ".lodefs", "stats")) as f:
        return json.load(f)


def durable(how, last, stats_before=None):
    if how == "close":
        return
    if how == "fsync":
        fsync_path(last)
    elif how.startswith("syncfs:"):
        syncfs(how[len("syncfs:"):])
    elif how.startswith("stats:"):
        # One document closed after the `commits` of stats_before: durable
        # once a later commit happened and nothing is pending.  (Only
        # valid for a single pending document, as here.)
        mnt = how[len("stats:"):]
        c0 = stats_before["writes"]["commits"]
        while True:
            w = lodefs_stats(mnt)["writes"]
            if w["errors"] != stats_before["writes"]["errors"]:
                raise OSError("lodefs: commit error, see .lodefs/errors")
            if w["commits"] > c0 and w["pending_documents"] == 0:
                return
            time.sleep(0.002)
    else:
        raise SystemExit("fs_files.py: unknown durable mode " + how)


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def report(**kv):
    print(" ".join("%s %s" % (k, v) for k, v in kv.items()))


def lat_loop(paths, op):
    lat = []
    pc = time.perf_counter
    t0 = pc()
    for p in paths:
        a = pc()
        op(p)
        lat.append(pc() - a)
    t = pc() - t0
    return t, lat


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    phase, args = sys.argv[1], sys.argv[2:]
    pc = time.perf_counter
    if phase == "small-create":
        d, n, how = args[0], int(args[1]), args[2]
        data = texts(n)
        paths = [name(d, i) for i in range(n)]
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        lat = []
        t0 = pc()
        for p, b in zip(paths, data):
            a = pc()
            fd = os.open(p, flags, 0o644)
            if os.write(fd, b) != len(b):
                raise OSError("short write " + p)
            os.close(fd)
            lat.append(pc() - a)
        t1 = pc()
        durable(how, paths[-1])
        t2 = pc()
        report(secs=t1 - t0, durable_secs=t2 - t0, files=n,
               bytes=sum(map(len, data)), p50_us=pct(lat, 0.5) * 1e6,
               p99_us=pct(lat, 0.99) * 1e6)
    elif phase in ("small-stat", "small-unlink"):
        d, n = args[0], int(args[1])
        paths = [name(d, i) for i in range(n)]
        t, lat = lat_loop(paths, os.stat if phase == "small-stat"
                          else os.unlink)
        report(secs=t, files=n, p50_us=pct(lat, 0.5) * 1e6,
               p99_us=pct(lat, 0.99) * 1e6)
    elif phase == "small-readdir":
        d, n = args[0], int(args[1])
        t0 = pc()
        with os.scandir(d) as it:
            got = sum(1 for _ in it)
        t = pc() - t0
        if got != n:
            raise SystemExit("readdir of %s: %d entries, expected %d" %
                             (d, got, n))
        report(secs=t, files=got)
    elif phase == "seq-write":
        path, mb, how = args[0], int(args[1]), args[2]
        rng = random.Random(7)
        data = memoryview(b"".join(rng.randbytes(CHUNK) for _ in range(mb)))
        before = lodefs_stats(how[6:]) if how.startswith("stats:") else None
        t0 = pc()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC |
                     os.O_CLOEXEC, 0o644)
        for off in range(0, len(data), CHUNK):
            if os.write(fd, data[off:off + CHUNK]) != CHUNK:
                raise OSError("short write " + path)
        os.close(fd)
        t1 = pc()
        durable("fsync" if how == "reopen-fsync" else how, path, before)
        t2 = pc()
        report(secs=t1 - t0, durable_secs=t2 - t0, bytes=len(data))
    elif phase == "seq-read":
        path = args[0]
        buf = bytearray(CHUNK)
        total = 0
        first = None
        t0 = pc()
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        while True:
            k = os.readv(fd, [buf])
            if first is None:
                first = pc() - t0
            if not k:
                break
            total += k
        os.close(fd)
        t = pc() - t0
        report(secs=t, bytes=total, first_secs=first)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""What an HNSW graph build costs a mount of a large store.

  /usr/bin/python3 tools/bench/ann_open.py LODEFS STORE MNT [--dim 384]
      [--max-seconds 1800] [--every 5] [--opt ann_threshold=0] [--cold]

Mounts STORE (`LODEFS -f [-o OPT] STORE MNT`), times fork to the first
answer of a top-10 vector request under query/ (retried until the mount
answers), then every EVERY seconds prints the daemon's RSS and peak RSS
(VmRSS / VmHWM from /proc), its CPU seconds, the "ann" object of
.lodefs/stats (graph nodes, rows pending) and the time of one more
request, until the graph is complete (nothing pending) or MAX seconds.
With --cold the page cache is dropped first (needs root).  Unmounts at
the end.  For a store checkpointed without its graph (bench_open's
stores are), the default options make the mount build it in the
background; `--opt ann_threshold=0` shows the same mount without HNSW.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time


def status_kib(pid, key):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    with open(f'/proc/{pid}/stat') as f:
        s = f.read()
    fields = s[s.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def query(mnt, req):
    """One request file, written, read back and removed; seconds or None."""
    path = os.path.join(mnt, 'query', 'ann_open.json')
    t = time.perf_counter()
    try:
        with open(path, 'w') as f:
            f.write(req)
    except OSError:
        return None
    with open(path) as f:
        out = json.load(f)
    os.unlink(path)
    if 'ids' not in out:
        sys.exit(f'ann_open.py: no ids in {out}')
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('lodefs')
    ap.add_argument('store')
    ap.add_argument('mnt')
    ap.add_argument('--dim', type=int, default=384)
    ap.add_argument('--max-seconds', type=float, default=1800)
    ap.add_argument('--every', type=float, default=5)
    ap.add_argument('--opt', action='append', default=[])
    ap.add_argument('--cold', action='store_true')
    a = ap.parse_args()
    rng = random.Random(7)
    req = json.dumps({'query_embedding': [rng.gauss(0, 1)
                                          for _ in range(a.dim)],
                      'similarity_top_k': 10})
    os.makedirs(a.mnt, exist_ok=True)
    if a.cold:
        os.sync()
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
    cmd = [a.lodefs, '-f']
    for o in a.opt:
        cmd += ['-o', o]
    cmd += [a.store, a.mnt]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        while True:
            if p.poll() is not None:
                sys.exit('ann_open.py: lodefs exited')
            if os.path.ismount(a.mnt):
                q = query(a.mnt, req)
                if q is not None:
                    break
            time.sleep(0.002)
        first = time.perf_counter() - t0
        print(f'options {" ".join(a.opt) or "(defaults)"}: first answer '
              f'{first:.3f} s after the fork (that request {q:.3f} s); '
              f'daemon RSS {status_kib(p.pid, "VmRSS") / 1024:.0f} MB, '
              f'peak {status_kib(p.pid, "VmHWM") / 1024:.0f} MB, CPU '
              f'{cpu_s(p.pid):.1f} s', flush=True)
        while True:
            time.sleep(a.every)
            t = time.perf_counter() - t0
            with open(os.path.join(a.mnt, '.lodefs', 'stats')) as f:
                ann = json.load(f)['ann']
            q = query(a.mnt, req)
            print(f'  {t:7.1f} s  RSS {status_kib(p.pid, "VmRSS") / 1024:6.0f}'
                  f' MB  peak {status_kib(p.pid, "VmHWM") / 1024:6.0f} MB  '
                  f'CPU {cpu_s(p.pid):6.1f} s  graphs {ann["graphs"]} nodes '
                  f'{ann["nodes"]:8d} pending {ann["pending"]:8d}  query '
                  f'{q * 1e3:8.1f} ms', flush=True)
            if (ann['graphs'] and not ann['pending']) or (
                    not ann['graphs'] and not ann['pending'] and
                    t > 3 * a.every) or t > a.max_seconds:
                break
    finally:
        subprocess.run(['fusermount3', '-u', a.mnt])
        p.wait()


if __name__ == '__main__':
    main()

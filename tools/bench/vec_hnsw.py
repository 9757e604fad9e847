#!/usr/bin/python3
"""HNSW benchmark: lodefs's graph (core/vec_hnsw.c) against hnswlib and faiss.

One run: makes synthetic clustered data (fixed seed), the exact top-10 of
every query by cosine (numpy), then times and scores
  - bench_vec_hnsw (C, this build): build on THREADS threads, then
    recall@10 and queries per second, one query at a time on one thread,
    at several ef;
  - python3-hnswlib (M=32, ef_construction=100, cosine space): build on
    THREADS threads, then one query per knn_query call (num_threads=1) and
    one batch call (num_threads=THREADS), same ef values;
  - python3-faiss IndexHNSWFlat (M=32, efConstruction=100, inner product
    on normalised rows), one query per call and one batch.
and prints the ratios the targets speak of.

  /usr/bin/python3 tools/bench/vec_hnsw.py BUILD/tools/bench/bench_vec_hnsw \
      [--n 100000] [--dim 384] [--nq 1000] [--threads 2]
"""
import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

try:
    import numpy as np
except ImportError:
    np = None

EFS = [16, 24, 32, 48, 64, 96, 128]


def make_data(n, dim, nq, seed):
    """Gaussian clusters: 1,000 centres, points = centre + noise of the
    same scale, so that neighbours are mostly but not only in one cluster.
    Queries come from the same distribution (not rows of the data)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    def draw(m):
        c = rng.integers(0, len(centres), m)
        return (centres[c] +
                rng.standard_normal((m, dim), dtype=np.float32)).astype(
                    np.float32)
    return draw(n), draw(nq)


def cpu():
    """CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def exact_top(base, queries, k):
    bn = base / np.linalg.norm(base, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    try:
        import faiss  # exact inner product; much faster than numpy here
        idx = faiss.IndexFlatIP(base.shape[1])
        idx.add(bn)
        return idx.search(qn, k)[1].astype(np.int32)
    except ImportError:
        pass
    out = np.empty((len(queries), k), dtype=np.int32)
    for i in range(0, len(queries), 100):
        s = qn[i:i + 100] @ bn.T
        idx = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.take_along_axis(s, idx, 1).argsort(axis=1)[:, ::-1]
        out[i:i + 100] = np.take_along_axis(idx, order, 1)
    return out


def recall(found, gt):
    k = gt.shape[1]
    hit = sum(len(set(f[:k]) & set(g)) for f, g in zip(found, gt))
    return hit / (len(gt) * k)


def run_ours(binary, d, n, dim, nq, threads):
    cmd = [binary, os.path.join(d, 'base.f32'), os.path.join(d, 'query.f32'),
           os.path.join(d, 'gt.i32'), str(n), str(dim), str(nq),
           str(threads), ','.join(map(str, EFS))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    res = {'build': None, 'ef': []}
    for line in out.stdout.splitlines():
        f = line.split()
        if f[0] == 'build_s':
            res['build'] = float(f[1])
            res['build_cpu'] = float(f[3])
            res['m'] = int(f[5])
        elif f[0] == 'ef':
            res['ef'].append((int(f[1]), float(f[3]), float(f[5]),
                              float(f[7])))
    return res


def run_hnswlib(base, queries, gt, threads):
    import hnswlib
    idx = hnswlib.Index(space='cosine', dim=base.shape[1])
    idx.init_index(max_elements=len(base), M=32, ef_construction=100,
                   random_seed=100)
    t, c = time.perf_counter(), cpu()
    idx.add_items(base, np.arange(len(base)), num_threads=threads)
    build = (time.perf_counter() - t, cpu() - c)
    rows = []
    for ef in EFS:
        idx.set_ef(max(ef, 10))
        t, c = time.perf_counter(), cpu()
        found = [idx.knn_query(q, k=10, num_threads=1)[0][0] for q in queries]
        one = len(queries) / (time.perf_counter() - t)
        one_cpu = len(queries) / (cpu() - c)
        t = time.perf_counter()
        lab, _ = idx.knn_query(queries, k=10, num_threads=threads)
        batch = len(queries) / (time.perf_counter() - t)
        rows.append((ef, recall(found, gt), one, one_cpu, batch))
    return build, rows


def run_faiss(base, queries, gt, threads):
    import faiss
    faiss.omp_set_num_threads(threads)
    bn = base / np.linalg.norm(base, axis=1, keepdims=True)
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    idx = faiss.IndexHNSWFlat(base.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = 100
    t, c = time.perf_counter(), cpu()
    idx.add(bn)
    build = (time.perf_counter() - t, cpu() - c)
    rows = []
    for ef in EFS:
        idx.hnsw.efSearch = max(ef, 10)
        faiss.omp_set_num_threads(1)
        t, c = time.perf_counter(), cpu()
        found = [idx.search(q[None, :], 10)[1][0] for q in qn]
        one = len(queries) / (time.perf_counter() - t)
        one_cpu = len(queries) / (cpu() - c)
        faiss.omp_set_num_threads(threads)
        t = time.perf_counter()
        idx.search(qn, 10)
        batch = len(queries) / (time.perf_counter() - t)
        rows.append((ef, recall(found, gt), one, one_cpu, batch))
    return build, rows


def first_at(rows, target):
    """The row of the smallest ef reaching `target` recall (None if none)."""
    for r in rows:
        if r[1] >= target:
            return r
    return None


def need_anchors(skip):
    """The anchors are Debian packages: say which are missing and stop."""
    missing = []
    mods = (('numpy', 'python3-numpy'),)
    if not skip:
        mods += (('hnswlib', 'python3-hnswlib'), ('faiss', 'python3-faiss'))
    for mod, pkg in mods:
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        sys.exit('vec_hnsw.py: run by /usr/bin/python3, it needs %s: '
                 'apt-get install %s' % (', '.join(missing), ' '.join(missing)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('binary')
    ap.add_argument('--n', type=int, default=100000)
    ap.add_argument('--dim', type=int, default=384)
    ap.add_argument('--nq', type=int, default=1000)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--seed', type=int, default=20261124)
    ap.add_argument('--skip-anchors', action='store_true')
    a = ap.parse_args()
    need_anchors(a.skip_anchors)

    base, queries = make_data(a.n, a.dim, a.nq, a.seed)
    gt = exact_top(base, queries, 10)
    print(f'data: {a.n} x {a.dim} float32, {a.nq} queries, seed {a.seed}, '
          f'{a.threads} build threads')
    with tempfile.TemporaryDirectory() as d:
        base.tofile(os.path.join(d, 'base.f32'))
        queries.tofile(os.path.join(d, 'query.f32'))
        gt.tofile(os.path.join(d, 'gt.i32'))
        ours = run_ours(a.binary, d, a.n, a.dim, a.nq, a.threads)
    print(f'lodefs  M={ours["m"]} ef_construction=100: build '
          f'{ours["build"]:.2f} s wall, {ours["build_cpu"]:.2f} s CPU '
          f'({a.threads} threads)')
    for ef, rec, qps, qcpu in ours['ef']:
        print(f'  lodefs  ef {ef:4d}  recall@10 {rec:.4f}  {qps:8.0f} q/s '
              f'wall  {qcpu:8.0f} q/CPU-s  (one at a time, in-process C)')
    if a.skip_anchors:
        return
    hb, hrows = run_hnswlib(base, queries, gt, a.threads)
    print(f'hnswlib M=32 ef_construction=100: build {hb[0]:.2f} s wall, '
          f'{hb[1]:.2f} s CPU ({a.threads} threads)')
    for ef, rec, one, ocpu, batch in hrows:
        print(f'  hnswlib ef {ef:4d}  recall@10 {rec:.4f}  {one:8.0f} q/s '
              f'wall  {ocpu:8.0f} q/CPU-s (one per call)  {batch:8.0f} q/s '
              f'(batch, {a.threads} thr)')
    fb, frows = run_faiss(base, queries, gt, a.threads)
    print(f'faiss   IndexHNSWFlat M=32 efConstruction=100: build '
          f'{fb[0]:.2f} s wall, {fb[1]:.2f} s CPU ({a.threads} threads)')
    for ef, rec, one, ocpu, batch in frows:
        print(f'  faiss   ef {ef:4d}  recall@10 {rec:.4f}  {one:8.0f} q/s '
              f'wall  {ocpu:8.0f} q/CPU-s (one per call)  {batch:8.0f} q/s '
              f'(batch, {a.threads} thr)')

    o = first_at(ours['ef'], 0.95)
    h = first_at(hrows, 0.95)
    f = first_at(frows, 0.95)
    print('targets (smallest ef reaching recall@10 >= 0.95 on each side):')
    if o and h:
        print(f'  QPS, wall: lodefs {o[2]:.0f} (ef {o[0]}) / hnswlib one per '
              f'call {h[2]:.0f} (ef {h[0]}) = {o[2] / h[2]:.2f}x; / hnswlib '
              f'batch {h[4]:.0f} = {o[2] / h[4]:.2f}x (target >= 2x)')
        print(f'  QPS, CPU:  lodefs {o[3]:.0f} / hnswlib one per call '
              f'{h[3]:.0f} = {o[3] / h[3]:.2f}x')
    else:
        print('  recall 0.95 not reached by', 'lodefs' if not o else 'hnswlib')
    if o and f:
        print(f'  QPS, wall: lodefs / faiss one per call {f[2]:.0f} (ef '
              f'{f[0]}) = {o[2] / f[2]:.2f}x; / faiss batch {f[4]:.0f} = '
              f'{o[2] / f[4]:.2f}x')
    print(f'  build: lodefs {ours["build"]:.2f} s / hnswlib {hb[0]:.2f} s = '
          f'{ours["build"] / hb[0]:.2f} wall, CPU {ours["build_cpu"]:.2f} / '
          f'{hb[1]:.2f} = {ours["build_cpu"] / hb[1]:.2f} (target <= 1)')


if __name__ == '__main__':
    sys.exit(main())

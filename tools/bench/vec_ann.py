#!/usr/bin/python3
"""Helper of bench_vec_ann (tools/bench/vec_ann.c), run by /usr/bin/python3.

  vec_ann.py data DIR N DIM NQ SEED
      writes DIR/base-N-DIM-SEED.f32 and DIR/query-NQ-DIM-SEED.f32 (raw
      float32 rows) unless they exist: the data of vec_hnsw.py
      (make_data, same seed), so both benchmarks measure the same rows.
  vec_ann.py hnswlib DIR N DIM NQ SEED GT THREADS RUNS EF,EF,...
      python3-hnswlib (space='cosine', M=32, ef_construction=100) on those
      files, RUNS times: build on THREADS threads, then every query one per
      knn_query call (num_threads=1) at each ef; recall@10 against GT (NQ x
      10 int32 row numbers: the store's exact answers).  Prints
      "build RUN WALL CPU" and "ef RUN EF RECALL WALL_S CPU_S" lines.

A module that is not installed is reported as "missing MODULE PACKAGE" and
the step is skipped (exit status 0), so that the caller can say so.
"""
import os
import resource
import sys
import time


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def need(mod, pkg):
    try:
        return __import__(mod)
    except ImportError:
        print(f'missing {mod} {pkg}', flush=True)
        return None


def paths(d, n, dim, nq, seed):
    return (os.path.join(d, f'base-{n}-{dim}-{seed}.f32'),
            os.path.join(d, f'query-{nq}-{dim}-{seed}.f32'))


def data(d, n, dim, nq, seed):
    np = need('numpy', 'python3-numpy')
    if np is None:
        return
    bp, qp = paths(d, n, dim, nq, seed)
    if (os.path.exists(bp) and os.path.getsize(bp) == n * dim * 4 and
            os.path.exists(qp) and os.path.getsize(qp) == nq * dim * 4):
        print('data cached', flush=True)
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from vec_hnsw import make_data
    base, queries = make_data(n, dim, nq, seed)
    base.tofile(bp + '.tmp')
    queries.tofile(qp + '.tmp')
    os.rename(bp + '.tmp', bp)
    os.rename(qp + '.tmp', qp)
    print('data written', flush=True)


def hnswlib_runs(d, n, dim, nq, seed, gt_path, threads, runs, efs):
    np = need('numpy', 'python3-numpy')
    hnswlib = need('hnswlib', 'python3-hnswlib')
    if np is None or hnswlib is None:
        return
    bp, qp = paths(d, n, dim, nq, seed)
    base = np.fromfile(bp, dtype=np.float32).reshape(n, dim)
    queries = np.fromfile(qp, dtype=np.float32).reshape(nq, dim)
    gt = np.fromfile(gt_path, dtype=np.int32).reshape(nq, 10)
    gts = [set(int(x) for x in g if x >= 0) for g in gt]
    for r in range(runs):
        idx = hnswlib.Index(space='cosine', dim=dim)
        idx.init_index(max_elements=n, M=32, ef_construction=100,
                       random_seed=100)
        t, c = time.perf_counter(), cpu()
        idx.add_items(base, np.arange(n), num_threads=threads)
        print(f'build {r} {time.perf_counter() - t:.6f} {cpu() - c:.6f}',
              flush=True)
        # warm-up: every query once at the first ef, untimed, as the
        # C side does for the store
        idx.set_ef(max(efs[0], 10))
        for q in queries:
            idx.knn_query(q, k=10, num_threads=1)
        for ef in efs:
            idx.set_ef(max(ef, 10))
            t, c = time.perf_counter(), cpu()
            found = [idx.knn_query(q, k=10, num_threads=1)[0][0]
                     for q in queries]
            wall, cp = time.perf_counter() - t, cpu() - c
            hit = sum(len(set(int(x) for x in f) & g)
                      for f, g in zip(found, gts))
            tot = sum(len(g) for g in gts)
            print(f'ef {r} {ef} {hit / tot:.6f} {wall:.6f} {cp:.6f}',
                  flush=True)
        del idx


def main():
    a = sys.argv[1:]
    if len(a) >= 6 and a[0] == 'data':
        data(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    elif len(a) == 10 and a[0] == 'hnswlib':
        hnswlib_runs(a[1], int(a[2]), int(a[3]), int(a[4]), int(a[5]), a[6],
                     int(a[7]), int(a[8]), [int(x) for x in a[9].split(',')])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main()

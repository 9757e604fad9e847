#!/usr/bin/python3
"""vec_exact.py - the faiss anchor of bench_vec_exact (tools/bench/vec_exact.c).

usage: /usr/bin/python3 vec_exact.py BASE.fvecs QUERIES.fvecs K RUNS [cpu]

Loads the two TexMex files, L2-normalises the base and the queries (cosine
as inner product, the way faiss users do it) into an IndexFlatIP, and runs
every query alone (one search call per query, nq = 1), RUNS rounds.  Prints
lines the C program parses:

    faiss_threads N
    faiss_flat_qps MEDIAN_OF_ROUNDS
    faiss_ids QUERY ID ID ...      (row numbers, best first, last round)

With "cpu" the rounds are timed in this process's CPU time
(time.process_time) instead of wall time, as bench_vec_exact --cpu-time
times its in-process figures.  faiss runs with one OpenMP thread: the comparison is one query on one core
against one query on one core (with nq = 1 faiss does not use more anyway).
"""
import sys
import time

try:
    import faiss
    import numpy as np
except ImportError as e:
    sys.exit('vec_exact.py: run by /usr/bin/python3, it needs Debian\'s '
             'python3-faiss and python3-numpy (%s)' % e)


def read_fvecs(path):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        return np.zeros((0, 0), dtype="float32")
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise SystemExit(f"{path}: rows of different dimensions")
    return np.ascontiguousarray(rows[:, 1:]).view("<f4")


def main():
    base_path, q_path, k, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    clock = time.process_time if sys.argv[5:] == ["cpu"] else time.perf_counter
    faiss.omp_set_num_threads(1)
    base = read_fvecs(base_path).copy()
    queries = read_fvecs(q_path).copy()
    faiss.normalize_L2(base)
    faiss.normalize_L2(queries)
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    for i in range(min(20, len(queries))):  # warm the pages and the code
        index.search(queries[i : i + 1], k)
    rounds = []
    ids = None
    for _ in range(runs):
        ids = []
        t0 = clock()
        for i in range(len(queries)):
            _, found = index.search(queries[i : i + 1], k)
            ids.append(found[0])
        rounds.append(len(queries) / (clock() - t0))
    print("faiss_threads", faiss.omp_get_max_threads())
    print("faiss_flat_qps", float(np.median(rounds)))
    for i, row in enumerate(ids):
        print("faiss_ids", i, " ".join(str(int(x)) for x in row))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Cranfield retrieval quality through a lodefs mount.

usage: cranfield_mount.py MOUNTPOINT [DIR] [--mode M] [--alpha A]
                          [--skip-ingest] [--per-query FILE]

Writes the 1400 documents of DIR (default $LODEFS_SHARED/fixtures/
cranfield, else ../shared/fixtures/cranfield) into MOUNTPOINT/docs/cran/
as NNNN.txt (title and abstract, the .T and .W lines, each followed by a
newline, as tools/bench/cranfield.c builds them), then writes one JSON
request per query to MOUNTPOINT/query/cranQ.json with the query's whole
.W text as query_str and similarity_top_k 100, and reads the ranking back.
Nothing else is set unless --mode / --alpha are given: the mount's
defaults decide.  Following the collection's README: the query id in
cranqrel is the query's 1-based position in cran.qry, the grade -1 rows
are dropped, grades 1..4 count as relevant.  Prints binary nDCG@10 and
recall@100 averaged over the queries with at least one relevant document
(a document counts once, at the rank of its best node); --per-query
writes "QUERY nDCG@10" lines to FILE.  --skip-ingest queries documents
an earlier run wrote.
"""

import json
import math
import os
import sys
import time


def parse(path, keep):
    recs, cur, field = [], None, None
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\n").rstrip(" \r\t")
            if line.startswith(".I "):
                cur = [int(line[3:]), ""]
                recs.append(cur)
                field = None
            elif len(line) == 2 and line[0] == "." and line[1] in "TABW":
                field = line[1]
            elif cur is not None and field and field in keep:
                cur[1] += line + "\n"
    return recs


def main():
    args = sys.argv[1:]
    mode = alpha = None
    ingest = True
    per_query = None
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--mode":
            mode = args[i + 1]
            i += 1
        elif args[i] == "--alpha":
            alpha = float(args[i + 1])
            i += 1
        elif args[i] == "--per-query":
            per_query = open(args[i + 1], "w")
            i += 1
        elif args[i] == "--skip-ingest":
            ingest = False
        else:
            pos.append(args[i])
        i += 1
    if not pos:
        sys.exit(__doc__)
    mnt = pos[0]
    shared = os.environ.get("LODEFS_SHARED", "../shared")
    d = pos[1] if len(pos) > 1 else os.path.join(shared, "fixtures", "cranfield")
    docs = parse(os.path.join(d, "cran.all.1400"), "TW")
    queries = parse(os.path.join(d, "cran.qry"), "W")
    rel = {}
    with open(os.path.join(d, "cranqrel")) as f:
        for line in f:
            p = line.split()
            if len(p) < 3:
                continue
            q, doc, g = int(p[0]), int(p[1]), int(p[2])
            if 1 <= g <= 4:
                rel.setdefault(q, set()).add(doc)

    t0 = time.monotonic()
    if ingest:
        os.makedirs(os.path.join(mnt, "docs", "cran"), exist_ok=True)
        for doc_id, text in docs:
            with open(os.path.join(mnt, "docs", "cran", "%04d.txt" % doc_id),
                      "w", encoding="latin-1") as f:
                f.write(text)
    t1 = time.monotonic()

    ndcg = recall = 0.0
    used = 0
    for qi, (_, text) in enumerate(queries, start=1):
        req = {"query_str": text, "similarity_top_k": 100}
        if mode:
            req["mode"] = mode
        if alpha is not None:
            req["alpha"] = alpha
        path = os.path.join(mnt, "query", "cran%d.json" % qi)
        with open(path, "w") as f:
            f.write(json.dumps(req))
        with open(path) as f:
            res = json.load(f)
        ranked, seen = [], set()
        for n in res["nodes"]:
            r = n.get("ref_doc_id") or ""
            if r.startswith("cran/") and r not in seen:
                seen.add(r)
                ranked.append(int(r[5:9]))
        good = rel.get(qi)
        if not good:
            continue
        dcg = sum(1 / math.log2(j + 2)
                  for j, doc in enumerate(ranked[:10]) if doc in good)
        idcg = sum(1 / math.log2(j + 2) for j in range(min(len(good), 10)))
        ndcg += dcg / idcg
        if per_query is not None:
            per_query.write("%d %.6f\n" % (qi, dcg / idcg))
        recall += len(good & set(ranked[:100])) / len(good)
        used += 1
    t2 = time.monotonic()
    print("docs %d queries %d (with judgments %d) mode %s alpha %s"
          % (len(docs), len(queries), used, res.get("mode"),
             "default" if alpha is None else alpha))
    print("nDCG@10 %.4f\nrecall@100 %.4f" % (ndcg / used, recall / used))
    print("ingest %.1f s, %d queries %.1f s (%.2f ms/query, through the mount)"
          % (t1 - t0, len(queries), t2 - t1, (t2 - t1) * 1e3 / len(queries)))


if __name__ == "__main__":
    main()

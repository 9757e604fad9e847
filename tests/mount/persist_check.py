# persist_check.py - checks for test_persist.sh (Python standard library only).
#
#   persist_check.py same A B               json.load(A) == json.load(B), the
#                                           index structs' "__data__" text parsed
#   persist_check.py views MNT FIXDIR       nodes/, vectors/default/, index/,
#                                           kv/ and graph/ show the fixture
#   persist_check.py query MNT EXPECTED     every case of a fixtures/*.expected.json
#                                           asked as query/<name>.json, and graph
#   persist_check.py ingest MNT DOC...      the persist files after docs/ ingest are
#                                           what LlamaIndex loads, DOCs included
#   persist_check.py gone MNT DOC           no trace of DOC's nodes left
#   persist_check.py write MODE SRC DST     writes SRC's bytes to DST: python (open
#                                           "w", one write), reverse (pwrite at
#                                           offsets, last piece first), fsync (the
#                                           content must show before close)
#   persist_check.py patch DST OLD NEW      overwrites OLD with NEW (same length)
#                                           in place, no O_TRUNC
#   persist_check.py snapshot DST A B       a reader of DST (holding A) reads A
#                                           whole while B is written meanwhile
#   persist_check.py atomic DST A B SECS    writers alternate A and B, readers
#                                           read: every read is A or B
#   persist_check.py manifest DIR...        sha256 of every file below the DIRs
# Prints what is wrong and exits 1, or exits 0.
import errno
import hashlib
import json
import os
import struct
import sys
import threading
import time

FAILS = []


def fail(msg):
    FAILS.append(msg)


def load(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def norm(v):
    """The value with every "__data__" string (an index struct) parsed."""
    if isinstance(v, dict):
        return {k: (norm(json.loads(x)) if k == "__data__" and isinstance(x, str)
                    else norm(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def enc(name):
    """A name as the mount spells an id (lib: fs_name_encode)."""
    out = []
    for i, c in enumerate(name):
        if c in "/%" or (i == 0 and c == "."):
            out.append("%%%02X" % ord(c))
        else:
            out.append(c)
    return "".join(out)


def cmd_same(a, b):
    x, y = norm(load(a)), norm(load(b))
    if x != y:
        fail("%s and %s differ: %s" % (a, b, diff(x, y)))


def diff(x, y, where="$"):
    if type(x) is not type(y):
        return "%s: %r vs %r" % (where, x, y)
    if isinstance(x, dict):
        for k in x:
            if k not in y:
                return "%s: key %r only in the first" % (where, k)
            if x[k] != y[k]:
                return diff(x[k], y[k], where + "." + k)
        for k in y:
            if k not in x:
                return "%s: key %r only in the second" % (where, k)
    if isinstance(x, list):
        if len(x) != len(y):
            return "%s: %d vs %d items" % (where, len(x), len(y))
        for i, (p, q) in enumerate(zip(x, y)):
            if p != q:
                return diff(p, q, "%s[%d]" % (where, i))
    return "%s: %r vs %r" % (where, x, y)


def cmd_views(mnt, fixdir):
    doc = load(os.path.join(fixdir, "docstore.json"))
    vec = load(os.path.join(fixdir, "default__vector_store.json"))
    idx = load(os.path.join(fixdir, "index_store.json"))
    graph = load(os.path.join(fixdir, "graph_store.json"))
    for nid, rec in doc["docstore/data"].items():
        p = os.path.join(mnt, "nodes", enc(nid) + ".json")
        try:
            got = load(p)
        except (OSError, ValueError) as e:
            fail("nodes/: %s: %s" % (p, e))
            continue
        if got != rec["__data__"]:
            fail("nodes/%s.json: %s" % (nid, diff(got, rec["__data__"])))
        p = os.path.join(mnt, "kv", "docstore%2Fdata", enc(nid) + ".json")
        try:
            if load(p) != rec:
                fail("kv/docstore%%2Fdata/%s.json differs from the fixture" % nid)
        except (OSError, ValueError) as e:
            fail("kv/: %s: %s" % (p, e))
    for nid, emb in vec["embedding_dict"].items():
        p = os.path.join(mnt, "vectors", "default", enc(nid))
        want = struct.pack("<%df" % len(emb), *emb)
        try:
            with open(p, "rb") as f:
                got = f.read()
        except OSError as e:
            fail("vectors/default/%s: %s" % (nid, e))
            continue
        if got != want:
            fail("vectors/default/%s: %d bytes, not the fixture's float32"
                 % (nid, len(got)))
    for iid, rec in idx["index_store/data"].items():
        p = os.path.join(mnt, "index", enc(iid) + ".json")
        try:
            got = norm(load(p))
        except (OSError, ValueError) as e:
            fail("index/: %s: %s" % (p, e))
            continue
        if got != norm(rec):
            fail("index/%s.json: %s" % (iid, diff(got, norm(rec))))
    for subj, rels in graph["graph_dict"].items():
        for rel, obj in rels:
            p = os.path.join(mnt, "graph", enc(subj), enc(rel), enc(obj))
            if not os.path.isfile(p):
                fail("graph/: no %s" % p)
        p = os.path.join(mnt, "graph", enc(subj))
        try:
            got = sorted([r, o] for r in os.listdir(p)
                         for o in os.listdir(os.path.join(p, r)))
        except OSError as e:
            fail("graph/%s: %s" % (subj, e))
            continue
        if got != sorted(rels):
            fail("graph/%s holds %r, the fixture %r" % (subj, got, rels))


def cmd_query(mnt, expected):
    exp = load(expected)
    for i, case in enumerate(exp["queries"]):
        req = {k: case[k] for k in ("query_str", "query_embedding",
                                    "similarity_top_k", "filters")}
        req["mode"] = "default"
        p = os.path.join(mnt, "query", "parity%d.json" % i)
        try:
            with open(p, "w") as f:
                f.write(json.dumps(req))
            res = load(p)
            os.unlink(p)
        except (OSError, ValueError) as e:
            fail("case %d (%s): %s" % (i, case["query_str"], e))
            continue
        got = [(n["node_id"], n["score"]) for n in res["nodes"]]
        want = [(r["id"], r["score"]) for r in case["result"]]
        if [g[0] for g in got] != [w[0] for w in want] or any(
                abs(g[1] - w[1]) > 1e-6 for g, w in zip(got, want)):
            fail("case %d (%s, k=%d, filters %s): got %r, expected %r"
                 % (i, case["query_str"], case["similarity_top_k"],
                    json.dumps(case["filters"]), got, want))
    for key, want in exp.get("graph", {}).items():
        if key.startswith("get('"):
            subj = key[5:-2]
            p = os.path.join(mnt, "graph", enc(subj))
            got = sorted([r, o] for r in os.listdir(p)
                         for o in os.listdir(os.path.join(p, r)))
            if got != sorted(want):
                fail("%s: graph/ holds %r, expected %r" % (key, got, want))
        elif key.startswith("get_rel_map(["):
            subj = key.split("'")[1]
            depth = int(key.split("depth=")[1].rstrip(")"))
            p = os.path.join(mnt, "graph", ".rel_map", "depth=%d" % depth,
                             enc(subj))
            try:
                got = load(p)
            except (OSError, ValueError) as e:
                fail("%s: %s" % (key, e))
                continue
            if got != want:
                fail("%s: got %r, expected %r" % (key, got, want))


def persist_files(mnt):
    d = os.path.join(mnt, "persist")
    doc = load(os.path.join(d, "docstore.json"))
    idx = load(os.path.join(d, "index_store.json"))
    vec = load(os.path.join(d, "default__vector_store.json"))
    return doc, idx, vec


def vector_indexes(idx):
    out = []
    for iid, rec in idx["index_store/data"].items():
        if rec.get("__type__") == "vector_store":
            out.append((iid, json.loads(rec["__data__"])))
    return out


def cmd_ingest(mnt, docs):
    doc, idx, vec = persist_files(mnt)
    for k in ("docstore/data", "docstore/metadata", "docstore/ref_doc_info"):
        if not isinstance(doc.get(k), dict):
            fail("docstore.json has no %s object" % k)
            return
    for k in ("embedding_dict", "text_id_to_ref_doc_id", "metadata_dict"):
        if not isinstance(vec.get(k), dict):
            fail("default__vector_store.json has no %s object" % k)
            return
    data, meta, rdi = (doc["docstore/data"], doc["docstore/metadata"],
                       doc["docstore/ref_doc_info"])
    vis = vector_indexes(idx)
    if len(vis) < 1:
        fail("index_store.json has no vector_store index struct")
        return
    iid, vi = vis[0]
    if vi.get("index_id") != iid or not isinstance(vi.get("nodes_dict"), dict):
        fail("index struct %s: bad index_id or nodes_dict" % iid)
        return
    dims = set()
    for nid, emb in vec["embedding_dict"].items():
        dims.add(len(emb))
        if nid not in data:
            fail("vector %s is not in docstore/data" % nid)
            continue
        if vi["nodes_dict"].get(nid) != nid:
            fail("vector %s is not in nodes_dict of %s" % (nid, iid))
        rec = data[nid]
        if rec.get("__type__") != "1":
            fail("docstore/data[%s].__type__ is %r, not \"1\" (TextNode)"
                 % (nid, rec.get("__type__")))
        node = rec.get("__data__", {})
        if node.get("id_") != nid:
            fail("docstore/data[%s]: id_ %r" % (nid, node.get("id_")))
        if node.get("embedding", 0) is not None:
            fail("docstore/data[%s]: embedding is not null" % nid)
        src = node.get("relationships", {}).get("1")
        if not isinstance(src, dict) or "node_id" not in src:
            fail("node %s has no SOURCE (\"1\") relationship" % nid)
            continue
        ref = src["node_id"]
        if ref not in rdi or nid not in rdi[ref].get("node_ids", []):
            fail("ref_doc_info[%s] does not list node %s" % (ref, nid))
        if meta.get(nid, {}).get("ref_doc_id") != ref:
            fail("docstore/metadata[%s] has no ref_doc_id %s" % (nid, ref))
        if vec["text_id_to_ref_doc_id"].get(nid) != ref:
            fail("text_id_to_ref_doc_id[%s] is %r, not %r"
                 % (nid, vec["text_id_to_ref_doc_id"].get(nid), ref))
        # SimpleVectorStore.add: node_to_metadata_dict(node, remove_text=True,
        # flat_metadata=False) without "_node_content"
        want = dict(node.get("metadata", {}))
        want.update(_node_type="TextNode", document_id=ref, doc_id=ref,
                    ref_doc_id=ref)
        got = vec["metadata_dict"].get(nid)
        if got is None or list(got.items()) != list(want.items()):
            fail("metadata_dict[%s] is %r, SimpleVectorStore.add writes %r"
                 % (nid, got, want))
    if len(dims) > 1:
        fail("vectors of several lengths: %r" % sorted(dims))
    for d in docs:
        if d not in rdi or not rdi[d].get("node_ids"):
            fail("ref_doc_info has no nodes for document %s" % d)
            continue
        for nid in rdi[d]["node_ids"]:
            if nid not in vec["embedding_dict"]:
                fail("node %s of %s has no vector" % (nid, d))


def cmd_gone(mnt, d):
    doc, idx, vec = persist_files(mnt)
    if d in doc["docstore/ref_doc_info"]:
        fail("ref_doc_info still has %s" % d)
    for nid, rec in doc["docstore/data"].items():
        src = rec["__data__"].get("relationships", {}).get("1", {})
        if src.get("node_id") == d:
            fail("docstore/data still has node %s of %s" % (nid, d))
    for nid, ref in vec["text_id_to_ref_doc_id"].items():
        if ref == d:
            fail("text_id_to_ref_doc_id still has node %s of %s" % (nid, d))
            continue
    ids = set(vec["embedding_dict"]) | set(vec["metadata_dict"])
    for _, vi in vector_indexes(idx):
        ids |= set(vi["nodes_dict"])
    for nid in ids:
        if nid not in doc["docstore/data"]:
            fail("node %s is in the vector store or an index but not in "
                 "docstore/data" % nid)


def write_all(fd, data, off):
    while data:
        n = os.pwrite(fd, data, off)
        data, off = data[n:], off + n


def cmd_write(mode, src, dst):
    with open(src, "rb") as f:
        data = f.read()
    if mode == "python":
        # what fsspec's LocalFileOpener does for StorageContext.persist
        with open(dst, "w") as f:
            f.write(data.decode("utf-8"))
    elif mode == "reverse":
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            step = 1000
            for off in reversed(range(0, len(data), step)):
                write_all(fd, data[off:off + step], off)
        finally:
            os.close(fd)
    elif mode == "fsync":
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, data, 0)
            os.fsync(fd)
            with open(dst, "rb") as f:  # before close: imported by fsync
                if f.read() != data:
                    fail("after fsync, before close, %s does not read back "
                         "what was written" % dst)
        finally:
            os.close(fd)
    else:
        sys.exit("persist_check.py: unknown write mode " + mode)


def cmd_patch(dst, old, new):
    old, new = old.encode(), new.encode()
    if len(old) != len(new):
        sys.exit("persist_check.py patch: OLD and NEW differ in length")
    with open(dst, "rb") as f:
        data = f.read()
    pos = data.find(old)
    if pos < 0:
        fail("%r not in %s" % (old, dst))
        return
    fd = os.open(dst, os.O_WRONLY)  # no O_TRUNC: the rest is kept
    try:
        write_all(fd, new, pos)
    finally:
        os.close(fd)
    with open(dst, "rb") as f:
        got = f.read()
    if got != data[:pos] + new + data[pos + len(new):]:
        fail("after an in-place write, %s is not the file with %r replaced"
             % (dst, old))


def cmd_snapshot(dst, a, b):
    with open(a, "rb") as f:
        da = f.read()
    with open(b, "rb") as f:
        db = f.read()
    with open(dst, "rb", buffering=0) as r:
        first = r.read(100)
        with open(dst, "w") as w:
            w.write(db.decode())
        # (fstat reports the file as it is now: FUSE's getattr of fstat
        # carries no file handle; reads are not cut at that size)
        rest = b""
        while True:
            c = r.read(4096)
            if not c:
                break
            rest += c
    if first + rest != da:
        fail("a reader that opened before the change read %d bytes that "
             "are not its snapshot" % len(first + rest))
    with open(dst, "rb") as f:
        if f.read() != db:
            fail("a reader that opened after the change does not read it")
    if os.stat(dst).st_size != len(db):
        fail("stat after the change: %d bytes, the file has %d"
             % (os.stat(dst).st_size, len(db)))


def cmd_atomic(dst, a, b, secs):
    with open(a, "rb") as f:
        da = f.read()
    with open(b, "rb") as f:
        db = f.read()
    stop = time.monotonic() + float(secs)
    counts = {"a": 0, "b": 0, "bad": 0, "writes": 0, "errors": 0}
    lock = threading.Lock()

    def writer():
        i = 0
        while time.monotonic() < stop:
            try:
                with open(dst, "w") as f:
                    f.write((db if i % 2 == 0 else da).decode())
                with lock:
                    counts["writes"] += 1
            except OSError as e:
                with lock:
                    counts["errors"] += 1
                    fail("writer: %s" % e)
            i += 1

    def reader():
        while time.monotonic() < stop:
            try:
                # in pieces: one file, several read requests
                got = b""
                with open(dst, "rb", buffering=0) as f:
                    while True:
                        c = f.read(4096)
                        if not c:
                            break
                        got += c
            except OSError as e:
                with lock:
                    counts["errors"] += 1
                    fail("reader: %s" % e)
                continue
            with lock:
                if got == da:
                    counts["a"] += 1
                elif got == db:
                    counts["b"] += 1
                else:
                    counts["bad"] += 1
                    if counts["bad"] <= 3:
                        fail("a read of %d bytes is neither content (%d, %d)"
                             % (len(got), len(da), len(db)))

    ts = [threading.Thread(target=writer)] + [
        threading.Thread(target=reader) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("reads: %(a)d of A, %(b)d of B, %(bad)d torn; writes: %(writes)d"
          % counts)
    if counts["writes"] < 2 or counts["a"] + counts["b"] < 2:
        fail("too few writes or reads to say anything: %r" % counts)


def cmd_manifest(dirs):
    for top in dirs:
        for root, subdirs, files in os.walk(top):
            subdirs[:] = sorted(s for s in subdirs if s != ".rel_map")
            for name in sorted(files):
                p = os.path.join(root, name)
                try:
                    with open(p, "rb") as f:
                        h = hashlib.sha256(f.read()).hexdigest()
                except OSError as e:
                    h = errno.errorcode.get(e.errno, str(e.errno))
                print(h, os.path.relpath(p, os.path.dirname(top)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "same":
        cmd_same(*args)
    elif cmd == "views":
        cmd_views(*args)
    elif cmd == "query":
        cmd_query(*args)
    elif cmd == "ingest":
        cmd_ingest(args[0], args[1:])
    elif cmd == "gone":
        cmd_gone(*args)
    elif cmd == "write":
        cmd_write(*args)
    elif cmd == "patch":
        cmd_patch(*args)
    elif cmd == "snapshot":
        cmd_snapshot(*args)
    elif cmd == "atomic":
        cmd_atomic(*args)
    elif cmd == "manifest":
        cmd_manifest(args)
    else:
        sys.exit("persist_check.py: unknown command " + cmd)
    for m in FAILS[:20]:
        print(m)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()

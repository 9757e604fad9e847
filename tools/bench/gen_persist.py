#!/usr/bin/python3
"""gen_persist.py - a LlamaIndex persist directory of N nodes, and the anchor.

usage:
  gen_persist.py gen DIR [--nodes N] [--dim D] [--seed S]
  gen_persist.py anchor SRC OUT

gen: writes into DIR what Python LlamaIndex (llama-index-core 0.12)
persists after VectorStoreIndex.from_documents() over N / 5 documents split
into N TextNodes: docstore.json (the nodes, ~1 KB of pseudo-English text
each, with a SOURCE relationship; docstore/metadata; docstore/ref_doc_info),
index_store.json (one vector_store IndexDict listing every node),
default__vector_store.json (embedding_dict of D-dim unit vectors, uniform
in the cube then normalised, float64 written as Python writes floats, i.e.
repr of a double (16-17 significant digits),
text_id_to_ref_doc_id, metadata_dict), an empty image__vector_store.json
and an empty graph_store.json, all in json.dumps's default spelling.
Deterministic for a given N, D and seed (Python's random.Random; stdlib
only, as /usr/bin/python3 here has no numpy).
The vector store is written piece by piece, not held whole: the bytes are
those json.dumps gives for the whole dict (checked for small N by
`gen_persist.py gen DIR --nodes 50 --check`).

anchor: what Python itself does with those files, timed: json.load of each
file of SRC (as LlamaIndex's from_persist_path does), then each written to
OUT as LlamaIndex's persist() writes it: f.write(json.dumps(d)) for the
key-value stores (docstore, index_store), json.dump(d, f) for the vector and
graph stores.  Then the same objects written again with json.dumps for every
file (the C encoder: the fastest Python spelling).  Prints one line, each
step as wall-clock and CPU (user + system) seconds:
  load WALL CPU dump WALL CPU dumps WALL CPU maxrss KB
"""
import hashlib
import json
import math
import os
import random
import resource
import sys
import time
import uuid

WORDS = (
    "the of and to in is was for on that with as by at from this river "
    "valley ancient harvest orchard farmer apple tree autumn winter summer "
    "spring market town bridge stone mountain forest path village church "
    "library letter journey ship harbour lighthouse storm rock island "
    "garden wall window door kitchen bread cheese wine salt copper iron "
    "mill wheel water wind fire light shadow morning evening night north "
    "south east west old new small large quiet busy green blue red grey "
    "golden silver long short early late under over between across "
    "through around before after during while because although record "
    "measure count number table chapter section figure report survey "
    "method result sample value system process model theory question "
    "answer reason history science language music painting engine"
).split()

FILE_META_KEYS = ["file_name", "file_type", "file_size", "creation_date",
                  "last_modified_date", "last_accessed_date"]


def uid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sentence(rng):
    n = rng.randint(6, 16)
    w = rng.choices(WORDS, k=n)
    return w[0].capitalize() + " " + " ".join(w[1:]) + "."


def node_text(rng):
    # ~1 KB: sentences until at least 900 bytes, paragraphs of 2-5.
    paras, size = [], 0
    while size < 900:
        p = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
        paras.append(p)
        size += len(p) + 2
    return "\n\n".join(paras)


def file_meta(d):
    return {
        "file_path": "data/doc%05d.txt" % d,
        "file_name": "doc%05d.txt" % d,
        "file_type": "text/plain",
        "file_size": 5000 + d % 1000,
        "creation_date": "2024-06-01",
        "last_modified_date": "2024-06-01",
    }


def text_node(nid, text, meta, doc_id, doc_hash, start):
    return {
        "__data__": {
            "id_": nid,
            "embedding": None,
            "metadata": meta,
            "excluded_embed_metadata_keys": list(FILE_META_KEYS),
            "excluded_llm_metadata_keys": list(FILE_META_KEYS),
            "relationships": {
                "1": {
                    "node_id": doc_id,
                    "node_type": "4",
                    "metadata": meta,
                    "hash": doc_hash,
                    "class_name": "RelatedNodeInfo",
                }
            },
            "metadata_template": "{key}: {value}",
            "metadata_separator": "\n",
            "text": text,
            "mimetype": "text/plain",
            "start_char_idx": start,
            "end_char_idx": start + len(text),
            "metadata_seperator": "\n",
            "text_template": "{metadata_str}\n\n{content}",
            "class_name": "TextNode",
        },
        "__type__": "1",
    }


def unit_vector(vrng, dim):
    v = [2.0 * vrng.random() - 1.0 for _ in range(dim)]
    norm = math.sqrt(math.fsum(x * x for x in v))
    return [x / norm for x in v]


def gen(out, nodes, dim, seed, check):
    rng = random.Random(seed)
    vrng = random.Random(seed + 1)
    os.makedirs(out, exist_ok=True)
    per_doc = 5
    docs = []  # (doc_id, hash, meta, [node ids])
    data, node_meta = {}, {}
    ref_of = {}
    d = 0
    while len(data) < nodes:
        doc_id = uid(rng)
        meta = file_meta(d)
        k = min(per_doc, nodes - len(data))
        texts = [node_text(rng) for _ in range(k)]
        doc_hash = sha("\n\n".join(texts))
        ids, start = [], 0
        for t in texts:
            nid = uid(rng)
            data[nid] = text_node(nid, t, meta, doc_id, doc_hash, start)
            node_meta[nid] = {"doc_hash": sha(t), "ref_doc_id": doc_id}
            ref_of[nid] = (doc_id, meta)
            ids.append(nid)
            start += len(t) + 2
        docs.append((doc_id, doc_hash, meta, ids))
        d += 1

    # docstore.json: documents' hashes first (from_documents sets them
    # before the nodes are added), then the nodes'.
    metadata = {doc_id: {"doc_hash": h} for doc_id, h, _, _ in docs}
    metadata.update(node_meta)
    docstore = {
        "docstore/metadata": metadata,
        "docstore/data": data,
        "docstore/ref_doc_info": {
            doc_id: {"node_ids": ids, "metadata": meta}
            for doc_id, _, meta, ids in docs
        },
    }
    with open(os.path.join(out, "docstore.json"), "w") as f:
        f.write(json.dumps(docstore))

    index_id = uid(rng)
    struct = {
        "index_id": index_id,
        "summary": None,
        "nodes_dict": {nid: nid for nid in data},
        "doc_id_dict": {},
        "embeddings_dict": {},
    }
    index_store = {"index_store/data": {index_id: {
        "__type__": "vector_store", "__data__": json.dumps(struct)}}}
    with open(os.path.join(out, "index_store.json"), "w") as f:
        f.write(json.dumps(index_store))

    # default__vector_store.json, streamed in json.dumps's spelling.
    ids = list(data)
    whole = {} if check else None
    with open(os.path.join(out, "default__vector_store.json"), "w") as f:
        f.write('{"embedding_dict": {')
        step = 1000
        for i in range(0, len(ids), step):
            rows = [unit_vector(vrng, dim)
                    for _ in range(min(step, len(ids) - i))]
            part = ", ".join(json.dumps(ids[i + j]) + ": " + json.dumps(r)
                             for j, r in enumerate(rows))
            f.write((", " if i else "") + part)
            if check:
                whole.update(zip(ids[i:i + len(rows)], rows))
        f.write('}, "text_id_to_ref_doc_id": ')
        f.write(json.dumps({nid: ref_of[nid][0] for nid in ids}))
        f.write(', "metadata_dict": {')
        for i, nid in enumerate(ids):
            doc_id, meta = ref_of[nid]
            m = dict(meta)
            m.update({"_node_type": "TextNode", "document_id": doc_id,
                      "doc_id": doc_id, "ref_doc_id": doc_id})
            f.write((", " if i else "") + json.dumps(nid) + ": " +
                    json.dumps(m))
        f.write("}}")
    empty_vs = {"embedding_dict": {}, "text_id_to_ref_doc_id": {},
                "metadata_dict": {}}
    with open(os.path.join(out, "image__vector_store.json"), "w") as f:
        json.dump(empty_vs, f)
    with open(os.path.join(out, "graph_store.json"), "w") as f:
        json.dump({"graph_dict": {}}, f)

    if check:
        p = os.path.join(out, "default__vector_store.json")
        text = open(p).read()
        ref = json.dumps({
            "embedding_dict": whole,
            "text_id_to_ref_doc_id": {n: ref_of[n][0] for n in ids},
            "metadata_dict": json.loads(text)["metadata_dict"],
        })
        for name in sorted(os.listdir(out)):
            t = open(os.path.join(out, name)).read()
            if json.dumps(json.loads(t)) != t:
                sys.exit("gen_persist.py: %s is not json.dumps's text" % name)
        if text != ref:
            sys.exit("gen_persist.py: the streamed vector store differs")
        print("check: every file is json.dumps(json.loads(text))")


# LlamaIndex's persist(): the key-value stores write json.dumps's string,
# SimpleVectorStore and SimpleGraphStore call json.dump on the file.
def persist_like_llamaindex(name, obj, path):
    if name.endswith("vector_store.json") or name == "graph_store.json":
        with open(path, "w") as f:
            json.dump(obj, f)
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(obj))


def anchor(src, out):
    names = sorted(n for n in os.listdir(src) if n.endswith(".json"))
    os.makedirs(out, exist_ok=True)
    clock = (time.monotonic, time.process_time)
    t0 = [c() for c in clock]
    objs = {}
    for n in names:
        with open(os.path.join(src, n), "rb") as f:
            objs[n] = json.load(f)
    t1 = [c() for c in clock]
    for n in names:
        persist_like_llamaindex(n, objs[n], os.path.join(out, n))
    t2 = [c() for c in clock]
    for n in names:
        with open(os.path.join(out, n), "w") as f:
            f.write(json.dumps(objs[n]))
    t3 = [c() for c in clock]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("load %.3f %.3f dump %.3f %.3f dumps %.3f %.3f maxrss %d" %
          (t1[0] - t0[0], t1[1] - t0[1], t2[0] - t1[0], t2[1] - t1[1],
           t3[0] - t2[0], t3[1] - t2[1], rss))


def main(argv):
    if len(argv) >= 3 and argv[1] == "gen":
        out, nodes, dim, seed, check = argv[2], 100000, 384, 20261124, False
        i = 3
        while i < len(argv):
            if argv[i] == "--check":
                check = True
                i += 1
                continue
            if i + 1 >= len(argv):
                break
            if argv[i] == "--nodes":
                nodes = int(argv[i + 1])
            elif argv[i] == "--dim":
                dim = int(argv[i + 1])
            elif argv[i] == "--seed":
                seed = int(argv[i + 1])
            else:
                break
            i += 2
        if i == len(argv):
            gen(out, nodes, dim, seed, check)
            return 0
    elif len(argv) == 4 and argv[1] == "anchor":
        anchor(argv[2], argv[3])
        return 0
    sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/python3
"""A small OpenAI-compatible embeddings server for the tests.

usage: embed_server.py [--dim N]        serve on 127.0.0.1, a free port;
                                        prints "PORT\\n" once listening
       embed_server.py --vec TEXT DIM   prints the vector of TEXT as JSON

POST .../embeddings {"model": M, "input": [texts] or text} answers
{"object": "list", "data": [{"object": "embedding", "index": i,
"embedding": [...]}], "model": M}, the data in reverse order so that a
client must use "index".  The vector of a text is a bag of words: each
lowercase run of letters and digits adds 1.0 at sha256(word) mod dim, so
a query shares dimensions with the documents that contain its words, and
every number is an exact float32.

POST /control {"fail": N, "status": S, "close": N, "delay": SEC,
"dim": D, "retry_after": SEC} changes what the next requests get: the
next N answer HTTP S (default 503, with Retry-After when given), the next
N after those have their connection closed without an answer, every
answer waits SEC seconds, and vectors get D numbers.  GET /stats gives
{"requests": n, "inputs": [texts per request], "auth": [Authorization
headers], "models": [...], "texts": [every text embedded]}.
"""

import hashlib
import http.server
import json
import re
import socketserver
import sys
import threading
import time

WORD = re.compile(r"[a-z0-9]+")


def vector(text, dim):
    v = [0.0] * dim
    for w in WORD.findall(text.lower()):
        h = int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "little")
        v[h % dim] += 1.0
    return v


class State:
    def __init__(self, dim):
        self.lock = threading.Lock()
        self.dim = dim
        self.fail = 0
        self.status = 503
        self.close = 0
        self.delay = 0.0
        self.retry_after = None
        self.requests = 0
        self.inputs = []
        self.auth = []
        self.models = []
        self.texts = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n) or b"{}")

    def do_GET(self):
        st = self.server.state
        if self.path == "/stats":
            with st.lock:
                self.reply(200, {"requests": st.requests,
                                 "inputs": st.inputs, "auth": st.auth,
                                 "models": st.models, "texts": st.texts})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        st = self.server.state
        if self.path == "/control":
            req = self.body()
            with st.lock:
                st.fail = req.get("fail", st.fail)
                st.status = req.get("status", st.status)
                st.close = req.get("close", st.close)
                st.delay = req.get("delay", st.delay)
                st.dim = req.get("dim", st.dim)
                st.retry_after = req.get("retry_after", st.retry_after)
            self.reply(200, {"ok": True})
            return
        if not self.path.endswith("/embeddings"):
            self.reply(404, {"error": "not found"})
            return
        req = self.body()
        with st.lock:
            st.requests += 1
            st.auth.append(self.headers.get("Authorization"))
            delay = st.delay
            if st.fail > 0:
                st.fail -= 1
                action = ("fail", st.status, st.retry_after)
            elif st.close > 0:
                st.close -= 1
                action = ("close",)
            else:
                action = ("ok", st.dim)
        if delay:
            time.sleep(delay)
        if action[0] == "fail":
            extra = {"Retry-After": str(action[2])} if action[2] is not None else {}
            self.reply(action[1], {"error": {"message": "try again"}}, extra)
            return
        if action[0] == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        texts = req.get("input")
        if isinstance(texts, str):
            texts = [texts]
        with st.lock:
            st.inputs.append(len(texts))
            st.models.append(req.get("model"))
            st.texts.extend(texts)
        data = [{"object": "embedding", "index": i,
                 "embedding": vector(t, action[1])}
                for i, t in enumerate(texts)]
        data.reverse()
        self.reply(200, {"object": "list", "data": data,
                         "model": req.get("model"),
                         "usage": {"prompt_tokens": 0, "total_tokens": 0}})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    args = sys.argv[1:]
    if args[:1] == ["--vec"]:
        print(json.dumps(vector(args[1], int(args[2]))))
        return
    dim = 8
    if args[:1] == ["--dim"]:
        dim = int(args[1])
    srv = Server(("127.0.0.1", 0), Handler)
    srv.state = State(dim)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()

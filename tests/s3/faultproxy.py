#!/usr/bin/env python3
"""faultproxy.py - an HTTP/1.1 proxy in front of s3rver that breaks on demand.

    faultproxy.py --upstream HOST:PORT --control FILE --port-file FILE
                  [--secret SECRET] [--count-file FILE]

Listens on 127.0.0.1 (a free port, written to --port-file) and forwards
each request byte for byte to --upstream, Host header included: the
client signs for the proxy's host:port and s3rver (which checks only the
access key of a SigV4 request) never sees a difference.

With --secret, every SigV4 request is checked the way AWS checks it (the
canonical URI and query rebuilt from the decoded request, every x-amz-*
header signed, x-amz-content-sha256 equal to the body's SHA-256): a
request that fails gets 403 SignatureDoesNotMatch (or 400
XAmzContentSHA256Mismatch) and a line on stderr saying why.

With --count-file, every request received is counted, and FILE is
rewritten (atomically, by rename) after each one with lines "KIND N":
total, then GET, PUT, HEAD, DELETE, POST and LIST (a GET of the bucket
itself: ListObjects, ListObjectsV2, GetBucketLocation...; not in GET).
SIGUSR1 sets the counts to 0 and rewrites FILE.  The benchmarks in
tools/bench/ count every client's requests this way.

The control file holds lines "COUNT ACTION [ARG]"; each request takes
the first line (COUNT goes down by one, a line at 0 is removed; COUNT
"*" never runs out).  Actions:
    pass          forward (lets requests through before a later fault)
    500|503|429|403|400
                  answer with that status and an S3 error, do not forward
    drop          read the request, close the connection without answer
    reset         the same with a TCP reset
    truncate K    forward, then send the answer's headers and only K bytes
                  of its body, and close
    delay S       wait S seconds (a float), then forward
Python 3 standard library only.
"""
import argparse
import hashlib
import hmac
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

CODES = {500: ("InternalError", "Internal Server Error"),
         503: ("SlowDown", "Service Unavailable"),
         429: ("SlowDown", "Too Many Requests"),
         403: ("AccessDenied", "Forbidden"),
         400: ("InvalidArgument", "Bad Request")}

control_lock = threading.Lock()

COUNT_KINDS = ("total", "GET", "PUT", "HEAD", "DELETE", "POST", "LIST")
count_lock = threading.Lock()
counts = dict.fromkeys(COUNT_KINDS, 0)
count_file = None


def count_write():
    """Rewrites the count file; the caller holds count_lock."""
    tmp = count_file + ".tmp"
    with open(tmp, "w") as f:
        f.writelines("%s %d\n" % (k, counts[k]) for k in COUNT_KINDS)
    os.replace(tmp, count_file)


def count_request(method, target):
    if not count_file:
        return
    path = target.partition("?")[0]
    kind = method if method in counts else "POST"
    # Path style: /BUCKET or /BUCKET/ is the bucket itself.
    if method == "GET" and path.strip("/").count("/") == 0:
        kind = "LIST"
    with count_lock:
        counts["total"] += 1
        counts[kind] += 1
        count_write()


def count_reset(*_):
    with count_lock:
        for k in COUNT_KINDS:
            counts[k] = 0
        count_write()


def take_fault(path):
    """Pops one request's worth from the control file: (action, arg)."""
    with control_lock:
        try:
            with open(path) as f:
                lines = [l.split() for l in f if l.strip()]
        except FileNotFoundError:
            return ("pass", None)
        if not lines:
            return ("pass", None)
        first = lines[0]
        action = (first[1], first[2] if len(first) > 2 else None)
        if first[0] != "*":
            left = int(first[0]) - 1
            if left > 0:
                first[0] = str(left)
            else:
                lines.pop(0)
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(" ".join(l) + "\n" for l in lines)
            os.replace(tmp, path)
        return action


def read_head(rfile):
    """Reads a request or response head; returns its raw bytes or None."""
    raw = b""
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        raw += line
        if line in (b"\r\n", b"\n"):
            return raw


def parse_headers(raw):
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for l in lines[1:]:
        if not l:
            continue
        name, _, value = l.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    return lines[0], headers


def header(headers, name):
    vals = [v for n, v in headers if n == name]
    return ",".join(vals) if vals else None


def s3_quote(b):
    return urllib.parse.quote(b, safe="-_.~")


def canonical_uri(raw_path):
    # S3: the decoded key, encoded once, '/' kept; no normalisation.
    key = urllib.parse.unquote_to_bytes(raw_path)
    return urllib.parse.quote(key, safe="/-_.~")


def canonical_query(raw_query):
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        k, _, v = part.partition("=")
        pairs.append((s3_quote(urllib.parse.unquote_to_bytes(k)),
                      s3_quote(urllib.parse.unquote_to_bytes(v))))
    return "&".join(k + "=" + v for k, v in sorted(pairs))


def check_sigv4(secret, method, target, headers, body):
    """Returns None if the request verifies, else (status, why)."""
    auth = header(headers, "authorization")
    if not auth or not auth.startswith("AWS4-HMAC-SHA256 "):
        return (403, "not signed with SigV4")
    fields = dict(f.strip().split("=", 1)
                  for f in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    cred = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    for n, _ in headers:
        if n.startswith("x-amz-") and n not in signed:
            return (403, "header %s is not signed" % n)
    if "host" not in signed:
        return (403, "host is not signed")
    payload = header(headers, "x-amz-content-sha256")
    if payload is None:
        return (403, "no x-amz-content-sha256")
    if payload != "UNSIGNED-PAYLOAD" and \
            payload != hashlib.sha256(body).hexdigest():
        return (400, "x-amz-content-sha256 is not the body's SHA-256")
    path, _, query = target.partition("?")
    canon_headers = "".join(
        "%s:%s\n" % (n, " ".join((header(headers, n) or "").split()))
        for n in signed)
    creq = "\n".join([method, canonical_uri(path), canonical_query(query),
                      canon_headers, ";".join(signed), payload])
    date = header(headers, "x-amz-date") or ""
    scope = "/".join(cred[1:])
    sts = "\n".join(["AWS4-HMAC-SHA256", date, scope,
                     hashlib.sha256(creq.encode("latin-1")).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in cred[1:]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    want = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, fields["Signature"]):
        return (403, "signature mismatch; canonical request:\n" + creq)
    return None


def error_reply(status, code=None):
    code = code or CODES[status][0]
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code>'
            '<Message>faultproxy</Message></Error>' % code).encode()
    head = ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
            "Content-Length: %d\r\n\r\n" % (status, CODES[status][1],
                                            len(body)))
    return head.encode() + body


def read_body(rfile, headers):
    """Reads a request body by its framing; returns (raw bytes, body)."""
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        raise ValueError("chunked requests are not supported")
    n = header(headers, "content-length")
    data = rfile.read(int(n)) if n is not None else b""
    return data, data


class StopRelay(Exception):
    pass


def relay_body(rfile, headers, status, method, sink):
    """Hands a response body to sink() piece by piece, as it comes."""
    if method == "HEAD" or status in (204, 304):
        return
    te = header(headers, "transfer-encoding")
    if te and "chunked" in te.lower():
        while True:
            line = rfile.readline()
            sink(line)
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while True:
                    t = rfile.readline()
                    sink(t)
                    if t in (b"\r\n", b"\n", b""):
                        return
            sink(rfile.read(size + 2))
    n = header(headers, "content-length")
    left = int(n) if n is not None else -1
    while left != 0:
        piece = rfile.read1(65536 if left < 0 else min(left, 65536))
        if not piece:
            return  # the upstream closed: the client sees a short body
        sink(piece)
        left -= len(piece) if left > 0 else 0


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        self.up = None  # (socket, its reader) to the upstream, kept alive
        # head and body go out in separate writes: without this, each
        # answer waits ~40 ms for the client's delayed ACK (Nagle)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while self.one_request_and_reply():
                pass
        except (OSError, ValueError) as e:
            log("connection ended: %s" % e)
        finally:
            if self.up:
                self.up[0].close()

    def one_request_and_reply(self):
        head = read_head(self.rfile)
        if head is None:
            return False
        start, headers = parse_headers(head)
        method, target, _ = start.split(" ", 2)
        if (header(headers, "expect") or "").lower() == "100-continue":
            # The upstream's own 100 is skipped below.
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        raw_body, body = read_body(self.rfile, headers)
        count_request(method, target)
        action, arg = take_fault(self.server.control)
        if self.server.secret and not target.startswith("/__"):
            bad = check_sigv4(self.server.secret, method, target, headers,
                              body)
            if bad:
                log("%s %s refused: %s" % (method, target, bad[1]))
                self.wfile.write(error_reply(bad[0], "SignatureDoesNotMatch"
                                             if bad[0] == 403 else
                                             "XAmzContentSHA256Mismatch"))
                return True
        if action not in ("pass",) or os.environ.get("FAULTPROXY_VERBOSE"):
            log("%s %s: %s %s" % (method, target, action, arg or ""))
        if action.isdigit():
            self.wfile.write(error_reply(int(action)))
            return True
        if action == "drop":
            return False
        if action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            return False
        if action == "delay":
            time.sleep(float(arg))
        if self.up is None:
            s = socket.create_connection(self.server.upstream)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.up = (s, s.makefile("rb"))
        sock, urfile = self.up
        sock.sendall(head + raw_body)
        while True:
            rhead = read_head(urfile)
            if rhead is None:
                raise OSError("upstream closed")
            rstart, rheaders = parse_headers(rhead)
            status = int(rstart.split(" ", 2)[1])
            if status >= 200:
                break
        if os.environ.get("FAULTPROXY_VERBOSE"):
            log("  -> %d" % status)
        sink = self.wfile.write
        if action == "truncate":
            left = [int(arg)]

            def sink(piece):
                self.wfile.write(piece[:left[0]])
                left[0] -= min(left[0], len(piece))
                if not left[0]:
                    raise StopRelay()
        self.wfile.write(rhead)
        try:
            if action != "truncate" or int(arg) > 0:
                relay_body(urfile, rheaders, status, method, sink)
        except StopRelay:
            pass
        if action == "truncate" or \
                (header(rheaders, "connection") or "").lower() == "close":
            sock.close()
            self.up = None
        return action != "truncate"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def log(msg):
    print("faultproxy: " + msg, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--control", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--secret")
    ap.add_argument("--count-file")
    a = ap.parse_args()
    if a.count_file:
        global count_file
        count_file = a.count_file
        count_reset()
        signal.signal(signal.SIGUSR1, count_reset)
    host, port = a.upstream.rsplit(":", 1)
    srv = Server(("127.0.0.1", 0), Handler)
    srv.upstream = (host, int(port))
    srv.control = a.control
    srv.secret = a.secret
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.replace(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()

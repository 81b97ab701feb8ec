#!/usr/bin/env python3
"""A small HTTP proxy in front of a real registry, for tests/registry.rs.

    registry_proxy.py UPSTREAM_PORT PORT_FILE LOG_FILE [--fail-every N] [--bearer USER:PASSWORD]

Listens on 127.0.0.1 (a free port, written to PORT_FILE) and forwards every
request to the registry on 127.0.0.1:UPSTREAM_PORT, keeping the Host header
so the registry's upload Locations point back here. Each request is logged
to LOG_FILE as "METHOD PATH STATUS".

--fail-every N   every Nth request is answered 503 without being forwarded
                 (a flaky registry or load balancer); faults are transient:
                 the next try of a request a fault hit goes through.
--drop-every N   every Nth request is read and its connection closed with
                 no answer (a connection reset).
--corrupt-blobs 1  flip the first byte of every blob body it relays.
--redirect-blobs 1  answer blob GETs with a 307 to /storage/… on "localhost"
                 (another host name), as registries backed by object
                 storage do; /storage refuses a request carrying an
                 Authorization header (as a signed storage URL does).
--referrers-api 1  serve the OCI 1.1 referrers API in front of a registry
                 without one (docker-registry 2.8): manifests PUT with a
                 `subject` are remembered and answered with `OCI-Subject`;
                 GET /v2/<name>/referrers/<digest> lists them.
--bearer U:P     the distribution token flow: requests without a valid
                 bearer token get 401 with a Bearer challenge whose realm is
                 /token here; /token hands out a token for basic U:P only.
"""
import base64
import json
import re
import http.client
import http.server
import secrets
import sys
import threading

upstream_port = int(sys.argv[1])
port_file, log_file = sys.argv[2], sys.argv[3]
fail_every = 0
drop_every = 0
bearer = None
corrupt = False
referrers_api = False
redirect_blobs = False
referrers = {}  # (repo, subject digest) -> [descriptor]
args = sys.argv[4:]
while args:
    if args[0] == "--fail-every":
        fail_every = int(args[1])
    elif args[0] == "--drop-every":
        drop_every = int(args[1])
    elif args[0] == "--redirect-blobs":
        redirect_blobs = args[1] == "1"
    elif args[0] == "--referrers-api":
        referrers_api = args[1] == "1"
    elif args[0] == "--corrupt-blobs":
        corrupt = args[1] == "1"
    elif args[0] == "--bearer":
        bearer = args[1]
    args = args[2:]

lock = threading.Lock()
count = 0
tokens = set()
faulted = set()
HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, headers=(), data=b""):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        with open(log_file, "a") as f:
            f.write(f"{self.command} {self.path} {status}\n")

    def handle_any(self):
        global count
        data = self.body()
        with lock:
            count += 1
            n = count
        key = (self.command, self.path)
        with lock:
            # a transient fault: the retry of a request it hit goes through
            retried = key in faulted
            faulted.discard(key)
            inject = not retried and (
                (drop_every and n % drop_every == 0) or (fail_every and n % fail_every == 0))
            if inject:
                faulted.add(key)
        if inject and drop_every and n % drop_every == 0:
            with open(log_file, "a") as f:
                f.write(f"{self.command} {self.path} dropped\n")
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if inject:
            self.reply(503, [("Content-Type", "text/plain")], b"injected failure\n")
            return
        host = self.headers.get("Host")
        if redirect_blobs and self.path.startswith("/storage/"):
            if self.headers.get("Authorization"):
                self.reply(400, [("Content-Type", "text/plain")], b"only one auth mechanism allowed\n")
                return
            conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            conn.request("GET", "/v2/" + self.path[len("/storage/"):])
            r = conn.getresponse()
            self.reply(r.status, [("Content-Type", "application/octet-stream")], r.read())
            return
        if bearer is not None:
            if self.path.startswith("/token"):
                want = "Basic " + base64.b64encode(bearer.encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.reply(401, [("Content-Type", "application/json")], b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                    return
                t = secrets.token_hex(16)
                tokens.add(t)
                self.reply(200, [("Content-Type", "application/json")], ('{"token": "%s"}' % t).encode())
                return
            auth = self.headers.get("Authorization") or ""
            if not (auth.startswith("Bearer ") and auth[7:] in tokens):
                repo = self.path.split("/")[2] if self.path.count("/") > 2 else ""
                challenge = f'Bearer realm="http://{host}/token",service="test-registry",scope="repository:{repo}:pull"'
                self.reply(401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")],
                           b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                return
        if redirect_blobs and self.command == "GET" and re.match(r"^/v2/.+/blobs/sha256:[0-9a-f]{64}$", self.path):
            port = host.rsplit(":", 1)[1]
            self.reply(307, [("Location", f"http://localhost:{port}/storage/{self.path[len('/v2/'):]}")])
            return
        if referrers_api and self.command == "GET":
            m = re.match(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$", self.path.split("?")[0])
            if m:
                with lock:
                    listed = list(referrers.get((m.group(1), m.group(2)), []))
                body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                   "manifests": listed}).encode()
                self.reply(200, [("Content-Type", "application/vnd.oci.image.index.v1+json")], body)
                return
        conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP and k.lower() != "authorization"}
        if bearer is None and self.headers.get("Authorization"):
            headers["Authorization"] = self.headers["Authorization"]
        conn.request(self.command, self.path, body=data if data else None, headers=headers)
        r = conn.getresponse()
        out = r.read()
        extra = []
        if referrers_api and self.command == "PUT" and r.status == 201:
            m = re.match(r"^/v2/(.+)/manifests/[^/]+$", self.path)
            try:
                doc = json.loads(data)
            except ValueError:
                doc = {}
            subject = doc.get("subject") if isinstance(doc, dict) else None
            if m and subject:
                desc = {"mediaType": doc.get("mediaType"), "digest": r.getheader("Docker-Content-Digest"),
                        "size": len(data),
                        "artifactType": doc.get("artifactType") or doc["config"]["mediaType"]}
                if doc.get("annotations"):
                    desc["annotations"] = doc["annotations"]
                with lock:
                    lst = referrers.setdefault((m.group(1), subject["digest"]), [])
                    if desc["digest"] not in [d["digest"] for d in lst]:
                        lst.append(desc)
                extra.append(("OCI-Subject", subject["digest"]))
        if corrupt and self.command == "GET" and "/blobs/sha256:" in self.path and out:
            out = bytes([out[0] ^ 1]) + out[1:]
        hdrs = [(k, v) for k, v in r.getheaders() if k.lower() not in HOP and k.lower() != "content-length"]
        if self.command == "HEAD":
            cl = r.getheader("Content-Length")
            self.send_response(r.status)
            for k, v in hdrs:
                self.send_header(k, v)
            if cl is not None:
                self.send_header("Content-Length", cl)
            self.end_headers()
            with open(log_file, "a") as f:
                f.write(f"{self.command} {self.path} {r.status}\n")
        else:
            self.reply(r.status, hdrs + extra, out)
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client closing its connection is not news


srv = Server(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()

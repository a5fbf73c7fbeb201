"""bssiot-gateway against real echo upstreams.

Each upstream is a Python ThreadingHTTPServer (HTTP/1.1, keep-alive) that
answers every request with what it received: method, path, raw query,
headers, body length and hash, chunked or not, and the client port of the
TCP connection (to see upstream connection reuse). A few path segments make
it misbehave on purpose:

    .../status-NNN/...  answer NNN with Location, Retry-After, ... headers
    .../slow/...        wait (up to 5 s) before answering
    .../hold/...        signal arrival, then wait for the test to release it

Gateways run as real processes; every process and server is stopped even
when a test fails.
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import socket
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, free_port, wait_until  # noqa: E402
from system import issue_token  # noqa: E402

BIN_DIR = None
SERVICES = [("/customers", "customer"), ("/raters", "rater"), ("/billings", "billing"),
            ("/settlements", "settlement"), ("/mypage", "mypage")]
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TRACEPARENT_RE = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


# -- the echo upstream -----------------------------------------------------------

def read_chunked(rfile):
    body = bytearray()
    while True:
        line = rfile.readline(65537)
        if not line:
            raise ConnectionError("eof inside chunked body")
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += rfile.read(size)
        rfile.readline(3)


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.server.conns.append(self.connection)

    def handle_one(self):
        server = self.server
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if chunked:
            body = read_chunked(self.rfile)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        segs = path.split("/")
        info = {
            "upstream": server.name,
            "method": self.command,
            "path": path,
            "query": query if "?" in self.path else None,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "body": body.decode("utf-8", "replace") if len(body) <= 4096 else None,
            "chunked": chunked,
            "clientPort": self.client_address[1],
        }
        server.seen.append(info)
        if "drop" in segs:  # hang up without answering
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if "hold" in segs:
            server.arrived.set()
            server.release.wait(10)
        if "slow" in segs:
            server.release.wait(5)
        status, extra, ctype = 200, {}, "application/json"
        payload = json.dumps(info).encode()
        for seg in segs:
            if seg.startswith("status-"):
                status = int(seg[len("status-"):])
                extra = {"Location": f"/billings/I-{status}", "Retry-After": "7",
                         "Content-Disposition": 'attachment; filename="inv.html"',
                         "WWW-Authenticate": 'Bearer realm="bss"', "Allow": "GET, POST",
                         "X-Internal-Secret": "do-not-leak"}
                ctype = "text/html; charset=utf-8"
                payload = f"<p>answer {status}</p>".encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        for k, v in extra.items():
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = handle_one


class EchoServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, name, port=0):
        super().__init__(("127.0.0.1", port), EchoHandler)
        self.name = name
        self.seen = []
        self.conns = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        pass  # the gateway hung up on a slow answer: expected

    def drop_connections(self):
        """Closes every kept-alive connection, as a restarted upstream would."""
        for conn in self.conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.release.set()
        self.shutdown()
        self.server_close()


# -- client helpers ----------------------------------------------------------------

# The operator token every request of these tests carries (GatewayBase makes
# it): the gateway refuses anything without one.
AUTH = {}


def call(port, method, path, body=None, headers=None, conn=None, timeout=30):
    """One request as the operator; returns (status, headers as a
    case-insensitive message, body)."""
    headers = {**AUTH, **(headers or {})}
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        if own:
            conn.close()


def echo(port, method, path, **kw):
    status, headers, data = call(port, method, path, **kw)
    if status != 200:
        raise AssertionError(f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data), headers


def with_auth(head):
    """A raw request head with the operator's Authorization added after the
    request line (unless it has one)."""
    if b"\r\nauthorization:" in head.lower() or not AUTH:
        return head
    line_end = head.index(b"\r\n") + 2
    return head[:line_end] + f"Authorization: {AUTH['Authorization']}\r\n".encode() + \
        head[line_end:]


def raw_exchange(port, head, body_chunks=(), timeout=15):
    """Sends raw bytes (head, then body chunks from a thread, ignoring send
    errors) and returns (status, headers dict lowercased, body) of the
    first response."""
    head = with_auth(head)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send_body():
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass

    try:
        sock.sendall(head)
        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        f = sock.makefile("rb")
        status_line = f.readline().decode()
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = f.readline().decode()
            if line in ("\r\n", "\n", ""):
                break
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        data = f.read(int(headers.get("content-length", "0")))
        sender.join(timeout)
        f.close()
        return status, headers, data
    finally:
        sock.close()


def expect_exchange(port, head, body=None, timeout=10):
    """Sends a request head carrying "Expect: 100-continue" and no body, and
    reads the first response head. When that is a 100 and body is given,
    sends the body and reads the final response too. Returns
    (seconds until the first response, [(status, headers, body)...])."""
    head = with_auth(head)
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        t0 = time.monotonic()
        sock.sendall(head)
        f = sock.makefile("rb")
        answers, first_at = [], None
        while True:
            status = int(f.readline().decode().split()[1])
            if first_at is None:
                first_at = time.monotonic() - t0
            headers = {}
            while True:
                line = f.readline().decode()
                if line in ("\r\n", "\n", ""):
                    break
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
            data = f.read(int(headers.get("content-length", "0"))) if status >= 200 else b""
            answers.append((status, headers, data))
            if status >= 200 or body is None:
                break
            sock.sendall(body)
        f.close()
        return first_at, answers
    finally:
        sock.close()


def port_accepts(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class GatewayBase(unittest.TestCase):
    """Five echo upstreams and gateways started once for the class."""

    @classmethod
    def setUpClass(cls):
        cls.workdir_ctx = Workdir(prefix="bss-gw-")
        cls.dir = cls.workdir_ctx.__enter__()
        cls.procs = Processes(cls.dir)
        cls.upstreams = {}
        cls.gateway_db = os.path.join(cls.dir, "gateway.db")
        AUTH["Authorization"] = "Bearer " + issue_token(BIN_DIR, cls.dir, "operator",
                                                        gateway_db=cls.gateway_db)
        try:
            for _, name in SERVICES:
                cls.upstreams[name] = EchoServer(name)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        # Every gateway must exit 0 on SIGTERM: under ASan a leak makes it 86.
        failures = []
        for name in list(cls.procs.procs):
            try:
                rc = cls.procs.stop(name)
            except Exception as exc:
                rc = repr(exc)
            if rc != 0 and name != "gw-bad":
                failures.append(f"{name} exited {rc}:\n{cls.procs.log_of(name)[-3000:]}")
        cls.procs.stop_all()
        for server in cls.upstreams.values():
            server.stop()
        cls.workdir_ctx.__exit__(None, None, None)
        if failures:
            raise AssertionError("\n".join(failures))

    @classmethod
    def start_gateway(cls, name, env_extra=None, upstream_env=True):
        port = free_port()
        env = {"BSS_PORT": str(port), "BSS_DATA_DIR": os.path.join(cls.dir, name),
               "BSS_LOG_LEVEL": "info", "BSS_GATEWAY_DB": cls.gateway_db,
               "BSS_GATEWAY_RATE_PER_S": "1000000"}
        if upstream_env:
            for _, svc in SERVICES:
                env[f"BSS_UPSTREAM_{svc.upper()}"] = f"http://127.0.0.1:{cls.upstreams[svc].port}"
        env.update(env_extra or {})
        cls.procs.start(name, [os.path.join(BIN_DIR, "bssiot-gateway")], env)

        def healthy():
            if cls.procs.procs[name].poll() is not None:
                raise AssertionError(f"{name} exited: {cls.procs.log_of(name)}")
            return call(port, "GET", "/healthz", timeout=2)[0] == 200

        wait_until(healthy, timeout=20, what=f"{name} /healthz")
        return port


class GatewayProxy(GatewayBase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.port = cls.start_gateway("gw")
        except Exception:
            cls.tearDownClass()
            raise

    # -- routing ---------------------------------------------------------------
    def test_each_prefix_reaches_its_upstream_with_path_and_raw_query(self):
        for prefix, name in SERVICES:
            with self.subTest(prefix=prefix):
                info, _ = echo(self.port, "GET", f"{prefix}/C1/lines?x=1&y=%41+b&z")
                self.assertEqual(info["upstream"], name)
                self.assertEqual(info["method"], "GET")
                self.assertEqual(info["path"], f"{prefix}/C1/lines")
                self.assertEqual(info["query"], "x=1&y=%41+b&z")
                info, _ = echo(self.port, "GET", prefix)
                self.assertEqual((info["upstream"], info["path"], info["query"]),
                                 (name, prefix, None))

    def test_prefix_matches_whole_segments_only(self):
        for path in ("/customersX", "/customersX/1", "/nope", "/nope/a/b", "/", "/rater/1",
                     "/nope/1/2/3/4/5/6/7/8/9/10", "/nope/"):
            with self.subTest(path=path):
                status, headers, data = call(self.port, "GET", path)
                self.assertEqual(status, 404)
                self.assertEqual(headers["Content-Type"], "application/problem+json")
                problem = json.loads(data)
                self.assertEqual(problem["code"], "ROUTE_NOT_FOUND")
                self.assertEqual(problem["requestId"], headers["X-Request-Id"])
        status, headers, data = call(self.port, "POST", "/unknown/x", body=b"{}",
                                     headers={"Content-Type": "application/json",
                                              "X-Request-Id": "rid-404"})
        self.assertEqual(status, 404)
        self.assertEqual(headers["X-Request-Id"], "rid-404")
        self.assertEqual(json.loads(data)["code"], "ROUTE_NOT_FOUND")

    def test_unproxied_methods_get_405(self):
        for path in ("/customers/C1", "/nope"):
            with self.subTest(path=path):
                status, headers, data = call(self.port, "PROPFIND", path)
                self.assertEqual(status, 405)
                self.assertEqual(json.loads(data)["code"], "METHOD_NOT_ALLOWED")
                self.assertIn("PATCH", headers["Allow"])
        status, headers, _ = call(self.port, "DELETE", "/healthz")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))

    def test_builtin_endpoints_stay_the_gateways(self):
        status, _, data = call(self.port, "GET", "/healthz")
        self.assertEqual((status, json.loads(data)["status"]), (200, "ok"))
        status, _, data = call(self.port, "GET", "/readyz")
        self.assertEqual(status, 200)
        status, _, data = call(self.port, "GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"bss_http_requests_total", data)
        for up in self.upstreams.values():
            self.assertNotIn("/healthz", [s["path"] for s in up.seen])

    def test_deep_paths_and_encoded_characters(self):
        info, _ = echo(self.port, "GET", "/customers/a/b/c/d/e/f/g")
        self.assertEqual(info["path"], "/customers/a/b/c/d/e/f/g")
        info, _ = echo(self.port, "GET", "/customers/a%20b/%C3%A9?q=a%20b")
        self.assertEqual(info["path"], "/customers/a%20b/%C3%A9")
        self.assertEqual(info["query"], "q=a%20b")

    def test_paths_of_any_depth_and_trailing_slashes_reach_the_upstream_intact(self):
        deep = "/raters/" + "/".join(f"s{i}" for i in range(1, 21))  # 21 segments
        for path in (deep, deep + "/", "/customers/", "/customers/C1/orders/",
                     "/billings/a/b/c/d/e/f/g/h/i/"):
            with self.subTest(path=path):
                info, _ = echo(self.port, "GET", path + "?x=1")
                self.assertEqual((info["path"], info["query"]), (path, "x=1"))
        body = b'{"deep":true}'
        info, _ = echo(self.port, "POST", deep + "/", body=body,
                       headers={"Content-Type": "application/json"})
        self.assertEqual((info["method"], info["path"], info["body"]),
                         ("POST", deep + "/", body.decode()))
        status, _, data = call(self.port, "HEAD", deep + "/")
        self.assertEqual((status, data), (200, b""))
        self.assertEqual(self.upstreams["rater"].seen[-1]["method"], "HEAD")

    # -- Expect: 100-continue -------------------------------------------------------
    def test_expect_100_continue_then_the_body_is_forwarded(self):
        body = os.urandom(200 * 1024)  # streamed (over the small-body size)
        small = b'{"small":1}'
        for payload in (body, small):
            with self.subTest(length=len(payload)):
                head = (b"POST /raters/usage-files HTTP/1.1\r\nHost: gw\r\n"
                        b"Content-Type: application/octet-stream\r\n"
                        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(payload))
                _, answers = expect_exchange(self.port, head, payload)
                self.assertEqual([a[0] for a in answers], [100, 200])
                info = json.loads(answers[1][2])
                self.assertEqual(info["sha256"], hashlib.sha256(payload).hexdigest())
                self.assertNotIn("expect", info["headers"])

    def test_expect_100_continue_refused_request_answers_before_the_body(self):
        # The body is never sent: the answer must come without a 100 and
        # without waiting for it (the old behaviour stalled until a timeout).
        head = (b"POST /unknown/x HTTP/1.1\r\nHost: gw\r\nContent-Type: text/csv\r\n"
                b"Expect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
        took, answers = expect_exchange(self.port, head, timeout=5)
        self.assertEqual(len(answers), 1)
        status, headers, data = answers[0]
        self.assertEqual((status, json.loads(data)["code"]), (404, "ROUTE_NOT_FOUND"))
        self.assertEqual(headers["connection"], "close")
        self.assertLess(took, 0.5)

    # -- methods and bodies ----------------------------------------------------------
    def test_methods_and_small_bodies(self):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            with self.subTest(method=method):
                body = json.dumps({"method": method, "text": "é"}).encode()
                info, _ = echo(self.port, method, "/customers/C1/orders",
                               body=body, headers={"Content-Type": "application/json"})
                self.assertEqual(info["method"], method)
                self.assertEqual(info["body"], body.decode())
                self.assertEqual(info["headers"]["content-type"], "application/json")
                self.assertEqual(info["headers"]["content-length"], str(len(body)))
        info, _ = echo(self.port, "POST", "/raters/close", body=b"")
        self.assertEqual((info["method"], info["length"]), ("POST", 0))
        self.assertNotIn("content-type", info["headers"])  # no libcurl default added
        info, _ = echo(self.port, "DELETE", "/customers/C1")
        self.assertEqual((info["method"], info["length"]), ("DELETE", 0))
        status, headers, data = call(self.port, "HEAD", "/customers/C1")
        self.assertEqual((status, data), (200, b""))
        self.assertEqual(self.upstreams["customer"].seen[-1]["method"], "HEAD")

    def test_multi_megabyte_body_is_forwarded_intact(self):
        body = os.urandom(6 * 1024 * 1024 + 123)
        info, _ = echo(self.port, "POST", "/raters/usage-files?month=2026-01", body=body,
                       headers={"Content-Type": "application/octet-stream"}, timeout=60)
        self.assertEqual(info["upstream"], "rater")
        self.assertEqual(info["length"], len(body))
        self.assertEqual(info["sha256"], hashlib.sha256(body).hexdigest())
        self.assertEqual(info["headers"]["content-length"], str(len(body)))
        self.assertEqual(info["query"], "month=2026-01")

    def test_chunked_body_is_forwarded_chunked(self):
        parts = [os.urandom(100_000) for _ in range(25)] + [b"tail"]
        total = b"".join(parts)
        info, _ = echo(self.port, "POST", "/raters/usage-files", body=iter(parts),
                       headers={"Content-Type": "text/csv"}, timeout=60)
        self.assertTrue(info["chunked"])
        self.assertEqual(info["length"], len(total))
        self.assertEqual(info["sha256"], hashlib.sha256(total).hexdigest())
        self.assertEqual(info["headers"]["content-type"], "text/csv")

    # -- headers -----------------------------------------------------------------------
    def test_headers_forwarded_and_ids_kept(self):
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        info, headers = echo(self.port, "POST", "/billings/C1/charges", body=b'{"a":1}',
                             headers={"Content-Type": "application/json",
                                      "Accept": "application/problem+json",
                                      "Authorization": AUTH["Authorization"],
                                      "Idempotency-Key": "idem-42",
                                      "X-Request-Id": "req-abc-123",
                                      "traceparent": tp, "tracestate": "vendor=1",
                                      "Cookie": "session=nope"})
        h = info["headers"]
        self.assertEqual(h["authorization"], AUTH["Authorization"])
        self.assertEqual(h["idempotency-key"], "idem-42")
        self.assertEqual(h["accept"], "application/problem+json")
        self.assertEqual(h["content-type"], "application/json")
        self.assertEqual(h["x-request-id"], "req-abc-123")
        self.assertEqual(h["traceparent"], tp)
        self.assertEqual(h["tracestate"], "vendor=1")
        self.assertNotIn("cookie", h)
        self.assertNotIn("expect", h)
        self.assertEqual(headers["X-Request-Id"], "req-abc-123")

    def test_request_id_generated_when_absent(self):
        info, headers = echo(self.port, "GET", "/mypage/C1")
        rid = headers["X-Request-Id"]
        self.assertRegex(rid, UUID_RE)
        self.assertEqual(info["headers"]["x-request-id"], rid)
        self.assertNotIn("accept", info["headers"])  # no libcurl default */*

    def test_traceparent_generated_when_absent_or_malformed(self):
        info, _ = echo(self.port, "GET", "/settlements/2026-01")
        self.assertRegex(info["headers"]["traceparent"], TRACEPARENT_RE)
        seen = {info["headers"]["traceparent"]}
        bad = ["garbage", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
               "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
               "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
               "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
               "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"]
        for tp in bad:
            with self.subTest(traceparent=tp):
                info, _ = echo(self.port, "GET", "/settlements/2026-01",
                               headers={"traceparent": tp, "tracestate": "v=1"})
                got = info["headers"]["traceparent"]
                self.assertRegex(got, TRACEPARENT_RE)
                self.assertNotEqual(got, tp)
                self.assertNotIn("tracestate", info["headers"])
                seen.add(got)
        self.assertEqual(len(seen), len(bad) + 1, "generated trace ids repeat")

    # -- responses -----------------------------------------------------------------------
    def test_upstream_status_body_and_headers_pass_back(self):
        status, headers, data = call(self.port, "POST", "/billings/status-201/invoices",
                                     body=b"{}", headers={"Content-Type": "application/json",
                                                          "X-Request-Id": "rid-201"})
        self.assertEqual(status, 201)
        self.assertEqual(data, b"<p>answer 201</p>")
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertEqual(headers["Location"], "/billings/I-201")
        self.assertEqual(headers["Retry-After"], "7")
        self.assertEqual(headers["Content-Disposition"], 'attachment; filename="inv.html"')
        self.assertEqual(headers["WWW-Authenticate"], 'Bearer realm="bss"')
        self.assertEqual(headers["Allow"], "GET, POST")
        self.assertEqual(headers["X-Request-Id"], "rid-201")
        self.assertIsNone(headers["X-Internal-Secret"])
        for code in (204, 404, 409, 503):
            with self.subTest(status=code):
                status, headers, data = call(self.port, "GET", f"/customers/status-{code}")
                self.assertEqual(status, code)
                self.assertEqual(data, b"" if code == 204 else f"<p>answer {code}</p>".encode())
                self.assertTrue(headers["X-Request-Id"])

    def test_upstream_connections_are_reused(self):
        up = self.upstreams["mypage"]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            first, _ = echo(self.port, "GET", "/mypage/reuse/1", conn=conn)
            second, _ = echo(self.port, "GET", "/mypage/reuse/2", conn=conn)
        finally:
            conn.close()
        third, _ = echo(self.port, "GET", "/mypage/reuse/3")  # another client connection
        self.assertEqual(first["clientPort"], second["clientPort"])
        self.assertEqual(second["clientPort"], third["clientPort"])
        self.assertEqual([s["path"] for s in up.seen[-3:]],
                         ["/mypage/reuse/1", "/mypage/reuse/2", "/mypage/reuse/3"])

    def test_dead_kept_alive_connection_is_replaced(self):
        up = self.upstreams["settlement"]
        first, _ = echo(self.port, "GET", "/settlements/before")
        up.drop_connections()
        second, _ = echo(self.port, "POST", "/settlements/after", body=b'{"x":1}',
                         headers={"Content-Type": "application/json"})
        self.assertEqual(second["body"], '{"x":1}')
        self.assertNotEqual(first["clientPort"], second["clientPort"])
        third, _ = echo(self.port, "GET", "/settlements/again")
        self.assertEqual(third["clientPort"], second["clientPort"])

    def test_upstream_hanging_up_without_answer_is_502(self):
        status, headers, data = call(self.port, "GET", "/billings/drop")
        self.assertEqual(status, 502)
        self.assertEqual(json.loads(data)["code"], "UPSTREAM_UNAVAILABLE")
        self.assertTrue(headers["X-Request-Id"])

    def test_concurrent_requests(self):
        errors = []

        def worker(k):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                for i in range(15):
                    prefix, name = SERVICES[(k + i) % len(SERVICES)]
                    body = f"{k}-{i}".encode() * (1 + i * 500)
                    info, headers = echo(self.port, "POST", f"{prefix}/c{k}/{i}", body=body,
                                         headers={"X-Request-Id": f"c-{k}-{i}"}, conn=conn)
                    if (info["upstream"], info["length"], headers["X-Request-Id"]) != \
                            (name, len(body), f"c-{k}-{i}"):
                        errors.append((k, i, info["upstream"], info["length"]))
            except Exception as exc:
                errors.append((k, repr(exc)))
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])

    def test_metrics_and_access_log(self):
        echo(self.port, "GET", "/customers/metrics-probe", headers={"X-Request-Id": "rid-log-1"})
        status, _, data = call(self.port, "GET", "/metrics")
        text = data.decode()
        self.assertEqual(status, 200)
        self.assertRegex(text, r'bss_gateway_upstream_requests_total\{upstream="customer",'
                               r'status="200"\} [1-9]')
        self.assertIn('bss_gateway_upstream_duration_seconds_count{upstream="customer"}', text)

        def logged():
            for line in self.procs.log_of("gw").splitlines():
                if '"requestId":"rid-log-1"' in line and '"upstream":"customer"' in line:
                    return json.loads(line)
            return None

        entry = wait_until(logged, timeout=5, what="the access log line")
        self.assertEqual((entry["status"], entry["method"]), (200, "GET"))


class GatewayFailures(GatewayBase):
    """A gateway with a 300 ms upstream timeout, a 1 MiB body cap and the
    settlement upstream pointing at a port nobody listens on."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.dead_port = free_port()
            cls.port = cls.start_gateway("gw-fail", {
                "BSS_GATEWAY_UPSTREAM_TIMEOUT_MS": "300",
                "BSS_GATEWAY_MAX_BODY_BYTES": str(1024 * 1024),
                "BSS_UPSTREAM_SETTLEMENT": f"http://127.0.0.1:{cls.dead_port}",
            })
        except Exception:
            cls.tearDownClass()
            raise

    def assert_problem(self, status, headers, data, want_status, code, rid=None):
        self.assertEqual(status, want_status, data[:300])
        self.assertEqual(headers["Content-Type"], "application/problem+json")
        problem = json.loads(data)
        self.assertEqual(problem["code"], code)
        self.assertEqual(problem["status"], want_status)
        self.assertTrue(headers["X-Request-Id"])
        self.assertEqual(problem["requestId"], headers["X-Request-Id"])
        if rid is not None:
            self.assertEqual(headers["X-Request-Id"], rid)

    def test_upstream_down_is_502(self):
        status, headers, data = call(self.port, "GET", "/settlements/2026-01",
                                     headers={"X-Request-Id": "rid-down"})
        self.assert_problem(status, headers, data, 502, "UPSTREAM_UNAVAILABLE", "rid-down")
        status, headers, data = call(self.port, "POST", "/settlements/run", body=b"{}",
                                     headers={"Content-Type": "application/json"})
        self.assert_problem(status, headers, data, 502, "UPSTREAM_UNAVAILABLE")

    def test_slow_upstream_is_504(self):
        t0 = time.monotonic()
        status, headers, data = call(self.port, "GET", "/billings/slow/1",
                                     headers={"X-Request-Id": "rid-slow"})
        elapsed = time.monotonic() - t0
        self.assert_problem(status, headers, data, 504, "UPSTREAM_TIMEOUT", "rid-slow")
        self.assertLess(elapsed, 4.0)
        # a fast request right after still works
        info, _ = echo(self.port, "GET", "/billings/fast")
        self.assertEqual(info["upstream"], "billing")

    def test_body_over_cap_is_413(self):
        head = (b"POST /raters/usage-files HTTP/1.1\r\nHost: gw\r\nX-Request-Id: rid-413\r\n"
                b"Content-Type: text/csv\r\nContent-Length: 2000000\r\n\r\n")
        status, headers, data = raw_exchange(self.port, head)
        self.assertEqual(status, 413)
        self.assertEqual(headers["x-request-id"], "rid-413")
        self.assertEqual(json.loads(data)["code"], "BODY_TOO_LARGE")
        n_before = len(self.upstreams["rater"].seen)

        # chunked: the cap is noticed while streaming
        head = (b"POST /raters/usage-files HTTP/1.1\r\nHost: gw\r\nX-Request-Id: rid-413c\r\n"
                b"Content-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n"
        status, headers, data = raw_exchange(self.port, head, [chunk] * 24 + [b"0\r\n\r\n"])
        self.assertEqual(status, 413)
        self.assertEqual(headers["x-request-id"], "rid-413c")
        self.assertEqual(json.loads(data)["code"], "BODY_TOO_LARGE")

        # a body just under the cap passes
        body = os.urandom(1024 * 1024 - 10)
        info, _ = echo(self.port, "POST", "/raters/usage-files", body=body, timeout=30)
        self.assertEqual(info["sha256"], hashlib.sha256(body).hexdigest())
        self.assertGreater(len(self.upstreams["rater"].seen), n_before)


class GatewayLifecycle(GatewayBase):
    def test_sigterm_exits_0_and_frees_the_port(self):
        port = self.start_gateway("gw-term")
        info, _ = echo(port, "GET", "/customers/before-stop")
        self.assertEqual(info["upstream"], "customer")
        proc = self.procs.procs["gw-term"]
        proc.terminate()
        wait_until(lambda: proc.poll() is not None, timeout=15, what="the gateway to exit")
        self.assertEqual(proc.returncode, 0, self.procs.log_of("gw-term"))
        self.assertIn('"msg":"stopped"', self.procs.log_of("gw-term"))
        self.assertFalse(port_accepts(port))
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", port))
            s.listen()

    def test_sigterm_lets_the_in_flight_request_finish(self):
        port = self.start_gateway("gw-drain")
        up = self.upstreams["customer"]
        result = {}

        def client():
            try:
                result["response"] = call(port, "GET", "/customers/hold/1", timeout=20)
            except Exception as exc:  # reported by the assertions below
                result["error"] = exc

        t = threading.Thread(target=client, daemon=True)
        t.start()
        try:
            wait_until(up.arrived.is_set, timeout=10, what="the request to reach the upstream")
            proc = self.procs.procs["gw-drain"]
            proc.terminate()
            # While the held request drains, new requests are refused.
            wait_until(lambda: call(port, "GET", "/healthz", timeout=5)[0] == 503, timeout=10,
                       what="a 503 while the gateway drains")
            status, headers, data = call(port, "GET", "/customers/late", timeout=5)
            self.assertEqual(status, 503)
            self.assertEqual(json.loads(data)["code"], "SHUTTING_DOWN")
            self.assertEqual((headers["Retry-After"], headers["Connection"]), ("1", "close"))
            self.assertIsNone(proc.poll())
            self.assertNotIn("/customers/late", [s["path"] for s in up.seen])
        finally:
            up.release.set()
        t.join(20)
        wait_until(lambda: proc.poll() is not None, timeout=15, what="the gateway to exit")
        self.assertEqual(proc.returncode, 0, self.procs.log_of("gw-drain"))
        self.assertNotIn("error", result)
        status, headers, data = result["response"]
        self.assertEqual(status, 200)
        self.assertEqual(headers["Connection"], "close")
        self.assertEqual(json.loads(data)["path"], "/customers/hold/1")
        self.assertFalse(port_accepts(port))

    def test_default_upstreams_derive_from_bss_port(self):
        for _ in range(50):
            port = free_port()
            try:
                derived = EchoServer("derived-customer", port + 1)
                break
            except OSError:
                continue
        else:
            self.skipTest("no free port pair")
        try:
            env = {"BSS_PORT": str(port), "BSS_DATA_DIR": os.path.join(self.dir, "gw-derived"),
                   "BSS_GATEWAY_DB": self.gateway_db}
            self.procs.start("gw-derived", [os.path.join(BIN_DIR, "bssiot-gateway")], env)
            wait_until(lambda: call(port, "GET", "/healthz", timeout=2)[0] == 200,
                       timeout=20, what="gw-derived /healthz")
            info, _ = echo(port, "GET", "/customers/C9")
            self.assertEqual(info["upstream"], "derived-customer")
        finally:
            self.procs.stop("gw-derived")
            derived.stop()

    def test_bad_configuration_exits_1(self):
        for env in ({"BSS_PORT": "not-a-port"}, {"BSS_UPSTREAM_RATER": "ftp://x"},
                    {"BSS_GATEWAY_UPSTREAM_TIMEOUT_MS": "0"}):
            with self.subTest(env=env):
                full = {"BSS_DATA_DIR": os.path.join(self.dir, "gw-bad"),
                        "BSS_PORT": str(free_port())}
                full.update(env)
                proc = self.procs.start("gw-bad", [os.path.join(BIN_DIR, "bssiot-gateway")], full)
                proc.wait(timeout=20)
                self.assertEqual(proc.returncode, 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

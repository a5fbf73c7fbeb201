"""A whole bssiot system for integration tests: every service a real process
on its own port, one data dir, the gateway in front, a local HTTP sink for
SMS. Python 3 standard library only."""
import http.client
import http.server
import json
import os
import secrets
import socket
import subprocess
import threading

from harness import ProcessExited, Processes, query, wait_until
from harness import free_port_block as harness_free_port_block

# Service name -> offset of its port from the gateway's (as bssiot does it).
PORT_OFFSETS = {"gateway": 0, "customer": 1, "rater": 2, "billing": 3, "settlement": 4,
                "mypage": 5}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port_block(size=len(PORT_OFFSETS)):
    """A base port such that base .. base+size-1 are all free right now."""
    return harness_free_port_block(size)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def encode_body(body, headers=None):
    """(body as bytes, a copy of headers): a dict or list as JSON with its
    Content-Type (unless one is given), a str as UTF-8."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode("utf-8")
        headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        body = body.encode("utf-8")
    return body, headers


def http_request(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP/1.1 request to 127.0.0.1:port. A dict or list body is sent as
    JSON. Returns a Response."""
    body, headers = encode_body(body, headers)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def issue_token(bin_dir, data_dir, role, customer=None, gateway_db=None):
    """A new API token from bssiot-admin, in the gateway store of data_dir
    (or gateway_db): the way an operator gets one."""
    argv = [os.path.join(bin_dir, "bssiot-admin"), "token", "create", "--role", role,
            "--label", "test"]
    if customer is not None:
        argv += ["--customer", customer]
    env = dict(os.environ, BSS_DATA_DIR=data_dir)
    if gateway_db is not None:
        env["BSS_GATEWAY_DB"] = gateway_db
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"bssiot-admin: {done.stderr.strip()}")
    return done.stdout.strip()


class SmsSink:
    """A real HTTP server on loopback that accepts SMS the way an SMS gateway
    would and remembers each one (with its Idempotency-Key)."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()
        self.fail_next = 0
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                data = self.rfile.read(length)
                with sink.lock:
                    if sink.fail_next > 0:
                        sink.fail_next -= 1
                        status = 503
                    else:
                        status = 200
                        sink.received.append({"key": self.headers.get("Idempotency-Key"),
                                              "body": json.loads(data)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/sms"

    def messages(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# The services whose event topics a Kafka-mode system creates up front.
KAFKA_STREAMS = ("customer", "rater", "billing", "settlement", "mypage")


class KafkaMock:
    """bssiot-kafka-mock (tests/kafka/kafka_mock.c): librdkafka's mock
    cluster as a process of its own; `command` drives its faults (see the
    program's header: down/up B, leader TOPIC PART B, errors APIKEY ERR N)."""

    def __init__(self, bin_dir, workdir, procs, brokers=3, partitions=1,
                 topics=None, prefix="bssiot", name="kafka"):
        topics = list(topics if topics is not None else
                      [f"{prefix}.{s}.events" for s in KAFKA_STREAMS])
        log = open(os.path.join(workdir, f"{name}.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "bssiot-kafka-mock"), "--brokers", str(brokers),
             "--partitions", str(partitions)] + topics,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            start_new_session=True)
        log.close()
        procs.adopt(name, self.proc, stop_last=True)
        self.lock = threading.Lock()
        self.bootstraps = self.proc.stdout.readline().decode().strip()
        if not self.bootstraps:
            raise RuntimeError("bssiot-kafka-mock did not start")

    def command(self, line):
        """Sends one command; returns its answer, raising on an error."""
        with self.lock:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
            answer = self.proc.stdout.readline().decode().strip()
        if not answer.startswith("ok") and line != "bootstraps":
            raise RuntimeError(f"kafka mock: {line}: {answer}")
        return answer


def test_bus():
    """The bus the tests run on: BSS_TEST_BUS (nng, the default, or kafka)."""
    return os.environ.get("BSS_TEST_BUS", "nng")


class System:
    """Starts and stops the services of one system; every process goes
    through `procs`, so it is stopped whatever happens. With BSS_TEST_BUS=kafka
    (or bus="kafka") it first starts a mock Kafka cluster (`self.kafka`) and
    runs every service on the Kafka bus; the tests stay the same."""

    def __init__(self, bin_dir, workdir, procs, extra_env=None, bus=None, kafka_partitions=1):
        self.bin_dir = bin_dir
        self.data_dir = os.path.join(workdir, "data")
        os.makedirs(self.data_dir, exist_ok=True)
        self.procs = procs
        self.port = free_port_block()
        self.extra_env = dict(extra_env or {})
        # Services answer only the gateway, which proves itself with this.
        self.internal_token = secrets.token_hex(16)
        self._operator = None
        self.bus = bus or test_bus()
        self.kafka = None
        if self.bus == "kafka":
            self.kafka = KafkaMock(bin_dir, workdir, procs, partitions=kafka_partitions)
            self.extra_env.setdefault("BSS_BUS", "kafka")
            self.extra_env.setdefault("BSS_KAFKA_BROKERS", self.kafka.bootstraps)
            # The mock broker holds an empty fetch for the whole wait (a real
            # one answers as soon as data arrives): keep hops short in tests.
            self.extra_env.setdefault("BSS_KAFKA_PROPERTY_FETCH_WAIT_MAX_MS", "10")

    def service_port(self, name):
        return self.port + PORT_OFFSETS[name]

    def env(self):
        env = {"BSS_DATA_DIR": self.data_dir, "BSS_PORT": str(self.port),
               "BSS_CATALOG": os.path.join(REPO, "config", "products.json"),
               "BSS_GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
               "BSS_INTERNAL_TOKEN": self.internal_token,
               # Tests drive one operator token hard; test_security sets its own.
               "BSS_GATEWAY_RATE_PER_S": "1000000"}
        for name, offset in PORT_OFFSETS.items():
            if offset:
                upper = name.upper()
                env[f"BSS_{upper}_LISTEN"] = f"127.0.0.1:{self.port + offset}"
                env[f"BSS_UPSTREAM_{upper}"] = f"http://127.0.0.1:{self.port + offset}"
        env.update(self.extra_env)
        return env

    def start(self, name, wait=True):
        self.procs.start(name, [os.path.join(self.bin_dir, f"bssiot-{name}")], self.env())
        if wait:
            self.wait_healthy(name)

    def start_all(self, names=("customer", "rater", "billing", "gateway"), timeout=20):
        for name in names:
            self.start(name, wait=False)
        for name in names:
            self.wait_ready(name, timeout=timeout)

    def _answers(self, name, path):
        self.procs.check_running(name)
        return http_request(self.service_port(name), "GET", path, timeout=2).status == 200

    def wait_healthy(self, name, timeout=20):
        wait_until(lambda: self._answers(name, "/healthz"),
                   timeout=timeout, what=f"{name} to answer /healthz",
                   fatal=ProcessExited)

    def wait_ready(self, name, timeout=20):
        wait_until(lambda: self._answers(name, "/readyz"),
                   timeout=timeout, what=f"{name} to be ready", fatal=ProcessExited)

    def kill9(self, name):
        self.procs.kill9(name)

    def stop(self, name):
        return self.procs.stop(name)

    def admin(self, *args):
        """Runs bssiot-admin on this system's data dir; returns its stdout."""
        done = subprocess.run([os.path.join(self.bin_dir, "bssiot-admin"), *args],
                              env=dict(os.environ, BSS_DATA_DIR=self.data_dir),
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"bssiot-admin {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def token(self, role, customer=None):
        """A new API token of this system (see bssiot-admin)."""
        return issue_token(self.bin_dir, self.data_dir, role, customer)

    def auth(self):
        """The Authorization header of the system's operator token."""
        if self._operator is None:
            self._operator = self.token("operator")
        return {"Authorization": f"Bearer {self._operator}"}

    def call(self, method, path, body=None, headers=None):
        """A request through the gateway, as the operator unless headers
        carry an Authorization of their own."""
        h = dict(self.auth())
        h.update(headers or {})
        return http_request(self.port, method, path, body, h)

    def db(self, name):
        return os.path.join(self.data_dir, f"{name}.db")

    def events(self, name, where="1", params=()):
        """(type, subject, data) of a service's log, in order."""
        return [(t, s, json.loads(d)) for t, s, d in
                query(self.db(name), f"SELECT type, subject, data FROM events WHERE {where}"
                                     " ORDER BY sequence", params)]


class SmtpSink:
    """A minimal real SMTP server on loopback (RFC 5321 subset: EHLO/HELO,
    MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps every message it accepts.
    `fail_next` makes the next N transactions fail with a 451 (temporary)."""

    def __init__(self):
        import socketserver
        self.messages = []
        self.lock = threading.Lock()
        self.fail_next = 0
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text):
                self.wfile.write((text + "\r\n").encode())
                self.wfile.flush()

            def handle(self):
                self.reply("220 bssiot-test-sink ESMTP")
                mail_from, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd[:4].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250 bssiot-test-sink")
                    elif verb == "MAIL":
                        mail_from, rcpts = cmd[10:].strip(), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd[8:].strip().strip("<>"))
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while True:
                            part = self.rfile.readline()
                            if not part or part in (b".\r\n", b".\n"):
                                break
                            if part.startswith(b".."):
                                part = part[1:]
                            data.append(part)
                        raw = b"".join(data).decode("utf-8", "replace")
                        with sink.lock:
                            if sink.fail_next > 0:
                                sink.fail_next -= 1
                                self.reply("451 try again later")
                                continue
                            sink.messages.append(SmtpSink.parse(mail_from, rcpts, raw))
                        self.reply("250 OK queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 OK")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def parse(mail_from, rcpts, raw):
        head, _, body = raw.partition("\r\n\r\n")
        headers = {}
        for line in head.split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        return {"from": mail_from, "to": rcpts, "headers": headers, "body": body}

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def received(self):
        with self.lock:
            return list(self.messages)

    def close(self):
        self.server.shutdown()
        self.server.server_close()

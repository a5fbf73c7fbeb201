"""Shared helpers of bssiot's integration tests (Python 3 standard library only).

Processes started through `Processes` are always stopped: on normal exit, on
an exception, and on SIGTERM/SIGINT of the test itself. Waiting is done by
polling a condition against a deadline (`wait_until`), never by sleeping a
fixed time and hoping.
"""
import atexit
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_free(port):
    """Whether a server could listen on 127.0.0.1:port now. SO_REUSEADDR as
    the services' listeners use it: connections in TIME_WAIT (thousands
    after the Kafka and chaos tests) do not make a port busy for a
    listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_block(size=1):
    """A base port such that base .. base+size-1 are all free right now.

    Taken below the kernel's ephemeral range on purpose: a port handed out
    by bind(0) is also what the next outgoing connection (a Kafka client, a
    test's own HTTP call) or a mock broker of a test running in parallel may
    take between the check here and the service's own bind, which then
    fails. Below the range only another test's listener can collide, and
    the random choice over ~20k ports makes that rare."""
    rng = random.SystemRandom()
    high = min(_ephemeral_low(), 65000) - size
    low = 10000 if high > 12000 else 1024
    for _ in range(500):
        base = rng.randrange(low, high)
        if all(port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError("no block of free ports")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_port_block(1)


def wait_until(condition, timeout=20.0, interval=0.02, what="condition", fatal=()):
    """Polls condition() until it returns a truthy value, which is returned.
    Raises AssertionError naming `what` when the deadline passes; an
    exception of a `fatal` type raised by condition() ends the wait at once."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except fatal:
            raise
        except Exception as exc:  # the thing polled may not exist yet
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def query(db_path, sql, params=()):
    """Runs a read-only query against a service's SQLite file (WAL readers
    never block the writer) and returns all rows."""
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


class ProcessExited(AssertionError):
    """A process a test waits on has exited."""


class Processes:
    """Starts processes and guarantees they are all gone afterwards."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = {}
        self.stop_last = set()  # infrastructure (a broker) the others need to stop cleanly
        atexit.register(self.stop_all)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.stop_all()
        raise SystemExit(128 + signum)

    def start(self, name, argv, env=None):
        """Starts argv as `name`, output appended to <workdir>/<name>.log."""
        if name in self.procs and self.procs[name].poll() is None:
            raise RuntimeError(f"{name} is already running")
        full_env = dict(os.environ)
        full_env.update(env or {})
        log = open(os.path.join(self.workdir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs[name] = proc
        return proc

    def check_running(self, name):
        """Raises ProcessExited, with the end of its log, when `name` has
        exited (a wait on it could never succeed)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            tail = "\n".join(self.log_of(name).splitlines()[-15:])
            raise ProcessExited(f"{name} exited with status {proc.returncode}:\n{tail}")

    def kill9(self, name):
        proc = self.procs[name]
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)

    def stop(self, name, timeout=15.0):
        """SIGTERM, then SIGKILL if it has not exited within timeout. Returns
        the exit status."""
        proc = self.procs[name]
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def adopt(self, name, proc, stop_last=False):
        """Takes a process started elsewhere (e.g. with pipes) into the set
        stopped by stop_all; stop_last ones are stopped after all others."""
        self.procs[name] = proc
        if stop_last:
            self.stop_last.add(name)

    def stop_all(self):
        names = [n for n in self.procs if n not in self.stop_last]
        names += [n for n in self.procs if n in self.stop_last]
        for name in names:
            try:
                self.stop(name, timeout=5.0)
            except Exception:
                pass

    def log_of(self, name):
        path = os.path.join(self.workdir, f"{name}.log")
        if not os.path.exists(path):
            return ""
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")


class Workdir:
    """A temporary directory, removed on exit unless BSS_KEEP_TEST_DIRS=1.
    Kept short so that ipc:// socket paths stay under the 108-byte limit."""

    def __init__(self, prefix="bss-"):
        self.path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        if os.environ.get("BSS_KEEP_TEST_DIRS") != "1":
            shutil.rmtree(self.path, ignore_errors=True)
        return False

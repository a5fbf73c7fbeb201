"""Shared helpers of bssiot's integration tests (Python 3 standard library only).

Processes started through `Processes` are always stopped: on normal exit, on
an exception, and on SIGTERM/SIGINT of the test itself. Waiting is done by
polling a condition against a deadline (`wait_until`), never by sleeping a
fixed time and hoping.
"""
import atexit
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout=20.0, interval=0.02, what="condition"):
    """Polls condition() until it returns a truthy value, which is returned.
    Raises AssertionError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
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

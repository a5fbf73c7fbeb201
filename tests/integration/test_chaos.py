"""Chaos: the same scripted month runs twice, each on a fresh system (own temp
dir, own ports, every service a real process, a local SMTP sink): once
without faults, once while a helper thread kill -9's a random service every
few hundred milliseconds and restarts it. Everything the month produced must
be equal: charges, invoices, the settlement, the mails, the lines and their
orders, the rated usage and the "my page" read model.

The workload goes through the gateway only (System.call). A request that
fails because a service is down (502/503/504, a dropped connection) is
retried with the same Idempotency-Key. The retries are also safe by
construction, so they hold whether or not the gateway honours the key:
lines are opened with an explicit svcContNo (a retried open that answers
409 LINE_EXISTS is a success once the line is there), an order is retried
only after the line's orders show it did not go through, a usage file sent
twice only adds duplicates, and AU close is idempotent.

The workload waits at each phase boundary (orders settled, the rater knows
every status change) exactly as an operator's script would, so both runs
live the same business history; faults are injected throughout, including
during AU close, charging, invoicing, mailing and settlement.

The chaos seed is printed; BSS_CHAOS_SEED=<n> (or --seed) replays the same
random choices (timing on a loaded machine still varies). BSS_CHAOS_KEEP=1
keeps both systems' directories. docs/RELIABILITY.md has the details and
the figures."""
import argparse
import datetime
import difflib
import http.client
import json
import os
import random
import re
import socket
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from harness import Processes, Workdir, query, wait_until  # noqa: E402
from system import PORT_OFFSETS, SmtpSink, System  # noqa: E402

BIN_DIR = None
SEED = None
PERIOD = "2026-10"
MB = 1048576
BUSINESS = "business@example.com"
HEADER = "recordId,svcContNo,apnCd,usageStart,bytes"
# Answers that mean "nothing was done, or we cannot tell: ask again".
RETRYABLE_STATUS = (429, 502, 503, 504)
# Keys whose values differ between two runs by design (generated ids, clock
# readings); everything else must be equal.
VOLATILE_KEYS = {"asOf", "issuedAt", "completedAt", "orderId", "createdAt", "updatedAt",
                 "calculatedAt", "sentAt"}
REQUEST_DEADLINE_S = 90.0
KILLS_PER_PHASE = 3
OPENS_PER_PHASE = 4
ORDERS_PER_PHASE = 4
SERVICE_OF_PREFIX = {"customers": "customer", "raters": "rater", "billings": "billing",
                     "settlements": "settlement", "mypage": "mypage"}
PHASE_DEADLINE_S = 120.0


def kst(day, time_of_day="00:00:00", month=10):
    return f"2026-{month:02d}-{day:02d}T{time_of_day}+09:00"


# ---- the scripted month -----------------------------------------------------
# 4 customers (CH-D has no email, so no invoice mail), 24 lines over the
# three products. Lines 0-17 are open before October's orders; 18-23 open
# during or after October and get no orders.
PRODUCTS = ("IOT-BASIC", "IOT-PLUS", "IOT-UNLIMITED")
CUSTOMERS = ("CH-A", "CH-B", "CH-C", "CH-D")
LINE_COUNT = 24
LATE_OPENINGS = {18: kst(3, "12:00:00"), 19: kst(10, "08:30:00"), 20: kst(17),
                 21: kst(24, "18:00:00"), 22: kst(31, "23:59:59"),
                 23: kst(2, "09:00:00", month=11)}


def svc_of(i):
    return f"CHAOS-{i + 1:02d}"


def apn_of(i):
    return ("iot.fleet", "iot.meter", "iot.vend")[i % 3]


def line_plan():
    """[(svcContNo, body of POST /customers)] in opening order."""
    plan = []
    for i in range(LINE_COUNT):
        customer = CUSTOMERS[i % len(CUSTOMERS)]
        opened = LATE_OPENINGS.get(i, kst(1 + (i * 5) % 28, month=9) if i % 2 else kst(1))
        body = {"customerId": customer, "svcContNo": svc_of(i),
                "productCd": PRODUCTS[i % len(PRODUCTS)], "apnCd": apn_of(i),
                "effectiveAt": opened, "phone": f"010-5555-{i:04d}"}
        if customer != "CH-D":
            body["email"] = f"{customer.lower()}@example.com"
        plan.append((svc_of(i), body))
    return plan


def order_rounds():
    """Rounds of (svcContNo, type, effectiveAt); within a round every line
    has at most one order, and each line's orders are in time order."""
    first, second, third = [], [], []
    for i in range(18):
        svc, kind = svc_of(i), i % 6
        if kind == 0:      # suspended a while, then resumed
            first.append((svc, "SUSPEND", kst(5 + i % 4, "10:00:00")))
            second.append((svc, "RESUME", kst(18 + i % 3, "15:30:00")))
        elif kind == 1:    # terminated, terminated again (rejected), one restored
            first.append((svc, "TERMINATE", kst(12, "09:00:00")))
            second.append((svc, "TERMINATE", kst(14, "09:00:00")))
            if i == 1:
                third.append((svc, "RESTORE", kst(26, "11:00:00")))
        elif kind == 2:    # suspended, then terminated while suspended
            second.append((svc, "SUSPEND", kst(20)))
            third.append((svc, "TERMINATE", kst(27, "23:00:00")))
        elif kind == 3:    # suspended before October, resumed in it
            first.append((svc, "SUSPEND", kst(25, "00:00:00", month=9)))
            third.append((svc, "RESUME", kst(2 + i % 5, "07:00:00")))
        # kinds 4 and 5 stay ACTIVE all month
    return [first, second, third]


def usage_files():
    """[(name, csv text)]: the second file repeats some record ids of the
    first (DUPLICATE); some records use another APN (APN_MISMATCH), fall in
    a suspended stretch (LINE_NOT_ACTIVE) or in the next period."""
    first, second = [], []
    for i in range(LINE_COUNT):
        svc, apn = svc_of(i), apn_of(i)
        size = (37 + 61 * i) * MB + i * 4099          # some far over the included data
        first.append((f"chaos-{i}-a", svc, apn, kst(21, "08:00:00"), size))
        first.append((f"chaos-{i}-b", svc, apn, kst(6, "13:00:00"), 3 * MB + i))
        if i % 4 == 0:
            first.append((f"chaos-{i}-apn", svc, "iot.elsewhere", kst(21, "09:00:00"), 9 * MB))
        second.append((f"chaos-{i}-c", svc, apn, kst(30, "22:00:00"), (i % 5) * 150 * MB + 1))
        if i % 3 == 0:
            second.append((f"chaos-{i}-a", svc, apn, kst(21, "08:00:00"), size))  # duplicate
        if i % 5 == 0:
            second.append((f"chaos-{i}-nov", svc, apn, kst(3, "03:00:00", month=11), 5 * MB))
    to_text = lambda rows: "\n".join([HEADER] + [",".join(str(f) for f in r)
                                                 for r in rows]) + "\n"
    return [("chaos-october-1.csv", to_text(first)), ("chaos-october-2.csv", to_text(second))]


# ---- faults -----------------------------------------------------------------
class Chaos(threading.Thread):
    """kill -9's a victim every 150-600 ms (after the previous one answers
    /healthz again) and restarts it at once; mostly the service a workload
    request is waiting on, else one at random. Never leaves a service down:
    a kill is always followed by a restart before the loop looks at the stop
    flag again. Kills are counted per victim and per workload phase."""

    def __init__(self, system, victims, seed):
        super().__init__(daemon=True)
        self.system = system
        self.victims = list(victims)
        self.rng = random.Random(seed)
        self.stop_flag = threading.Event()
        self.phase_started = threading.Event()
        self.kills = {name: 0 for name in self.victims}
        self.phase = "start"
        self.by_phase = {}
        self.workload = None  # set once the workload exists
        self.restarting = False  # between a kill and the victim's /healthz
        self.targeted = 0
        self.crashes = []  # services that died without being killed
        self.error = None

    def run(self):
        try:
            while not self.stop_flag.is_set():
                # A new phase cuts the wait short: the next kill then lands a
                # few ms into the phase's requests instead of after them.
                if self.phase_started.wait(self.rng.uniform(0.15, 0.6)):
                    self.phase_started.clear()
                    self.stop_flag.wait(self.rng.uniform(0.0, 0.04))
                if self.stop_flag.is_set():
                    break
                self.restart_the_fallen()
                self.restarting = True
                victim = self.rng.choice(self.victims)
                # Mostly aim at the service a workload request is waiting on
                # right now: the narrow windows (committed, not yet answered)
                # are the interesting ones, and a random victim rarely hits them.
                busy = self.workload.in_flight if self.workload is not None else None
                if busy in self.victims and self.rng.random() < 0.7:
                    victim = busy
                    self.targeted += 1
                self.system.kill9(victim)
                self.kills[victim] += 1
                self.by_phase[self.phase] = self.by_phase.get(self.phase, 0) + 1
                self.system.start(victim, wait=False)
                self.system.wait_healthy(victim, timeout=60)
                self.restarting = False
        except Exception as exc:  # reported by the test thread
            self.error = exc

    def restart_the_fallen(self):
        """A victim that exited without being killed here crashed on its
        own: noted with the end of its log (a sanitizer report, say), then
        restarted so the run goes on to show what else follows."""
        for name in self.victims:
            proc = self.system.procs.procs.get(name)
            if proc is not None and proc.poll() is not None:
                self.crashes.append(f"{name} exited with status {proc.returncode} on its own;"
                                    f" its log ends:\n{log_tail(self.system, name)}")
                self.system.start(name, wait=False)
                self.system.wait_healthy(name, timeout=60)

    def enter_phase(self, name):
        """Marks the start of a workload phase. The previous phase is held
        until it has seen KILLS_PER_PHASE kills, so that on a fast machine,
        where a phase takes less than a kill cycle, every phase is still hit
        (and the events it caused are still in flight between services)."""
        if self.phase != "start":
            wait_until(lambda: self.error is not None or
                       (self.by_phase.get(self.phase, 0) >= KILLS_PER_PHASE and
                        not self.restarting),
                       timeout=PHASE_DEADLINE_S, interval=0.05,
                       what=f"{KILLS_PER_PHASE} kills during {self.phase}")
        self.phase = name
        self.phase_started.set()

    def stop(self):
        self.stop_flag.set()
        self.phase_started.set()
        self.join(timeout=120)
        if self.is_alive():
            raise AssertionError("the chaos thread did not stop")
        if self.error is not None:
            raise AssertionError(f"the chaos thread failed: {self.error!r}")


# ---- the workload -----------------------------------------------------------
class Workload:
    """Drives one system through the scripted month via the gateway."""

    def __init__(self, system, chaos=None):
        self.system = system
        self.chaos = chaos
        self.retries = 0
        self.calls = 0
        self.in_flight = None  # the service the current request is for

    def phase(self, name):
        if self.chaos is not None:
            self.chaos.enter_phase(name)

    def call(self, method, path, body=None, headers=None, key=None):
        """One logical request: repeated with the same Idempotency-Key while
        the answer says a service was unreachable. Returns the last Response."""
        headers = dict(headers or {})
        if method == "POST":
            headers["Idempotency-Key"] = key or str(uuid.uuid4())
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        delay = 0.05
        while True:
            self.calls += 1
            try:
                resp = self.send(method, path, body, headers)
                retry = resp.status in RETRYABLE_STATUS or (
                    resp.status == 409 and _code(resp) == "IDEMPOTENCY_KEY_IN_PROGRESS")
                if not retry:
                    return resp
                last = resp
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timeout
                last = exc
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: still failing after "
                                     f"{REQUEST_DEADLINE_S}s: {last!r}")
            self.retries += 1
            time.sleep(delay)  # back-off between retries, not synchronisation
            delay = min(delay * 2, 0.5)

    def send(self, method, path, body, headers):
        """One attempt through the gateway, noting which service it is for."""
        self.in_flight = SERVICE_OF_PREFIX.get(path.split("/")[1].split("?")[0])
        try:
            return self.system.call(method, path, body, headers)
        finally:
            self.in_flight = None

    def get_json(self, path):
        resp = self.call("GET", path)
        if resp.status != 200:
            raise AssertionError(f"GET {path}: {resp}")
        return resp.json()

    # -- lines and orders --------------------------------------------------
    def open_line(self, svc, body):
        resp = self.call("POST", "/customers", body)
        if resp.status == 201:
            return
        if resp.status == 409 and _code(resp) == "LINE_EXISTS":
            # A retry of an open that went through: the line must be ours.
            line = self.get_json(f"/customers/{svc}")
            if (line["customerId"], line["productCd"]) == (body["customerId"], body["productCd"]):
                return
        raise AssertionError(f"open {svc}: {resp}")

    def find_order(self, svc, type_, effective_at):
        want = _instant(effective_at)
        for item in self.get_json(f"/customers/{svc}/orders")["items"]:
            if item["type"] == type_ and _instant(item["effectiveAt"]) == want:
                return item
        return None

    def place_order(self, svc, type_, effective_at):
        """Places the order once; returns its orderId."""
        key = str(uuid.uuid4())
        body = {"type": type_, "effectiveAt": effective_at}
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        while True:
            try:
                resp = self.send("POST", f"/customers/{svc}/orders", body,
                                 {"Idempotency-Key": key})
                self.calls += 1
                if resp.status == 202:
                    return resp.json()["orderId"]
                if resp.status not in RETRYABLE_STATUS and not (
                        resp.status == 409 and _code(resp) == "IDEMPOTENCY_KEY_IN_PROGRESS"):
                    raise AssertionError(f"{type_} {svc} at {effective_at}: {resp}")
            except (OSError, http.client.HTTPException):
                pass
            # The answer was lost: the order may have been taken. Look before
            # asking again, so that a retry never places it twice.
            self.retries += 1
            found = self.find_order(svc, type_, effective_at)
            if found is not None:
                return found["orderId"]
            if time.monotonic() > deadline:
                raise AssertionError(f"{type_} {svc}: still failing after {REQUEST_DEADLINE_S}s")
            time.sleep(0.05)  # back-off between retries, not synchronisation

    def settle_orders(self, placed):
        """Waits until none of the placed orders is PENDING any more."""
        def settled():
            for svc, order_id in placed:
                resp = self.call("GET", f"/customers/{svc}/orders/{order_id}")
                if resp.status != 200 or resp.json()["status"] == "PENDING":
                    return False
            return True
        wait_until(settled, timeout=PHASE_DEADLINE_S, interval=0.1, what="every order to settle")

    def wait_rater_knows_everything(self):
        """Usage is rated against the rater's view of each line (unknown
        line, not active), and AU close moves the lines the rater knows:
        before either, the rater must have applied every line and every
        status change the customer service made."""
        def known():
            for i in range(LINE_COUNT):
                svc = svc_of(i)
                orders = self.get_json(f"/customers/{svc}/orders")["items"]
                changes = sum(1 for o in orders if o["status"] == "COMPLETED")
                resp = self.call("GET", f"/raters/{svc}")
                if resp.status != 200 or len(resp.json().get("statusHistory", [])) != changes:
                    return False
            return True
        wait_until(known, timeout=PHASE_DEADLINE_S, interval=0.1,
                   what="the rater to know every line and status change")

    # -- the month ---------------------------------------------------------
    def run_month(self):
        """Lines, orders, usage and AU close; returns once the close is
        accepted (the month end then runs on its own)."""
        plan = line_plan()
        for n in range(0, len(plan), OPENS_PER_PHASE):
            self.phase(f"opens-{n // OPENS_PER_PHASE + 1}")
            for svc, body in plan[n:n + OPENS_PER_PHASE]:
                self.open_line(svc, body)
        for n, orders in enumerate(order_rounds(), 1):
            for m in range(0, len(orders), ORDERS_PER_PHASE):
                self.phase(f"orders-{n}.{m // ORDERS_PER_PHASE + 1}")
                placed = [(svc, self.place_order(svc, type_, at))
                          for svc, type_, at in orders[m:m + ORDERS_PER_PHASE]]
                self.settle_orders(placed)
        self.wait_rater_knows_everything()
        for n, (name, text) in enumerate(usage_files(), 1):
            self.phase(f"usage-{n}")
            resp = self.call("POST", f"/raters/usage-files?name={name}", text,
                             {"Content-Type": "text/csv"})
            if resp.status != 200:
                raise AssertionError(f"usage file {name}: {resp}")
        self.phase("month-end")
        resp = self.call("POST", "/raters/au-close", {"period": PERIOD})
        if resp.status not in (200, 202):
            raise AssertionError(f"AU close: {resp}")

    def settlement_completed(self):
        resp = self.call("GET", f"/settlements/{PERIOD}")
        return resp.status == 200 and resp.json()["status"] == "COMPLETED"


def _code(resp):
    try:
        return resp.json().get("code")
    except ValueError:
        return None


def _instant(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---- one whole run ----------------------------------------------------------
def services_in(bin_dir):
    names = ["customer", "rater", "billing", "settlement"]
    if os.path.exists(os.path.join(bin_dir, "bssiot-mypage")):
        names.append("mypage")
    return names


def port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def port_block_below_ephemeral(size=len(PORT_OFFSETS)):
    """A base port whose block lies below the kernel's ephemeral range, or
    None. While a killed service is down its port is free; inside the
    ephemeral range any outgoing connection or bind(0) on the machine could
    take it, and the restart would fail for a reason that is not ours."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    rng = random.Random()  # not the chaos seed: ports are not part of a replay
    for _ in range(200):
        base = rng.randrange(max(1024, low - 12000), low - size)
        if all(port_free(base + i) for i in range(size)):
            return base
    return None


def quiescent(system, names):
    """True when every consumer has applied every event of every stream it has
    seen and no notification is waiting to be sent (read from the SQLite
    files, read-only)."""
    heads = {name: query(system.db(name), "SELECT COALESCE(MAX(sequence), 0) FROM events")[0][0]
             for name in names}
    for name in names:
        for stream, position in query(system.db(name), "SELECT stream, MAX(position) FROM inbox"
                                                       " GROUP BY stream"):
            if stream in heads and position < heads[stream]:
                return False
        tables = [r[0] for r in query(system.db(name), "SELECT name FROM sqlite_master"
                                                       " WHERE name = 'notifications'")]
        if tables and query(system.db(name), "SELECT COUNT(*) FROM notifications"
                                             " WHERE status = 'PENDING'")[0][0]:
            return False
    return True


def log_tail(system, name, lines=25):
    return "\n".join(system.procs.log_of(name).splitlines()[-lines:])


def fallen(system, names):
    """Services that are not running, with the end of their logs."""
    out = []
    for name in names:
        proc = system.procs.procs.get(name)
        if proc is None or proc.poll() is not None:
            status = None if proc is None else proc.returncode
            out.append(f"{name} is not running (exit status {status}); its log ends:\n"
                       f"{log_tail(system, name)}")
    return out


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?")
AMOUNT_ROW = re.compile(r"(Subtotal|VAT \(10%\)|VAT|Total due|Total|Invoices|Lines)\s+"
                        r"(-?[\d,]+(?: KRW)?|[^\s\d]?-?[\d,]+)")


def mail_view(message):
    """A mail as compared: recipient, subject, Message-ID, the amounts (for a
    readable diff) and the whole text without markup and timestamps."""
    text = re.sub(r"<style.*?</style>", " ", message["body"], flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    text = TIMESTAMP.sub("<time>", " ".join(text.split()))
    amounts = " ".join(f"{k}={v}" for k, v in AMOUNT_ROW.findall(text))
    return {"to": ",".join(message["to"]), "subject": message["headers"].get("subject", ""),
            "messageId": message["headers"].get("message-id", ""), "amounts": amounts,
            "text": text}


def run_once(seed=None):
    """Runs the month on a fresh system, with kill -9 chaos when seed is not
    None. Returns (snapshot, facts)."""
    keep = os.environ.get("BSS_CHAOS_KEEP") == "1"
    workdir = Workdir(prefix="bss-chaos-")
    procs = Processes(workdir.path)
    smtp = SmtpSink()
    victims = services_in(BIN_DIR)
    system = System(BIN_DIR, workdir.path, procs, {
        "BSS_SMTP_URL": smtp.url, "BSS_SETTLEMENT_MAIL_TO": BUSINESS,
        "BSS_GATEWAY_UPSTREAM_TIMEOUT_MS": "15000", "BSS_HTTP_DRAIN_MS": "2000"}, bus="nng")
    system.port = port_block_below_ephemeral() or system.port
    chaos = None
    started = time.monotonic()
    try:
        system.start_all(victims + ["gateway"], timeout=60)
        if seed is not None:
            chaos = Chaos(system, victims, seed)
            chaos.start()
        workload = Workload(system, chaos)
        if chaos is not None:
            chaos.workload = workload
        workload.run_month()
        wait_until(workload.settlement_completed, timeout=PHASE_DEADLINE_S, interval=0.2,
                   what="settlement to complete")
        expected_mails = 1 + sum(
            1 for c in CUSTOMERS for inv in workload.get_json(
                f"/billings/invoices?customerId={c}&period={PERIOD}")["items"]
            if inv.get("email"))
        wait_until(lambda: len({m["headers"].get("message-id") for m in smtp.received()})
                   >= expected_mails, timeout=PHASE_DEADLINE_S, interval=0.1,
                   what=f"{expected_mails} mails")
        # Restarts after the month is done must not send or apply anything twice.
        workload.phase("after")
        if chaos is not None:
            workload.phase("end")
            chaos.stop()
            chaos.restart_the_fallen()
        down = fallen(system, victims + ["gateway"])
        if down:
            raise AssertionError("after the month:\n" + "\n".join(down))
        for name in victims:
            system.wait_ready(name, timeout=60)
        wait_until(lambda: quiescent(system, victims), timeout=PHASE_DEADLINE_S, interval=0.1,
                   what="every consumer to catch up and every notification to be sent")
        snapshot = take_snapshot(workload, smtp, "mypage" in victims)
        dead = {name: query(system.db(name), "SELECT COUNT(*) FROM dead_letters")[0][0]
                for name in victims}
        # A clean stop after all this must still be clean (and, under ASan,
        # leak-free: a leak makes the exit status 86).
        statuses = {name: system.stop(name) for name in victims + ["gateway"]}
        facts = {"kills": dict(chaos.kills) if chaos else {},
                 "crashes": list(chaos.crashes) if chaos else [],
                 "by_phase": dict(chaos.by_phase) if chaos else {},
                 "targeted": chaos.targeted if chaos else 0, "requests": workload.calls,
                 "retries": workload.retries, "dead_letters": dead, "exit": statuses,
                 "seconds": round(time.monotonic() - started, 1), "dir": workdir.path}
        return snapshot, facts
    except AssertionError as exc:
        # Say what the faults left behind, not only what the workload saw.
        notes = fallen(system, victims + ["gateway"])
        if chaos is not None:
            notes = chaos.crashes + notes
            if chaos.error is not None:
                notes.append(f"the chaos thread failed: {chaos.error!r}")
            notes.append(f"kills so far: {chaos.kills}, phase {chaos.phase}")
        raise AssertionError(f"{exc}\n" + "\n".join(notes)) from None
    finally:
        if chaos is not None and chaos.is_alive():
            chaos.stop_flag.set()
            chaos.join(timeout=60)
        procs.stop_all()
        smtp.close()
        if not keep:
            workdir.__exit__(None, None, None)


def take_snapshot(workload, smtp, with_mypage):
    """Everything the month produced, without ids and clock readings."""
    get = workload.get_json
    snap = {"charges": {}, "invoices": {}, "lines": {}, "usage": {}, "mypage": {}}
    for c in get(f"/billings/charges?period={PERIOD}")["items"]:
        snap["charges"][c["svcContNo"]] = strip_volatile(c)
    for customer in CUSTOMERS:
        invoices = get(f"/billings/invoices?customerId={customer}&period={PERIOD}")["items"]
        for inv in invoices:
            inv["lines"] = sorted(inv["lines"], key=lambda x: x["svcContNo"])
        snap["invoices"][customer] = strip_volatile(invoices)
        for line in get(f"/customers?customerId={customer}&size=100")["items"]:
            svc = line["svcContNo"]
            orders = get(f"/customers/{svc}/orders")["items"]
            line["orders"] = [strip_volatile(o) for o in orders]
            snap["lines"][svc] = strip_volatile(line)
            snap["usage"][svc] = strip_volatile(get(f"/raters/{svc}/usage?period={PERIOD}"))
        if with_mypage:
            snap["mypage"][customer] = strip_volatile(get(f"/mypage/{customer}"))
    snap["settlement"] = strip_volatile(get(f"/settlements/{PERIOD}"))
    views = [mail_view(m) for m in smtp.received()]
    # Mail is delivered at least once: a crash between the server's
    # acceptance and the queue's record resends with the same Message-ID,
    # which the receiver drops (docs/ARCHITECTURE.md, Outbound
    # notifications). Distinct messages to the same place are duplicates.
    by_id = {}
    resent = 0
    for v in views:
        if v["messageId"] in by_id:
            resent += 1
            if by_id[v["messageId"]] != v:
                raise AssertionError(f"a resent mail differs from the first: {v['messageId']}")
        by_id[v["messageId"]] = v
    snap["mails"] = sorted(by_id.values(), key=lambda v: (v["to"], v["subject"]))
    snap["mail_resends"] = resent
    return snap


# ---- comparison ---------------------------------------------------------------
def differences(a, b, path="", out=None):
    """Readable differences between two JSON-like values."""
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in a:
                out.append(f"{where}: only in the chaos run: {_short(b[key])}")
            elif key not in b:
                out.append(f"{where}: missing in the chaos run (fault-free: {_short(a[key])})")
            else:
                differences(a[key], b[key], where, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items fault-free, {len(b)} in the chaos run:\n"
                       + _unified(a, b))
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                differences(x, y, f"{path}[{i}]", out)
    elif isinstance(a, str) and isinstance(b, str) and len(a) > 200 and a != b:
        out.append(f"{path}: texts differ:\n" + "\n".join(difflib.unified_diff(
            a.split(" "), b.split(" "), "fault-free", "chaos", n=3, lineterm="")))
    elif a != b:
        out.append(f"{path}: fault-free {_short(a)} != chaos {_short(b)}")
    return out


def _short(value):
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 300 else text[:300] + "..."


def _unified(a, b):
    dump = lambda v: [json.dumps(x, sort_keys=True)[:300] for x in v]
    return "\n".join(difflib.unified_diff(dump(a), dump(b), "fault-free", "chaos", lineterm=""))


class ChaosEqualsFaultFree(unittest.TestCase):
    def test_month_under_kill9_equals_the_fault_free_month(self):
        seed = SEED if SEED is not None else random.randrange(1, 2**31)
        print(f"chaos seed: {seed} (replay with BSS_CHAOS_SEED={seed})", flush=True)
        clean, clean_facts = run_once(None)
        print(f"fault-free run: {clean_facts['seconds']} s, {clean_facts['requests']} requests",
              flush=True)
        chaotic, facts = run_once(seed)
        kills = facts["kills"]
        print(f"chaos run: {facts['seconds']} s, {facts['requests']} requests"
              f" ({facts['retries']} retried), kill -9 injected: {sum(kills.values())}"
              f" ({facts['targeted']} at a request in flight): "
              + ", ".join(f"{k} {v}" for k, v in sorted(kills.items()))
              + f"; mail resends with the same Message-ID: {chaotic['mail_resends']}",
              flush=True)
        print("kills per phase: " + ", ".join(f"{k} {v}" for k, v in facts["by_phase"].items()),
              flush=True)
        self.assertGreater(sum(kills.values()), 0, "no fault was injected")
        self.assertEqual(facts["crashes"], [], "services crashed on their own in the chaos run")
        for run, f in (("fault-free", clean_facts), ("chaos", facts)):
            self.assertEqual({k: v for k, v in f["dead_letters"].items() if v}, {},
                             f"dead letters after the {run} run")
            self.assertEqual({k: v for k, v in f["exit"].items() if v != 0}, {},
                             f"services that did not stop cleanly after the {run} run"
                             f" (logs kept with BSS_CHAOS_KEEP=1)")
        # The fault-free run is itself sane: every customer got charged and
        # invoiced, the mails went out, the read model saw the month.
        self.assertEqual(len(clean["invoices"]), len(CUSTOMERS))
        self.assertTrue(all(clean["invoices"].values()), clean["invoices"].keys())
        self.assertEqual(len(clean["lines"]), LINE_COUNT)
        self.assertEqual(len(clean["mails"]), 3 + 1)  # CH-A..C have an email; the report
        self.assertEqual(clean["mail_resends"], 0)
        for key in ("mail_resends",):
            clean.pop(key)
            chaotic.pop(key)
        diff = differences(clean, chaotic)
        if diff:
            self.fail(f"the chaos run (seed {seed}) differs from the fault-free run in "
                      f"{len(diff)} places:\n" + "\n".join(diff[:40]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--seed", type=int, default=None)
    args, rest = parser.parse_known_args()
    BIN_DIR = os.path.abspath(args.bin_dir)
    env_seed = os.environ.get("BSS_CHAOS_SEED")
    SEED = args.seed if args.seed is not None else (int(env_seed) if env_seed else None)
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

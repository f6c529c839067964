#!/usr/bin/env python3
"""Restore time and memory of `portcullis run` with N active bans in its state file.

Runs inside a network namespace that bench/daemon.sh created:

  1. starts the daemon once with the `null` backend on an empty state directory so that it
     creates its state file (the schema stays the daemon's own), and stops it,
  2. writes N active bans (jail `sshd`, IPv6 addresses 2001:db8::/32, started a minute
     ago, ending in 2 hours) into `active_bans` with python's sqlite3, in one transaction,
  3. starts the daemon with the nftables backend (--config) and timestamps its stderr lines
     (`restore N bans in all`, `started`) and the first complete answer of
     `portcullis bans --json` on its socket (with N entries), from just before the start,
  4. reads VmRSS/VmHWM of the daemon from /proc, counts the elements of the nft set,
  5. stops it (SIGTERM; the bans stay in the kernel) and, with --restart, starts it again
     to time a restart over a table that already holds the N bans.

Standard library only. Results go to --out as JSON; progress to stderr.
"""

import argparse
import ipaddress
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time


def log(msg):
    print(f"   restore: {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def mib(kib):
    return round(kib / 1024, 1)


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


class Daemon:
    """The daemon under test, its stderr read line by line with arrival times."""

    def __init__(self, ns, cmd, log_path):
        self.t0 = time.monotonic_ns()
        self.p = subprocess.Popen(["ip", "netns", "exec", ns] + cmd, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.fd = self.p.stderr.fileno()
        os.set_blocking(self.fd, False)
        self.buf = b""
        self.lines = []  # (t_ns since start, text)
        self.sink = open(log_path, "ab")

    def pump(self, timeout):
        """Reads what the daemon printed, waiting up to `timeout` seconds for something."""
        import select
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            return
        t = time.monotonic_ns() - self.t0
        for _ in range(64):
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.sink.write(chunk)
            self.buf += chunk
            *done, self.buf = self.buf.split(b"\n")
            self.lines += [(t, x.decode("utf-8", "replace")) for x in done]

    def find(self, rx):
        for t, line in self.lines:
            m = re.search(rx, line)
            if m:
                return t, m
        return None

    def wait_for(self, rx, timeout):
        end = time.monotonic() + timeout
        while True:
            hit = self.find(rx)
            if hit:
                return hit
            if self.p.poll() is not None:
                self.pump(0)
                hit = self.find(rx)
                if hit:
                    return hit
                raise SystemExit(f"the daemon exited ({self.p.returncode}) before /{rx}/; "
                                 f"last lines: {[x for _, x in self.lines[-5:]]}")
            if time.monotonic() > end:
                raise SystemExit(f"no /{rx}/ from the daemon within {timeout} s")
            self.pump(0.05)

    def stop(self, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            end = time.monotonic() + timeout
            while self.p.poll() is None and time.monotonic() < end:
                self.pump(0.05)
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait(timeout=10)
        self.pump(0)
        self.sink.close()


def make_state(a):
    db = os.path.join(a.state_dir, "portcullis.db")
    if os.path.exists(db):
        raise SystemExit(f"{db} exists already; give an empty state directory")
    log("creating the state file with the null backend")
    d = Daemon(a.ns, [a.bin, "run", "-c", a.null_config], a.daemon_log)
    try:
        d.wait_for(r"^started ", 30)
    finally:
        d.stop()
    now = int(time.time() * 1000)
    t = time.monotonic()
    con = sqlite3.connect(db)
    con.execute("PRAGMA busy_timeout = 5000")
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    if app_id != 0x50434C53:
        raise SystemExit(f"{db}: application_id {app_id:#x}, not a Portcullis state file")
    base = int(ipaddress.ip_address("2001:db8::"))
    rows = ((ipaddress.ip_address(base + 0x10000 + i).compressed, "sshd",
             now - 60_000, now + 7_200_000, 1) for i in range(a.count))
    with con:
        con.executemany("INSERT INTO active_bans (addr, jail, start_ms, end_ms, failures) "
                        "VALUES (?, ?, ?, ?, ?)", rows)
    n = con.execute("SELECT count(*) FROM active_bans WHERE end_ms > ?", (now,)).fetchone()[0]
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    size = sum(os.path.getsize(os.path.join(a.state_dir, f)) for f in os.listdir(a.state_dir))
    log(f"wrote {n} active bans in {time.monotonic() - t:.1f} s ({size / 2**20:.1f} MiB state)")
    if n != a.count:
        raise SystemExit(f"expected {a.count} active bans in {db}, found {n}")


def count_set(ns, table, set_name):
    t = time.monotonic()
    p = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", table,
                        set_name], capture_output=True, timeout=300)
    if p.returncode != 0:
        return None, time.monotonic() - t
    n = 0
    for obj in json.loads(p.stdout).get("nftables", []):
        if "set" in obj:
            n += len(obj["set"].get("elem", []))
    return n, time.monotonic() - t


def start_and_measure(a, what):
    """One timed start with the nftables backend; returns its results."""
    log(f"{what}: starting the daemon ({a.count} bans in the state file)")
    d = Daemon(a.ns, [a.bin, "run", "-c", a.config], a.daemon_log)
    res = {"what": what, "loadavg": [loadavg()]}
    try:
        t_restore, m = d.wait_for(r"^restore (\d+) bans in all", a.timeout)
        res["restore_log_s"] = t_restore / 1e9
        res["restored"] = int(m.group(1))
        t_started, _ = d.wait_for(r"^started ", a.timeout)
        res["started_log_s"] = t_started / 1e9
        res["mem_at_start_kib"] = proc_status(d.p.pid)
        # first complete answer on the control socket
        end = time.monotonic() + a.timeout
        tries = 0
        while True:
            tries += 1
            q = subprocess.run([a.bin, "bans", "--json", "--socket", a.socket],
                               capture_output=True, timeout=120)
            t_answer = time.monotonic_ns() - d.t0
            n = None
            if q.returncode == 0:
                try:
                    resp = json.loads(q.stdout)
                    bans = resp.get("bans", []) if isinstance(resp, dict) else resp
                    n = len(bans)
                except ValueError:
                    n = None
            if n == a.count:
                break
            if time.monotonic() > end:
                raise SystemExit(f"the socket did not answer with {a.count} bans within "
                                 f"{a.timeout} s (last: exit {q.returncode}, {n} bans, "
                                 f"{q.stderr[-300:]!r})")
            time.sleep(0.005)
        res["socket_answer_s"] = t_answer / 1e9
        res["socket_tries"] = tries
        res["socket_bans"] = n
        d.pump(0)
        time.sleep(1.0)
        d.pump(0)
        res["mem_settled_kib"] = proc_status(d.p.pid)
        with open(f"/proc/{d.p.pid}/comm") as f:
            res["comm"] = f.read().strip()
        n6, t6 = count_set(a.ns, a.table, "v6_sshd")
        n4, _ = count_set(a.ns, a.table, "v4_sshd")
        res["nft_v6_elements"] = n6
        res["nft_v4_elements"] = n4
        res["nft_count_s"] = t6
        mem = res["mem_settled_kib"]
        log(f"{what}: restore logged at {res['restore_log_s']:.3f} s, started at "
            f"{res['started_log_s']:.3f} s, socket answered {n} bans at "
            f"{res['socket_answer_s']:.3f} s; VmRSS {mib(mem.get('VmRSS', 0))} MiB "
            f"(peak {mib(mem.get('VmHWM', 0))}); nft set holds {n6} (+{n4} IPv4)")
    finally:
        t = time.monotonic()
        d.stop()
        res["stop_s"] = time.monotonic() - t
        res["exit"] = d.p.returncode
        res["loadavg"].append(loadavg())
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", required=True)
    ap.add_argument("--bin", required=True, help="portcullis binary")
    ap.add_argument("--config", required=True, help="configuration with the nftables backend")
    ap.add_argument("--null-config", required=True, help="same with the null backend")
    ap.add_argument("--state-dir", required=True, help="their (empty) state_dir")
    ap.add_argument("--socket", required=True, help="their socket")
    ap.add_argument("--table", default="portcullis")
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per step")
    ap.add_argument("--restart", action="store_true",
                    help="then stop and start again over the populated table")
    ap.add_argument("--daemon-log", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    make_state(a)
    runs = [start_and_measure(a, "first start (empty kernel table)")]
    if a.restart:
        runs.append(start_and_measure(a, "restart (bans still in the kernel)"))
    with open(a.out, "w") as f:
        json.dump({"count": a.count, "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

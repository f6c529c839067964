#!/usr/bin/env python3
"""Ban latency of a log-following daemon: log append -> address in the nft set.

Runs inside a network namespace that bench/daemon.sh created:

  1. starts `nft monitor` in the namespace (it prints `add element inet T S { ADDR ... }`
     when the kernel commits a change to a set),
  2. starts the daemon under test (the command after `--`) in the namespace and waits for
     its ready line (--ready, a regex on its stderr),
  3. appends failing sshd lines to --log one at a time (one os.write of a whole line to an
     O_APPEND descriptor: no buffering), each with a new address and the current syslog
     time, and waits until that address shows up in an `add element` line of the monitor
     before appending the next one (closed loop: no queueing, pure latency),
  4. stops the daemon (SIGTERM) and the monitor.

One process, one thread, one clock: the append time and the monitor line's arrival are
both `time.monotonic_ns()` in this process (read with poll(2) on the monitor's pipe; nft
monitor flushes each event). The daemon's own stderr is read the same way: --mark
NAME=REGEX (group 1 = the address) timestamps a log line of the daemon, which splits the
latency into stages (e.g. append -> `ban` line -> set).

Standard library only. Results go to --out as JSON; a summary to stderr.
"""

import argparse
import ipaddress
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import time

ELEMENT_RE = re.compile(r"^add element \S+ \S+ (\S+) \{ (.*) \}\s*$")


def log(msg):
    print(f"   latency: {msg}", file=sys.stderr, flush=True)


def norm(addr):
    try:
        return ipaddress.ip_address(addr).compressed
    except ValueError:
        return None


def addresses(count, warmup):
    """Warm-up addresses from 192.0.2.0/24 and 2001:db8:ffff::/48; measured ones alternate
    IPv4 (198.51.100.0/24, 203.0.113.0/24: 508 in all) and IPv6 (2001:db8:1::/48)."""
    warm = [f"192.0.2.{i + 1}" if i % 2 == 0 else f"2001:db8:ffff::{i + 1:x}"
            for i in range(warmup)]
    v4 = [f"198.51.100.{i}" for i in range(1, 255)] + [f"203.0.113.{i}" for i in range(1, 255)]
    out, n6 = [], 0
    for i in range(count):
        if i % 2 == 0 and v4:
            out.append(v4.pop(0))
        else:
            n6 += 1
            out.append(ipaddress.ip_address(0x20010DB8_0001_0000 << 64 | n6).compressed)
    return warm, out


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def pct(sorted_ns, p):
    """Nearest-rank percentile, in milliseconds."""
    if not sorted_ns:
        return None
    k = max(0, min(len(sorted_ns) - 1, -(-p * len(sorted_ns) // 100) - 1))
    return sorted_ns[k] / 1e6


def summary(values_ns):
    v = sorted(values_ns)
    if not v:
        return {"n": 0}
    return {
        "n": len(v),
        "min": v[0] / 1e6,
        "median": pct(v, 50),
        "p90": pct(v, 90),
        "p99": pct(v, 99),
        "max": v[-1] / 1e6,
        "mean": sum(v) / len(v) / 1e6,
    }


class Reader:
    """Line reader over a non-blocking pipe; calls on_line(text, t_ns) per complete line."""

    def __init__(self, fd, on_line, sink=None):
        self.fd = fd
        self.buf = b""
        self.on_line = on_line
        self.sink = sink
        self.eof = False
        os.set_blocking(fd, False)

    def read(self):
        t = time.monotonic_ns()
        for _ in range(64):  # bounded: at most 64 x 64 KiB per call
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.eof = True
                return
            if self.sink:
                self.sink.write(chunk)
            self.buf += chunk
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                self.on_line(line.decode("utf-8", "replace"), t)
            if len(chunk) < 65536:
                return


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ns", required=True, help="network namespace (exists already)")
    ap.add_argument("--log", required=True, help="log file the daemon follows")
    ap.add_argument("--count", type=int, default=1000, help="measured bans")
    ap.add_argument("--warmup", type=int, default=4, help="bans before measuring")
    ap.add_argument("--ready", required=True, help="regex on the daemon's stderr: ready")
    ap.add_argument("--ready-timeout", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after the ready line (the daemon may open its log "
                         "after saying it started; a line appended before that is not read)")
    ap.add_argument("--mark", action="append", default=[],
                    help="NAME=REGEX on the daemon's stderr, group 1 = address")
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds to wait for one ban before counting it missed")
    ap.add_argument("--deadline", type=float, default=600.0,
                    help="seconds for the whole measurement")
    ap.add_argument("--max-missed", type=int, default=10, help="stop after this many misses")
    ap.add_argument("--gap-ms", default="50:100",
                    help="MIN:MAX: random pause (ms, uniform) after a ban is seen in the set "
                         "before the next append; 0 = back to back")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--label", default="daemon")
    ap.add_argument("--daemon-log", help="copy of the daemon's stderr")
    ap.add_argument("--monitor-log", help="copy of nft monitor's output")
    ap.add_argument("--pidfile", help="write the daemon's PID here")
    ap.add_argument("--out", required=True, help="results (JSON)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- daemon command")
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("give the daemon command after --")
    marks = []
    for m in a.mark:
        name, _, rx = m.partition("=")
        marks.append((name, re.compile(rx)))
    rng = random.Random(a.seed)
    lo, _, hi = a.gap_ms.partition(":")
    gap_lo, gap_hi = float(lo), float(hi or lo)

    in_set = {}                         # addr -> t_ns of first `add element` with it
    marked = {n: {} for n, _ in marks}  # mark -> addr -> t_ns
    ready = []

    def on_monitor(line, t):
        m = ELEMENT_RE.match(line)
        if not m:
            return
        for el in m.group(2).split(","):
            addr = norm(el.strip().split(" ")[0])
            if addr and addr not in in_set:
                in_set[addr] = t

    ready_re = re.compile(a.ready)

    def on_daemon(line, t):
        if not ready and ready_re.search(line):
            ready.append(t)
        for name, rx in marks:
            m = rx.search(line)
            if m:
                addr = norm(m.group(1))
                if addr and addr not in marked[name]:
                    marked[name][addr] = t

    mon_sink = open(a.monitor_log, "wb") if a.monitor_log else None
    dae_sink = open(a.daemon_log, "wb") if a.daemon_log else None
    procs = []

    def stop_all():
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)

    try:
        mon = subprocess.Popen(["ip", "netns", "exec", a.ns, "nft", "monitor"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(mon)
        time.sleep(0.3)  # let it subscribe; the warm-up bans check that it sees events
        if mon.poll() is not None:
            raise SystemExit(f"nft monitor exited with {mon.returncode}")
        daemon = subprocess.Popen(["ip", "netns", "exec", a.ns] + cmd,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
        procs.append(daemon)
        if a.pidfile:
            with open(a.pidfile, "w") as f:
                f.write(f"{daemon.pid}\n")
        readers = {mon.stdout.fileno(): Reader(mon.stdout.fileno(), on_monitor, mon_sink),
                   daemon.stderr.fileno(): Reader(daemon.stderr.fileno(), on_daemon, dae_sink)}
        poller = select.poll()
        for fd in readers:
            poller.register(fd, select.POLLIN | select.POLLHUP)

        def pump(timeout_ms):
            for fd, _ in poller.poll(timeout_ms):
                readers[fd].read()
            if daemon.poll() is not None:
                for r in readers.values():
                    r.read()
                raise SystemExit(f"{a.label} exited with {daemon.returncode} "
                                 f"(its stderr: {a.daemon_log or 'not kept'})")

        t_start = time.monotonic_ns()
        load0 = loadavg()
        end = time.monotonic() + a.ready_timeout
        while not ready:
            if time.monotonic() > end:
                raise SystemExit(f"{a.label} did not print /{a.ready}/ within {a.ready_timeout}s")
            pump(100)
        log(f"{a.label} ready after {(ready[0] - t_start) / 1e9:.2f} s")
        end = time.monotonic() + a.settle
        while time.monotonic() < end:
            pump(50)

        fd = os.open(a.log, os.O_WRONLY | os.O_APPEND)
        warm, addrs = addresses(a.count, a.warmup)
        appended = {}
        gaps = {}
        missed = []
        pid = 1000
        deadline = time.monotonic() + a.deadline

        def one(addr, timeout):
            nonlocal pid
            pid += 1
            stamp = time.strftime("%b %e %H:%M:%S")
            line = f"{stamp} h sshd[{pid}]: Failed password for root from {addr} port 22 ssh2\n"
            data = line.encode()
            t0 = time.monotonic_ns()
            n = os.write(fd, data)
            if n != len(data):
                raise SystemExit(f"short write to {a.log}: {n} of {len(data)} bytes")
            appended[addr] = t0
            until = time.monotonic() + timeout
            while addr not in in_set:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                pump(max(1, int(left * 1000)))
            pump(0)  # pick up the daemon's log line if it is already there
            return True

        for addr in warm:
            if time.monotonic() > deadline:
                raise SystemExit("deadline passed during the warm-up")
            if not one(addr, max(a.timeout, 10.0)):
                raise SystemExit(f"warm-up ban of {addr} never reached the nft set within "
                                 f"{max(a.timeout, 10.0)} s; is the monitor or the jail broken? "
                                 f"(daemon stderr: {a.daemon_log}, monitor: {a.monitor_log})")
            time.sleep(0.05)
        log(f"{a.label}: {len(warm)} warm-up bans seen; measuring {len(addrs)}")

        done = 0
        for i, addr in enumerate(addrs):
            if time.monotonic() > deadline:
                log(f"deadline of {a.deadline} s passed after {i} bans")
                break
            if not one(addr, a.timeout):
                missed.append(addr)
                log(f"{addr} not in the set {a.timeout} s after its append")
                if len(missed) >= a.max_missed:
                    log(f"stopping after {len(missed)} missed bans")
                    break
            done += 1
            if (i + 1) % 200 == 0:
                v = sorted(in_set[x] - appended[x] for x in addrs[: i + 1] if x in in_set)
                log(f"{a.label}: {i + 1}/{len(addrs)} bans, median so far {pct(v, 50):.2f} ms")
            if gap_hi > 0:
                gaps[addr] = rng.uniform(gap_lo, gap_hi)
                time.sleep(gaps[addr] / 1000)
        # late events for the stage marks
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            pump(50)
        os.close(fd)

        measured = [x for x in addrs[:done] if x in in_set]
        result = {
            "label": a.label,
            "gap_ms": [gap_lo, gap_hi],
            "loadavg": [load0, loadavg()],
            "count": a.count,
            "appended": done,
            "banned": len(measured),
            "missed": missed,
            "total_ms": summary([in_set[x] - appended[x] for x in measured]),
            "v4_ms": summary([in_set[x] - appended[x] for x in measured if ":" not in x]),
            "v6_ms": summary([in_set[x] - appended[x] for x in measured if ":" in x]),
            "stages": {},
            # per ban: address, pause before its append (ms, after the previous ban),
            # then ns from its append to each mark and to the set
            "raw": [[x, gaps.get(addrs[i - 1], 0.0) if i else None]
                    + [marked[n][x] - appended[x] if x in marked[n] else None
                       for n, _ in marks]
                    + [in_set[x] - appended[x]]
                    for i, x in enumerate(addrs[:done]) if x in in_set],
        }
        prev_name, prev = "append", appended
        for name, _ in marks:
            got = [x for x in measured if x in marked[name]]
            result["stages"][f"{prev_name}->{name}"] = summary(
                [marked[name][x] - prev[x] for x in got if x in prev])
            result["stages"][f"{name}->set"] = summary([in_set[x] - marked[name][x] for x in got])
            prev_name, prev = name, marked[name]
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
        s = result["total_ms"]
        if s["n"]:
            log(f"{a.label}: {s['n']} bans: median {s['median']:.2f} ms, p90 {s['p90']:.2f}, "
                f"p99 {s['p99']:.2f}, max {s['max']:.2f}; missed {len(missed)}")
        return 0
    finally:
        stop_all()
        for sink in (mon_sink, dae_sink):
            if sink:
                sink.close()


if __name__ == "__main__":
    sys.exit(main())

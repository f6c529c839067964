#!/usr/bin/env python3
"""Builds the workspace's test binaries and runs several of them at once (test.sh calls it).

`cargo test` runs its test binaries one after another. Most of the real-server tests' time
is spent waiting on the servers they start (start-up, retries, timeouts, rate limits), not on
the CPU, so running a few binaries side by side cuts the suite's wall time without making it
CPU-bound. Each test already works in its own network namespaces, its own mount namespace
(private /etc, /run, /tmp where it changes them) and temporary directories, and names what it
creates after its pid, so binaries do not step on each other. The exceptions run in one lane,
one after another (SERIAL below).

Each binary runs as cargo would run it: from its package's directory, with the arguments
given after `--`. Its output is kept and printed whole when it ends, so outputs never mix.
At the end: a table of the binaries' wall times, the summed test counts, and every binary
that failed; the exit status is non-zero if any failed, timed out or reported no result.

Usage: tools/run-tests.py [--jobs N] [--timeout SECONDS] -- ARGS-FOR-EACH-BINARY
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# Binaries that share host-wide state and must not overlap: both turn on the host's
# net.netfilter.nf_log_all_netns for their run (restoring it after) and read /dev/kmsg.
SERIAL = [["real_ufw", "real_psad"]]

# The longest binaries on a 2-core machine (injection: 110 to 170 s, backend_netns: 130 s,
# the core's unit tests: 35 to 135 s, the daemon's: 25 to 90 s, package: 35 s; the rest 8 to
# 20 s), started first so that the last lane does not end with one of them alone. Only an
# order: a stale entry costs time, never a result. The summary table shows the current times.
LONG_FIRST = [
    "injection", "backend_netns", "portcullis_core (lib)", "portcullis (bin)", "package",
    "daemon_netns", "journal_spoof", "policy_netns", "real_cockpit_journal", "real_wordpress",
    "real_dropbear", "real_mail", "notify", "fleet", "cli", "real_zoneminder",
]

RESULT = re.compile(
    r"^test result: (\w+)\. (\d+) passed; (\d+) failed; (\d+) ignored; (\d+) measured; "
    r"(\d+) filtered out"
)


def build(cargo_args):
    """Runs `cargo test --no-run` and returns [(name, package dir, executable)]."""
    cmd = ["cargo", "test", *cargo_args, "--no-run", "--message-format=json-render-diagnostics"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"run-tests: {' '.join(cmd)} failed (exit {proc.returncode})")
    bins = []
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        if not msg.get("profile", {}).get("test"):
            continue
        name = msg["target"]["name"]
        kind = msg["target"]["kind"][0]
        if kind in ("lib", "bin"):
            # unit tests: name them after the crate, as cargo's "Running unittests" does
            name = f"{name} ({kind})"
        bins.append((name, os.path.dirname(msg["manifest_path"]), msg["executable"]))
    if not bins:
        sys.exit("run-tests: cargo built no test binary")
    return bins


def lanes(bins):
    """Groups the binaries into jobs (a job runs its binaries one after another), longest
    known first."""
    by_name = {b[0]: b for b in bins}
    jobs, taken = [], set()
    for group in SERIAL:
        job = [by_name[n] for n in group if n in by_name]
        if job:
            jobs.append(job)
            taken.update(b[0] for b in job)
    jobs += [[b] for b in bins if b[0] not in taken]

    def rank(job):
        names = [b[0] for b in job]
        first = [LONG_FIRST.index(n) for n in names if n in LONG_FIRST]
        return (min(first) if first else len(LONG_FIRST), names[0])

    return sorted(jobs, key=rank)


def panic_excerpts(text, most=6):
    """Why a binary's tests failed: each panic message up to its backtrace or note (when long,
    its first lines and those with the compared values), and each `Error: ...` a test
    returned, repeated at the end of the run, where a CI page that shows only the tail of the
    output still holds them."""
    lines = text.splitlines()
    out = []
    ends = ("stack backtrace:", "note: run with", "---- ", "failures:")
    for i, line in enumerate(lines):
        if line.startswith("Error: ") or "did not panic as expected" in line:
            out.append(line[:2000])
        elif "panicked at" in line:
            block = [line]
            for nxt in lines[i + 1:i + 400]:
                if nxt.startswith(ends) or "panicked at" in nxt:
                    break
                block.append(nxt)
            if len(block) > 16:
                keep = block[:8]
                keep += [b for b in block[8:] if b.lstrip().startswith(
                    ("left:", "right:", "expected", "found"))]
                keep.append(f"[… {len(block)} lines in all, in the output above]")
                block = keep
            out.append("\n".join(block))
        else:
            continue
        if len(out) == most:
            break
    return out


class Runner:
    def __init__(self, args, timeout):
        self.args = args
        self.timeout = timeout
        self.lock = threading.Lock()
        self.results = []  # (name, seconds, exit status or None on timeout, counts or None)
        self.panics = {}  # name -> the panic messages of its failed tests
        self.children = set()
        self.stopping = False

    def run_one(self, name, cwd, exe):
        start = time.monotonic()
        with tempfile.TemporaryFile(mode="w+", errors="replace") as out:
            with self.lock:
                if self.stopping:
                    return
                proc = subprocess.Popen(
                    [exe, *self.args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                self.children.add(proc)
            try:
                status = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                status = None
            finally:
                with self.lock:
                    self.children.discard(proc)
            seconds = time.monotonic() - start
            out.seek(0)
            text = out.read()
        counts = None
        for line in text.splitlines():
            m = RESULT.match(line)
            if m:
                counts = [int(x) for x in m.groups()[1:]]
        panics = panic_excerpts(text)
        with self.lock:
            if panics and status != 0:
                self.panics[name] = panics
            self.results.append((name, seconds, status, counts))
            print(f"\n──── {name}  ({exe}, {seconds:.1f} s)", flush=True)
            sys.stdout.write(text)
            if status is None:
                print(f"run-tests: {name} did not end within {self.timeout} s: killed")
            sys.stdout.flush()

    def run_job(self, job):
        for name, cwd, exe in job:
            self.run_one(name, cwd, exe)

    def stop(self, *_):
        with self.lock:
            self.stopping = True
            for proc in self.children:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        sys.exit("run-tests: interrupted")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=3, help="binaries run at once (3)")
    parser.add_argument("--timeout", type=int, default=1200,
                        help="seconds a binary may run before it is killed and failed (1200)")
    parser.add_argument("--cargo", action="append", default=[],
                        help="an argument for `cargo test --no-run` (repeatable)")
    parser.add_argument("binary_args", nargs="*", help="after --: arguments for each binary")
    opts = parser.parse_args()

    bins = build(opts.cargo)
    runner = Runner(opts.binary_args, opts.timeout)
    signal.signal(signal.SIGINT, runner.stop)
    signal.signal(signal.SIGTERM, runner.stop)
    start = time.monotonic()
    print(f"run-tests: {len(bins)} test binaries, {opts.jobs} at a time", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        for f in [pool.submit(runner.run_job, job) for job in lanes(bins)]:
            f.result()
    wall = time.monotonic() - start

    failed = []
    total = [0] * 5
    print("\nrun-tests: wall time per binary")
    for name, seconds, status, counts in sorted(runner.results, key=lambda r: -r[1]):
        print(f"  {seconds:7.1f} s  {name}")
        if counts:
            total = [a + b for a, b in zip(total, counts)]
        if status != 0 or counts is None:
            why = "timed out" if status is None else (
                f"exit {status}" if status != 0 else "no test result line")
            failed.append(f"{name} ({why})")
    for name, panics in sorted(runner.panics.items()):
        print(f"\nrun-tests: why {name} failed:")
        for p in panics:
            print("  " + p.replace("\n", "\n  "))
    print(
        f"\nrun-tests: {total[0]} passed; {total[1]} failed; {total[2]} ignored; "
        f"{total[4]} filtered out; {len(runner.results)} binaries in {wall:.0f} s"
    )
    if failed:
        print("run-tests: FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

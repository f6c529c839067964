#!/usr/bin/env python3
"""Workload generator for the Portcullis side-by-side benchmark.

Two workloads, both deterministic for a given --seed (standard library only):

  stress  The DoS stress test of the blacklist.py seed: 5,000 distinct random
          addresses in 10.0.0.0/8 (each with a fixed random port), 125,000
          iterations, each printing the seed's four sshd lines, so 500,000 lines.
          With --lines/--addresses the same shape is scaled down (run.sh
          --quick: 50,000 lines, 500 addresses).
          Every address gets at least 5 "Failed" lines: the first 25,000 picks
          go round-robin over the 5,000 addresses, the rest are uniform.
          Timestamps advance 1 s every 2,000 lines (about 4 min in all), well
          inside a 10 min findtime/bantime, so each address must be banned
          exactly once.

  mix     A realistic auth.log of N lines: about 90 % ordinary traffic from many
          programs (cron, sudo, su, systemd-logind, polkitd, successful sshd
          logins, sudo commands and logger lines that quote sshd failure texts)
          and about 10 % attack traffic from a few hundred addresses
          (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32) in real OpenSSH texts,
          some from the OpenSSH 9.8+ "sshd-session" program. Classic syslog and
          ISO-8601 (rsyslog high-precision) prefixes alternate in runs.

Usage:
  gen.py stress [--seed S] [--lines N] [--addresses K] [--start ISO] [--truth FILE] > stress.log
  gen.py mix    [--seed S] [--lines N] [--start ISO] [--truth FILE] > mix.log

--lines for stress must be a multiple of 4 (the seed's four-line group);
--truth writes a JSON description of what was generated (attacker addresses
with per-kind line counts, addresses that must never be banned) so a
benchmark can check decisions, not only speed.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import random
import sys

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def classic_stamp(t: dt.datetime) -> str:
    """BSD syslog timestamp, locale independent: 'Nov  1 10:00:01'."""
    return f"{MONTHS[t.month - 1]} {t.day:2d} {t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def iso_stamp(t: dt.datetime) -> str:
    """rsyslog RSYSLOG_FileFormat timestamp: '2026-11-21T10:00:01.123456+00:00'."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def parse_start(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t


# --------------------------------------------------------------------------
# stress: the seed's DoS simulation
# --------------------------------------------------------------------------

SEED_USERS = ("root", "admin", "guest", "test", "sql", "web", "www", "apache",
              "mysql", "webmail", "mail", "sysadmin", "tomcat", "webmaster",
              "hostmaster")

STRESS_MIN_FAILED = 5                   # "Failed" lines every address gets at least
STRESS_LINES_PER_SECOND = 2000


def gen_stress(rng: random.Random, lines: int, start: dt.datetime, out, truth,
               n_addrs: int = 5000):
    if lines % 4:
        sys.exit("gen.py stress: --lines must be a multiple of 4")
    iterations = lines // 4
    round_robin = STRESS_MIN_FAILED * n_addrs   # picks that guarantee 5 failures each
    if iterations < round_robin:
        sys.exit(f"gen.py stress: {lines} lines are too few for {n_addrs} addresses "
                 f"(need at least {4 * round_robin}); lower --addresses")
    if n_addrs > 244 ** 3 // 2:
        sys.exit("gen.py stress: too many addresses")

    # Like the seed: "10.a.b.c port NNNNN" with a, b, c in 1..244, but distinct.
    seen = set()
    targets = []          # (address, "address port NNNNN")
    while len(targets) < n_addrs:
        addr = f"10.{rng.randint(1, 244)}.{rng.randint(1, 244)}.{rng.randint(1, 244)}"
        if addr in seen:
            continue
        seen.add(addr)
        targets.append((addr, f"{addr} port {rng.randint(1024, 65535)}"))

    failed = [0] * n_addrs
    n = 0                 # lines written
    stamp_second = -1
    stamp = ""
    buf = []
    write = out.write
    randint = rng.randint
    for k in range(iterations):
        user = SEED_USERS[randint(0, len(SEED_USERS) - 1)]
        idx = k % n_addrs if k < round_robin else randint(0, n_addrs - 1)
        failed[idx] += 1
        ip = targets[idx][1]
        texts = (
            f"Failed keyboard-interactive/pam for invalid user {user} from {ip} ssh2",
            "check pass; user unknown",
            f"authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
            f"error: PAM: Authentication failure for {user} from {ip}",
        )
        for text in texts:
            sec = n // STRESS_LINES_PER_SECOND
            if sec != stamp_second:
                stamp_second = sec
                stamp = classic_stamp(start + dt.timedelta(seconds=sec))
            buf.append(f"{stamp} x40 sshd[{randint(1024, 65535)}]: {text}\n")
            n += 1
        if len(buf) >= 8192:
            write("".join(buf))
            buf.clear()
    write("".join(buf))

    if truth is not None:
        end = start + dt.timedelta(seconds=(n - 1) // STRESS_LINES_PER_SECOND)
        json.dump({
            "workload": "stress",
            "lines": n,
            "first_time": start.isoformat(),
            "last_time": end.isoformat(),
            "addresses": len(targets),
            "min_failed_lines_per_address": min(failed),
            "max_failed_lines_per_address": max(failed),
            # every address sends at least 5 "Failed" + 5 "PAM: Authentication failure"
            "expect_banned": sorted(a for a, _ in targets),
        }, truth, indent=1)
        truth.write("\n")


# --------------------------------------------------------------------------
# mix: a realistic auth.log
# --------------------------------------------------------------------------

HOST = "gate"
LEGIT_USERS = (("alice", 1000), ("bob", 1001), ("carol", 1002), ("deploy", 1003),
               ("backup", 1004))
# Addresses legitimate users log in from, and addresses that only ever appear
# quoted inside other programs' messages. None of them ever attacks.
LEGIT_ADDRS = ("2001:db8::5", "2001:db8::6", "192.0.2.44", "192.0.2.45", "192.0.2.130")
QUOTED_ADDRS = tuple(f"198.51.100.{i}" for i in range(1, 10)) + \
    tuple(f"192.0.2.{i}" for i in range(200, 210))

ATTACK_USERS = ("root", "admin", "test", "user", "ubuntu", "oracle", "postgres",
                "git", "guest", "ftpuser", "pi", "support", "administrator",
                "deploy", "hadoop", "mysql", "nagios", "jenkins", "ansible", "es",
                "minecraft", "steam", "teamspeak", "ts3", "www-data", "centos",
                "usuario", "1234", "default", "debian")
# Attacker-chosen user names that try to smuggle an address into the line.
# The real source is still the address sshd appends after them.
INJECTION_USERS = ("admin from 192.0.2.66", "x from 192.0.2.67 port 22",
                   "root from 192.0.2.68 port 22 ssh2")
VALID_TARGETS = ("root", "alice", "bob", "deploy")

KEX_OFFERS = (
    ("key exchange method",
     "diffie-hellman-group14-sha1,diffie-hellman-group-exchange-sha1,diffie-hellman-group1-sha1"),
    ("key exchange method", "diffie-hellman-group1-sha1"),
    ("host key type", "ssh-rsa,ssh-dss"),
    ("host key type", "ssh-dss"),
    ("cipher", "aes128-cbc,3des-cbc,aes192-cbc,aes256-cbc"),
)
CLIENT_BANNERS = ("SSH-2.0-Go", "SSH-2.0-libssh_0.9.6", "SSH-2.0-paramiko_2.11.0",
                  "SSH-2.0-OpenSSH_7.4")

CRON_CMDS = ("root", "root", "root", "www-data", "backup")
SUDO_CMDS = (
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt-get update",
    "/usr/bin/journalctl -u ssh --since today",
    "/usr/bin/tail -n 50 /var/log/auth.log",
    "/usr/sbin/nft list ruleset",
    "/usr/bin/cat /etc/ssh/sshd_config",
    "/usr/bin/docker ps",
)


class Clock:
    """Monotonic event time; each line advances it by 0..0.2 s (mean 0.1 s)."""

    def __init__(self, rng: random.Random, start: dt.datetime):
        self.rng = rng
        self.start = start
        self.micros = 0

    def tick(self, max_micros: int = 200_000) -> dt.datetime:
        self.micros += self.rng.randint(0, max_micros)
        return self.start + dt.timedelta(microseconds=self.micros)


class Mix:
    def __init__(self, rng: random.Random, start: dt.datetime):
        self.rng = rng
        self.clock = Clock(rng, start)
        self.pid = 40000
        self.session_id = 100
        self.iso = False
        self.run_left = 0
        self.out: list[str] = []
        self.attack_lines = 0
        self.attackers = self._make_attackers()
        self.addr_list = [a for a, _ in self.attackers]
        self.cum_weights = []
        acc = 0.0
        for _, w in self.attackers:
            acc += w
            self.cum_weights.append(acc)
        self.truth: dict[str, dict[str, int]] = {}

    # -- helpers ----------------------------------------------------------
    def _make_attackers(self):
        rng = self.rng
        v4a = rng.sample(range(10, 255), 100)           # 198.51.100.10-254
        v4b = rng.sample(range(1, 255), 100)            # 203.0.113.1-254
        addrs = [f"198.51.100.{i}" for i in v4a] + [f"203.0.113.{i}" for i in v4b]
        v6 = set()
        while len(v6) < 100:
            a = (f"2001:db8:{rng.randint(1, 0xffff):x}:{rng.randint(0, 0xffff):x}"
                 f"::{rng.randint(1, 0xffff):x}")
            v6.add(a)
        addrs += sorted(v6)
        rng.shuffle(addrs)
        # Zipf-like: a few heavy hitters, a long tail.
        return [(a, 1.0 / (rank + 1) ** 0.8) for rank, a in enumerate(addrs)]

    def _next_pid(self) -> int:
        self.pid += self.rng.randint(1, 40)
        if self.pid > 4_000_000:
            self.pid = 1000
        return self.pid

    def _prefix(self, t: dt.datetime, prog: str) -> str:
        if self.run_left <= 0:
            # Classic and ISO prefixes alternate in runs (mean 200 lines), as on
            # a log host that receives from old and new senders.
            self.iso = not self.iso
            self.run_left = self.rng.randint(1, 400)
        self.run_left -= 1
        stamp = iso_stamp(t) if self.iso else classic_stamp(t)
        return f"{stamp} {HOST} {prog}: "

    def emit(self, prog: str, text: str, attack: bool = False, tick: int = 200_000):
        t = self.clock.tick(tick)
        self.out.append(self._prefix(t, prog) + text + "\n")
        if attack:
            self.attack_lines += 1

    def note(self, addr: str, kind: str):
        d = self.truth.setdefault(addr, {})
        d[kind] = d.get(kind, 0) + 1

    def port(self) -> int:
        return self.rng.randint(1024, 65535)

    def fingerprint(self) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(32))
        return base64.b64encode(raw).decode().rstrip("=")

    # -- attack sessions --------------------------------------------------
    def attacker(self) -> str:
        return self.rng.choices(self.addr_list, cum_weights=self.cum_weights)[0]

    def attack_user(self) -> str:
        rng = self.rng
        if rng.random() < 0.005:
            return rng.choice(INJECTION_USERS)
        return rng.choice(ATTACK_USERS)

    def attack(self):
        rng = self.rng
        a = self.attacker()
        p = self.port()
        pid = self._next_pid()
        # OpenSSH 9.8+ logs per-connection messages as sshd-session.
        new_ssh = rng.random() < 0.3
        sess = f"sshd-session[{pid}]" if new_ssh else f"sshd[{pid}]"
        E = lambda text, prog=sess: self.emit(prog, text, attack=True, tick=20_000)
        kind = rng.choices(
            ("invalid_pw", "valid_pw", "invalid_nopw", "noident", "kex",
             "timeout", "banner", "maxauth"),
            weights=(30, 22, 14, 10, 8, 5, 5, 6))[0]
        if kind == "invalid_pw":
            u = self.attack_user()
            E(f"Invalid user {u} from {a} port {p}"); self.note(a, "invalid_user")
            for i in range(rng.choice((1, 1, 1, 2, 3))):
                E("pam_unix(sshd:auth): check pass; user unknown")
                E("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                  f"tty=ssh ruser= rhost={a} ")
                self.note(a, "pam_auth_failure")
                E(f"Failed password for invalid user {u} from {a} port {p} ssh2")
                self.note(a, "failed_password")
            if rng.random() < 0.5:
                E(f"Connection closed by invalid user {u} {a} port {p} [preauth]")
                self.note(a, "closed_preauth")
            else:
                E(f"Received disconnect from {a} port {p}:11: Bye Bye [preauth]")
                E(f"Disconnected from invalid user {u} {a} port {p} [preauth]")
                self.note(a, "disconnected_preauth")
        elif kind == "valid_pw":
            u = rng.choice(VALID_TARGETS)
            tries = rng.choice((1, 1, 2, 3))
            E("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
              f"tty=ssh ruser= rhost={a}  user={u}")
            self.note(a, "pam_auth_failure")
            for i in range(tries):
                E(f"Failed password for {u} from {a} port {p} ssh2")
                self.note(a, "failed_password")
            if tries > 1:
                E(f"PAM {tries - 1} more authentication failure{'s' if tries > 2 else ''}; "
                  f"logname= uid=0 euid=0 tty=ssh ruser= rhost={a}  user={u}")
            if rng.random() < 0.5:
                E(f"Disconnected from authenticating user {u} {a} port {p} [preauth]")
                self.note(a, "disconnected_preauth")
            else:
                E(f"Connection closed by authenticating user {u} {a} port {p} [preauth]")
                self.note(a, "closed_preauth")
        elif kind == "invalid_nopw":
            u = self.attack_user()
            E(f"Invalid user {u} from {a} port {p}"); self.note(a, "invalid_user")
            E(f"Connection closed by invalid user {u} {a} port {p} [preauth]")
            self.note(a, "closed_preauth")
        elif kind == "noident":
            E(f"Did not receive identification string from {a} port {p}")
            self.note(a, "no_ident")
        elif kind == "kex":
            what, offer = rng.choice(KEX_OFFERS)
            E(f"Unable to negotiate with {a} port {p}: no matching {what} found. "
              f"Their offer: {offer} [preauth]")
            self.note(a, "kex_no_match")
        elif kind == "timeout":
            E(f"Timeout before authentication for {a} port {p}")
            self.note(a, "auth_timeout")
        elif kind == "banner":
            if rng.random() < 0.5:
                E("error: kex_exchange_identification: Connection closed by remote host")
                E(f"Connection closed by {a} port {p}")
                self.note(a, "kex_ident_closed")
            else:
                E(f"banner exchange: Connection from {a} port {p}: invalid format")
                self.note(a, "banner_invalid")
        elif kind == "maxauth":
            u = rng.choice(("root", "admin"))
            E("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
              f"tty=ssh ruser= rhost={a}  user={u}")
            self.note(a, "pam_auth_failure")
            for i in range(6):
                E(f"Failed password for {u} from {a} port {p} ssh2")
                self.note(a, "failed_password")
            E(f"error: maximum authentication attempts exceeded for {u} from {a} "
              f"port {p} ssh2 [preauth]")
            self.note(a, "max_auth")
            E(f"Disconnecting authenticating user {u} {a} port {p}: "
              "Too many authentication failures [preauth]")
            E(f"PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh "
              f"ruser= rhost={a}  user={u}")
        if new_ssh and rng.random() < 0.3:
            # OpenSSH 9.8+ listener penalty notices (from the sshd listener).
            E(f"drop connection #0 from [{a}]:{p} on [192.0.2.10]:22 penalty: "
              "failed authentication", prog=f"sshd[{900 + rng.randint(0, 3)}]")

    # -- ordinary traffic -------------------------------------------------
    def noise(self):
        rng = self.rng
        kind = rng.choices(
            ("cron", "sudo", "sudo_quote", "login", "su", "logind", "polkit",
             "logger_quote", "sshd_misc"),
            weights=(50, 12, 3, 12, 4, 6, 4, 0.3, 0.3))[0]
        if kind == "cron":
            pid = self._next_pid()
            u = rng.choice(CRON_CMDS)
            uid = 0 if u == "root" else (33 if u == "www-data" else 34)
            self.emit(f"CRON[{pid}]",
                      f"pam_unix(cron:session): session opened for user {u}(uid={uid}) by (uid=0)")
            self.emit(f"CRON[{pid}]", f"pam_unix(cron:session): session closed for user {u}",
                      tick=2_000)
        elif kind in ("sudo", "sudo_quote"):
            u, uid = rng.choice(LEGIT_USERS[:3])
            if kind == "sudo":
                cmd = rng.choice(SUDO_CMDS)
            else:
                q = rng.choice(QUOTED_ADDRS)
                cmd = rng.choice((
                    f"/usr/bin/grep Failed password for root from {q} port 22 ssh2",
                    f"/usr/bin/grep -c Invalid user admin from {q} port 22 /var/log/auth.log",
                    f"/usr/bin/logger -t test Failed password for invalid user x from {q} port 22 ssh2",
                    f"/usr/sbin/nft add element inet filter allow {{ {q} }}",
                ))
            self.emit("sudo", f"   {u} : TTY=pts/{rng.randint(0, 5)} ; PWD=/home/{u} ; "
                              f"USER=root ; COMMAND={cmd}")
            self.emit("sudo", "pam_unix(sudo:session): session opened for user root(uid=0) "
                              f"by {u}(uid={uid})", tick=1_000)
            self.emit("sudo", "pam_unix(sudo:session): session closed for user root")
        elif kind == "logger_quote":
            # A local user writing sshd-looking text with logger(1): the
            # program is the user's name, not sshd.
            u, _ = rng.choice(LEGIT_USERS[:3])
            q = rng.choice(QUOTED_ADDRS)
            self.emit(u, f"Failed password for root from {q} port 22 ssh2")
        elif kind == "login":
            u, uid = rng.choice(LEGIT_USERS)
            a = rng.choice(LEGIT_ADDRS)
            p = self.port()
            pid = self._next_pid()
            prog = f"sshd-session[{pid}]" if rng.random() < 0.3 else f"sshd[{pid}]"
            sid = self.session_id = self.session_id + 1
            if rng.random() < 0.2:
                self.emit(prog, f"Connection from {a} port {p} on 192.0.2.10 port 22 rdomain \"\"")
            if u == "backup" or rng.random() < 0.1:
                self.emit(prog, f"Accepted password for {u} from {a} port {p} ssh2")
            else:
                alg = rng.choice(("ED25519", "ED25519", "RSA", "ECDSA"))
                self.emit(prog, f"Accepted publickey for {u} from {a} port {p} ssh2: "
                                f"{alg} SHA256:{self.fingerprint()}")
            self.emit(prog, f"pam_unix(sshd:session): session opened for user {u}(uid={uid}) "
                            "by (uid=0)", tick=5_000)
            self.emit("systemd-logind[612]", f"New session {sid} of user {u}.", tick=5_000)
            if rng.random() < 0.3:
                self.emit("systemd[1]", f"Started session-{sid}.scope - Session {sid} of User {u}.",
                          tick=5_000)
            self.emit(prog, f"Received disconnect from {a} port {p}:11: disconnected by user")
            self.emit(prog, f"Disconnected from user {u} {a} port {p}", tick=1_000)
            self.emit(prog, f"pam_unix(sshd:session): session closed for user {u}", tick=1_000)
            self.emit("systemd-logind[612]",
                      f"Session {sid} logged out. Waiting for processes to exit.", tick=1_000)
            self.emit("systemd-logind[612]", f"Removed session {sid}.", tick=5_000)
        elif kind == "su":
            u, uid = rng.choice(LEGIT_USERS[:3])
            pid = self._next_pid()
            self.emit(f"su[{pid}]", f"(to root) {u} on pts/{rng.randint(0, 5)}")
            self.emit(f"su[{pid}]", "pam_unix(su-l:session): session opened for user root(uid=0) "
                                    f"by {u}(uid={uid})", tick=1_000)
            self.emit(f"su[{pid}]", "pam_unix(su-l:session): session closed for user root")
        elif kind == "logind":
            self.emit("systemd-logind[612]", rng.choice((
                "Watching system buttons on /dev/input/event0 (Power Button)",
                "New seat seat0.",
                "Watching system buttons on /dev/input/event1 (AT Translated Set 2 keyboard)",
            )))
        elif kind == "polkit":
            pid = self._next_pid()
            started = rng.randint(10**6, 10**7)   # process start time in clock ticks
            self.emit("polkitd[701]",
                      f"Registered Authentication Agent for unix-process:{pid}:{started} "
                      "(system bus name :1.42 [/usr/bin/pkttyagent --notify-fd 5 --fallback], "
                      "object path /org/freedesktop/PolicyKit1/AuthenticationAgent, locale C.UTF-8)")
            self.emit("polkitd[701]",
                      f"Unregistered Authentication Agent for unix-process:{pid}:{started} "
                      "(system bus name :1.42, object path /org/freedesktop/PolicyKit1/AuthenticationAgent, "
                      "locale C.UTF-8) (disconnected from bus)", tick=20_000)
        elif kind == "sshd_misc":
            self.emit("sshd[900]", rng.choice((
                "Server listening on 0.0.0.0 port 22.",
                "Server listening on :: port 22.",
                "Received SIGHUP; restarting.",
            )))

    def run(self, lines: int, out, attack_share: float = 0.10):
        # Probability to start an attack session rather than a noise group so
        # that about `attack_share` of the lines are attack lines, corrected
        # by the share so far.
        written = 0
        while written < lines:
            have = self.attack_lines / written if written else 0.0
            p = 0.04 if have > attack_share else 0.08
            if self.rng.random() < p:
                self.attack()
            else:
                self.noise()
            if len(self.out) >= 4096 or written + len(self.out) >= lines:
                take = self.out[: lines - written]
                out.write("".join(take))
                written += len(take)
                self.out.clear()
        return written


def gen_mix(rng: random.Random, lines: int, start: dt.datetime, out, truth):
    m = Mix(rng, start)
    n = m.run(lines, out)
    if truth is not None:
        # Counts include lines of the last session even if it was cut at N.
        json.dump({
            "workload": "mix",
            "lines": n,
            "attack_lines_about": m.attack_lines,
            "first_time": start.isoformat(),
            "attackers": {a: m.truth[a] for a in sorted(m.truth)},
            "never_ban": sorted(set(LEGIT_ADDRS) | set(QUOTED_ADDRS)
                                | {"192.0.2.10", "192.0.2.66", "192.0.2.67", "192.0.2.68"}),
        }, truth, indent=1)
        truth.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=("stress", "mix"))
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument("--lines", type=int, default=500_000, help="lines to write (default 500000)")
    ap.add_argument("--start", default=None,
                    help="first timestamp, ISO 8601 (default 2026-11-21T10:00:00 for stress, "
                         "2026-11-20T08:00:00 for mix)")
    ap.add_argument("--addresses", type=int, default=5000,
                    help="stress only: distinct attacking addresses (default 5000)")
    ap.add_argument("--truth", metavar="FILE", help="write a JSON description of the workload")
    ap.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    args = ap.parse_args()

    if args.lines <= 0:
        ap.error("--lines must be positive")
    start = parse_start(args.start or ("2026-11-21T10:00:00" if args.workload == "stress"
                                       else "2026-11-20T08:00:00"))
    rng = random.Random(args.seed)
    out = open(args.output, "w", encoding="utf-8", newline="\n") if args.output else sys.stdout
    truth = open(args.truth, "w", encoding="utf-8") if args.truth else None
    try:
        if args.workload == "stress":
            gen_stress(rng, args.lines, start, out, truth, args.addresses)
        else:
            gen_mix(rng, args.lines, start, out, truth)
    finally:
        if out is not sys.stdout:
            out.close()
        if truth is not None:
            truth.close()


if __name__ == "__main__":
    main()

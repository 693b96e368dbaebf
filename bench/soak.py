#!/usr/bin/env python3
"""`imdsguard watch` under faults, for minutes: does every alert reach the store, the output and
the webhook?

Usage: bench/soak.py BINARY [--minutes 5] [--seed 1] [--keep DIR]

A writer appends Sysmon records (NXLog JSON lines; about one in five raises an alert) to two
files, with junk lines among them. Meanwhile, at random moments:
  - watch is killed with SIGKILL (most often) or stopped with SIGTERM, and started again;
  - a.jsonl is rotated as logrotate does it (renamed to a.jsonl.N, a new a.jsonl created);
  - b.jsonl is copied aside then truncated (logrotate's copytruncate), and at once regrows past
    the offset watch had reached (the case a size check alone misses);
  - the webhook receiver hangs (holds requests without answering) or answers 503 for a while.
watch runs with --output jsonl (its output appended to one file across restarts), a store and
the webhook. At the end the writer stops, watch runs until the store has read every file to its
end and the outbox is empty, and gets SIGTERM. Then `imdsguard hunt` reads the final files (the
rotated and copied ones too) and its alerts are looked up by id in the store, in watch's output
and among the requests the receiver answered 200. Correlation alerts (IMDS-1xx) depend on what
came before in the same run, which restarts change, so the check is over the per-event
detections (IMDS-00x); the others are counted.

Rotation and copytruncate happen only once watch has read the file to its end and is running:
a file rotated while watch is stopped, or before it has read the old file's end, loses what it
had not read (watch follows the path it was given).

Prints one line per check and exits 1 when an alert hunt finds is missing anywhere.
"""
import argparse
import http.server
import json
import os
import random
import shutil
import signal
import socketserver
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

REQUIRED = ("store", "output", "webhook")


def record(i, alert):
    secs = 8 * 3600 + i // 10
    base = {
        "EventTime": "2026-11-%02d %02d:%02d:%02d"
        % (20 + secs // 86400, secs // 3600 % 24, secs // 60 % 60, secs % 60),
        "Hostname": "web%02d.corp.example" % (i % 13),
        "SourceModuleType": "im_msvistalog",
        "Channel": "Microsoft-Windows-Sysmon/Operational",
        "ProcessId": str(100000 + i),
    }
    if alert:
        base.update({
            "EventID": 1,
            "Image": "C:\\Windows\\System32\\curl.exe",
            "CommandLine": "curl.exe -s http://169.254.169.254/latest/meta-data/iam/security-credentials/r%d" % i,
            "User": "CORP\\svc-web",
            "ParentProcessId": "6900",
            "ParentImage": "C:\\Windows\\System32\\cmd.exe",
        })
    else:
        base.update({
            "EventID": 3,
            "Image": "C:\\Program Files\\Amazon\\SSM\\amazon-ssm-agent.exe",
            "User": "NT AUTHORITY\\SYSTEM",
            "Protocol": "tcp",
            "Initiated": "true",
            "SourceIp": "10.0.1.15",
            "SourcePort": "49811",
            "DestinationIp": "169.254.169.254",
            "DestinationPort": "80",
        })
    return json.dumps(base) + "\n"


JUNK = [
    "junk: a shell's noise\n",
    '{"EventTime": "2026-11-20 08:00:00", "cut short\n',
    "\x00\x01\x02 binary\n",
    "\n",
]


class Receiver:
    """The webhook's receiver: answers 200, or 503 while failing, or nothing while hung."""

    def __init__(self):
        self.mode = "ok"
        self.accepted = []
        self.requests = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    outer.requests += 1
                    mode = outer.mode
                while mode == "hung":
                    time.sleep(0.2)
                    with outer.lock:
                        mode = outer.mode
                if mode == "fail":
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    alert_id = json.loads(body)["id"]
                except (ValueError, KeyError, TypeError):
                    alert_id = None
                self.send_response(200)
                self.end_headers()
                with outer.lock:
                    if alert_id:
                        outer.accepted.append(alert_id)

            def log_message(self, *args):
                pass

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def checkpoints(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        rows = {i: (o, ident) for i, o, ident in
                c.execute("SELECT input, \"offset\", identity FROM checkpoints").fetchall()}
        c.close()
        return rows
    except sqlite3.Error:
        return {}


def outbox(db):
    try:
        c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        n = c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        c.close()
        return n
    except sqlite3.Error:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    work = a.keep or tempfile.mkdtemp(prefix="imdsguard-soak-")
    os.makedirs(work, exist_ok=True)
    db = os.path.join(work, "store.db")
    files = {k: os.path.join(work, k + ".jsonl") for k in ("a", "b")}
    for p in files.values():
        open(p, "a").close()
    out_path = os.path.join(work, "stdout.jsonl")
    receiver = Receiver()
    url = "http://127.0.0.1:%d/alerts" % receiver.port
    stats = {"kill9": 0, "term": 0, "term_s": [], "rotations": 0, "truncations": 0, "junk": 0,
             "records": 0, "hung": 0, "failing": 0}

    def start():
        out = open(out_path, "ab")
        p = subprocess.Popen(
            [a.binary, "watch", "--poll", "50ms", "--db", db, "--output", "jsonl",
             "--webhook", url, "--webhook-name", "soak", files["a"], files["b"]],
            stdout=out, stderr=open(os.path.join(work, "stderr.txt"), "ab"))
        out.close()
        return p

    def caught_up(name):
        st = os.stat(files[name])
        return checkpoints(db).get(files[name]) == (st.st_size, "%d:%d" % (st.st_dev, st.st_ino))

    def wait_caught_up(proc, name, limit=30):
        end = time.time() + limit
        while time.time() < end:
            if proc.poll() is not None:
                return False
            if caught_up(name):
                return True
            time.sleep(0.05)
        return False

    proc = start()
    i = 0
    deadline = time.time() + a.minutes * 60
    next_fault = time.time() + rng.uniform(0.5, 3)
    hook_until = 0
    while time.time() < deadline:
        # A batch of records, sometimes with junk among them, to one file or the other.
        name = rng.choice("ab")
        lines = []
        for _ in range(rng.randint(1, 200)):
            lines.append(record(i, rng.random() < 0.2))
            i += 1
            if rng.random() < 0.02:
                lines.append(rng.choice(JUNK))
                stats["junk"] += 1
        with open(files[name], "a") as f:
            f.write("".join(lines))
        stats["records"] = i
        now = time.time()
        if hook_until and now > hook_until:
            with receiver.lock:
                receiver.mode = "ok"
            hook_until = 0
        if now >= next_fault:
            next_fault = now + rng.uniform(0.5, 3)
            fault = rng.choice(["kill9", "kill9", "kill9", "term", "rotate", "truncate", "hook"])
            if fault == "kill9":
                proc.kill()
                proc.wait()
                stats["kill9"] += 1
                proc = start()
            elif fault == "term":
                t0 = time.time()
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    print("FAIL: watch did not stop within 30 s of SIGTERM")
                    proc.kill()
                    proc.wait()
                stats["term"] += 1
                stats["term_s"].append(time.time() - t0)
                proc = start()
            elif fault == "rotate" and wait_caught_up(proc, "a"):
                n = stats["rotations"] + 1
                os.rename(files["a"], "%s.%d" % (files["a"], n))
                open(files["a"], "a").close()
                stats["rotations"] = n
                # The old file's end is read before the next kill (see the module's note).
                end = time.time() + 30
                while time.time() < end and not caught_up("a"):
                    time.sleep(0.05)
            elif fault == "truncate" and wait_caught_up(proc, "b"):
                n = stats["truncations"] + 1
                shutil.copyfile(files["b"], "%s.copy%d" % (files["b"], n))
                old = os.path.getsize(files["b"])
                with open(files["b"], "r+") as f:
                    f.truncate(0)
                # Regrowth past the old offset before watch polls again.
                lines = []
                while sum(map(len, lines)) <= old + 1000:
                    lines.append(record(i, rng.random() < 0.2))
                    i += 1
                with open(files["b"], "a") as f:
                    f.write("".join(lines))
                stats["truncations"] = n
            elif fault == "hook":
                mode = rng.choice(["hung", "fail"])
                with receiver.lock:
                    receiver.mode = mode
                stats["hung" if mode == "hung" else "failing"] += 1
                hook_until = time.time() + rng.uniform(2, 10)
        time.sleep(rng.uniform(0, 0.05))
    with receiver.lock:
        receiver.mode = "ok"
    if proc.poll() is not None:
        proc = start()
    # The end: every file read, every alert delivered.
    end = time.time() + 300
    while time.time() < end:
        if all(caught_up(k) for k in files) and outbox(db) == 0:
            break
        time.sleep(0.2)
    else:
        print("FAIL: watch did not catch up within 300 s (checkpoints %s, outbox %s)"
              % (checkpoints(db), outbox(db)))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)

    finals = sorted(os.path.join(work, f) for f in os.listdir(work) if ".jsonl" in f
                    and f != "stdout.jsonl")
    hunt = subprocess.run([a.binary, "hunt", "--no-db", "--output", "jsonl"] + finals,
                          capture_output=True, text=True)
    hunted = [json.loads(l) for l in hunt.stdout.splitlines()]
    want = {x["id"] for x in hunted if "rule_id" in x and x["rule_id"].startswith("IMDS-00")}
    others = sum(1 for x in hunted if "rule_id" in x and not x["rule_id"].startswith("IMDS-00"))
    stored = subprocess.run([a.binary, "alerts", "--db", db, "--output", "jsonl", "--limit",
                             "10000000"], capture_output=True, text=True)
    printed, cut = [], 0
    for l in open(out_path, encoding="utf-8", errors="replace"):
        try:
            printed.append(json.loads(l)["id"])
        except ValueError:
            cut += 1  # a line a kill cut short; watch ends it and prints the alert again
    have = {
        "store": [json.loads(l)["id"] for l in stored.stdout.splitlines()],
        "output": printed,
        "webhook": list(receiver.accepted),
    }
    terms = stats.pop("term_s")
    print("soak: %.1f min, %d records, %d junk lines, %d kill -9, %d SIGTERM (longest stop %.1f s), "
          "%d rotations, %d copytruncates, receiver hung %d and failing %d times"
          % (a.minutes, stats["records"], stats["junk"], stats["kill9"], stats["term"],
             max(terms, default=0), stats["rotations"], stats["truncations"], stats["hung"],
             stats["failing"]))
    print("output: %d lines cut short by a kill" % cut)
    print("hunt over the %d final files: %d per-event alerts (and %d correlation alerts, not compared)"
          % (len(finals), len(want), others))
    failed = False
    for k in REQUIRED:
        got = set(have[k])
        missing = want - got
        extra = len(got - want)
        print("%-8s %7d alerts (%d distinct), %d of hunt's missing, %d repeated (at least once), "
              "%d not in hunt's" % (k, len(have[k]), len(got), len(missing),
                                   len(have[k]) - len(got), extra))
        if missing:
            failed = True
            print("  missing, first: %s" % sorted(missing)[:5])
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

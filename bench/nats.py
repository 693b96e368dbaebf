#!/usr/bin/env python3
"""The log bus under load: latency from the write of a record to a followed file, through
`imdsguard ship --follow`, a local NATS JetStream server and one `imdsguard watch --nats` worker, to
its alert on the worker's output (median and p99), with background records beside it.

Usage: bench/nats.py BINARY [--alerts 300] [--rate 50] [--load N] [--poll 5ms] [--db URL|PATH]

ALERTS records that each raise an alert (curl reading role credentials) are appended one at a
time, RATE a second; with --load N, records that raise none (the SSM agent's connections) are
appended beside them at N a second. Each alert line the worker prints is timestamped when read and
matched to its record by process id. The server is tests/nats/server.sh's (file storage, this
machine); the store a SQLite file unless --db names another. At the end, the number of records
the worker read says whether it kept up. One line per figure, for the README.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from watch import record  # noqa: E402  (the same records as the file benchmark)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--alerts", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--load", type=int, default=0)
    ap.add_argument("--poll", default="5ms")
    ap.add_argument("--db", default=None)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="imdsguard-bench-nats-")
    server = os.path.join(work, "nats")
    url = subprocess.run(
        ["bash", os.path.join(HERE, "..", "tests", "nats", "server.sh"), server, str(free_port()), str(os.getpid())],
        check=True, capture_output=True, text=True).stdout.strip()
    log = os.path.join(work, "sysmon.jsonl")
    open(log, "w").close()
    db = a.db or os.path.join(work, "store.db")
    ship = subprocess.Popen(
        [a.binary, "ship", "--nats", url, "--host", "web01.corp.example", "--follow", "--poll", a.poll,
         "--state", os.path.join(work, "ship.json"), log],
        stderr=subprocess.DEVNULL)
    worker = subprocess.Popen(
        [a.binary, "watch", "--nats", url, "--poll", a.poll, "--db", db, "--output", "jsonl"],
        stdout=subprocess.PIPE, stderr=open(os.path.join(work, "watch.err"), "w"), text=True)
    arrivals = {}

    def reader():
        for line in worker.stdout:
            now = time.monotonic()
            try:
                v = json.loads(line)
            except ValueError:
                continue
            pid = (v.get("process") or {}).get("pid")
            if pid is not None and v.get("rule_id") == "IMDS-004":
                arrivals.setdefault(pid, now)

    threading.Thread(target=reader, daemon=True).start()
    # The worker takes its partitions a second after it starts.
    time.sleep(2.0)

    written = {}
    base = 10
    sent = 0
    with open(log, "a") as f:
        background = [record(base + a.alerts + j, 10 + j // max(a.load, 1), False)
                      for j in range(min(max(a.load, 1) * 2, 200000))]
        t0 = time.monotonic()
        next_alert = t0
        k = 0
        while k < a.alerts:
            now = time.monotonic()
            if a.load:
                due = int((now - t0) * a.load) - sent
                if due > 0:
                    f.write("".join(background[(sent + j) % len(background)] for j in range(due)))
                    sent += due
            if now >= next_alert:
                i = base + k
                f.write(record(i, 10 + k, True))
                f.flush()
                written[100000 + i] = time.monotonic()
                k += 1
                next_alert += 1.0 / a.rate
            f.flush()
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
    if a.load:
        print("load: %d background records in %.1f s = %.0f records/s" % (sent, elapsed, sent / elapsed))
    deadline = time.monotonic() + 20
    while len([p for p in written if p in arrivals]) < len(written) and time.monotonic() < deadline:
        time.sleep(0.05)
    lat = sorted((arrivals[p] - w) * 1000 for p, w in written.items() if p in arrivals)
    worker.terminate()
    ship.terminate()
    worker.wait(timeout=30)
    ship.wait(timeout=30)
    err = open(os.path.join(work, "watch.err")).read()
    read = [l for l in err.splitlines() if "watch stopped" in l]
    print("worker: " + (read[-1].split("watch stopped")[-1].strip() if read else err.strip()[-200:]))
    if len(lat) < len(written):
        print("latency: %d of %d alerts never arrived" % (len(written) - len(lat), len(written)))
        return 1
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print("latency write→ship→NATS→watch→alert: median %.1f ms, p99 %.1f ms, max %.1f ms over %d alerts at %g/s (poll %s%s)"
          % (p50, p99, lat[-1], len(lat), a.rate, a.poll, ", beside %d records/s" % a.load if a.load else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

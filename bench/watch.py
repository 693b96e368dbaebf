#!/usr/bin/env python3
"""`imdsguard watch` under load: sustained events/s from a file being appended, and latency from
the write of a record to its alert on watch's output (median and p99).

Usage: bench/watch.py BINARY [--poll 100ms] [--events 200000] [--alerts 500] [--rate 50] [--load N]

Throughput: a writer appends EVENTS Sysmon records (NXLog JSON lines; 1 in 100 is curl reading
role credentials, the rest the SSM agent's connections, as on a real host) in batches of 1,000
while watch follows the file; the figure is EVENTS over the time from the first write to the
store's checkpoint reaching the end of the file. Latency: then ALERTS records that each raise an
alert are appended one at a time, RATE a second; each alert line watch prints is timestamped when
read, and matched to its record by process id. With --load N, the SSM agent's records are appended
beside them at N a second (every 5 ms, the records due), so the latency is measured under that
load, and the store's checkpoint at the end says whether watch kept up. One line per figure, for
the README.
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def record(i, t, alert):
    secs = 8 * 3600 + t
    base = {
        "EventTime": "2026-11-20 %02d:%02d:%02d" % (secs // 3600 % 24, secs // 60 % 60, secs % 60),
        "Hostname": "web01.corp.example",
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


def checkpoint(db):
    try:
        c = sqlite3.connect(db, timeout=1)
        row = c.execute("SELECT offset FROM checkpoints").fetchone()
        c.close()
        return row[0] if row else 0
    except sqlite3.Error:
        return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--poll", default="100ms")
    ap.add_argument("--events", type=int, default=200000)
    ap.add_argument("--alerts", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--load", type=int, default=0)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="imdsguard-bench-watch-")
    log = os.path.join(work, "sysmon.jsonl")
    db = os.path.join(work, "store.db")
    open(log, "w").close()
    proc = subprocess.Popen(
        [a.binary, "watch", "--poll", a.poll, "--db", db, "--output", "jsonl", log],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    arrivals = {}

    def reader():
        for line in proc.stdout:
            now = time.monotonic()
            try:
                v = json.loads(line)
            except ValueError:
                continue
            pid = (v.get("process") or {}).get("pid")
            if pid is not None and v.get("rule_id") == "IMDS-004":
                arrivals.setdefault(pid, now)

    t = threading.Thread(target=reader, daemon=True)
    t.start()

    # Throughput: the records are made first, so the writer is never the bottleneck.
    batches = [
        "".join(record(i, i // 50, i % 100 == 0) for i in range(b, min(b + 1000, a.events)))
        for b in range(0, a.events, 1000)
    ]
    start = time.monotonic()
    with open(log, "a") as f:
        for batch in batches:
            f.write(batch)
            f.flush()
    size = os.path.getsize(log)
    while checkpoint(db) < size:
        time.sleep(0.01)
    took = time.monotonic() - start
    print("watch throughput: %d events in %.2f s = %.0f events/s (poll %s)" % (a.events, took, a.events / took, a.poll))

    # Latency.
    written = {}
    base = a.events + 10
    with open(log, "a") as f:
        if a.load:
            # Background records prepared ahead (a minute's worth of distinct times), written as
            # they fall due beside the alert records.
            background = [record(base + a.alerts + j, a.events // 50 + 10 + j // max(a.load, 1), False)
                          for j in range(min(a.load * 2, 200000))]
            t0 = time.monotonic()
            sent = 0
            k = 0
            next_alert = t0
            while k < a.alerts:
                now = time.monotonic()
                due = int((now - t0) * a.load) - sent
                if due > 0:
                    chunk = [background[(sent + j) % len(background)] for j in range(due)]
                    f.write("".join(chunk))
                    sent += due
                if now >= next_alert:
                    i = base + k
                    f.write(record(i, a.events // 50 + 10 + k, True))
                    f.flush()
                    written[100000 + i] = time.monotonic()
                    k += 1
                    next_alert += 1.0 / a.rate
                f.flush()
                time.sleep(0.005)
            elapsed = time.monotonic() - t0
            print("load: %d background records in %.1f s = %.0f events/s" % (sent, elapsed, sent / elapsed))
        else:
            for k in range(a.alerts):
                i = base + k
                f.write(record(i, a.events // 50 + 10 + k, True))
                f.flush()
                written[100000 + i] = time.monotonic()
                time.sleep(1.0 / a.rate)
    deadline = time.monotonic() + 10
    while len([p for p in written if p in arrivals]) < len(written) and time.monotonic() < deadline:
        time.sleep(0.05)
    lat = sorted((arrivals[p] - w) * 1000 for p, w in written.items() if p in arrivals)
    proc.terminate()
    proc.wait(timeout=30)
    if len(lat) < len(written):
        print("watch latency: %d of %d alerts never arrived" % (len(written) - len(lat), len(written)))
        return 1
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print("watch latency write→alert: median %.1f ms, p99 %.1f ms, max %.1f ms over %d alerts at %g/s (poll %s%s)"
          % (p50, p99, lat[-1], len(lat), a.rate, a.poll, ", under %d events/s" % a.load if a.load else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

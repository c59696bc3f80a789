#!/usr/bin/env python3
"""ingest.py: wabiz-receiver's webhook ingest beside a minimal Node.js handler
(bench/README.md, "Ingest").

    bench/ingest.py [--build build] [--seconds 10] [--connections 16] [--only receiver,node,node-fsync]
                    [--rates 100,1000,5000,0] [--baseline OTHER_BUILD]

Starts the built wabiz-receiver on a temporary directory (an account registered
over rx.sock on port 0, as tests/receiver/rxctl.py does; no plugin subscribed,
so every accepted event stays pending in the journal) and bench/node-peer.js
(without and with --fsync), runs bench/loadgen (build/bench/loadgen) against
each at the offered rates (0: as fast as possible), and prints one table row per
target and rate (with the target's CPU time, its processes' user and system
time, per 1,000 accepted events), the journal's growth per 100,000 pending
events, the load average and the machine. Every run posts new ids, so nothing is a duplicate. --baseline also
measures the wabiz-receiver of another build (an earlier commit) in the same run.
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "receiver"))
import rxctl  # noqa: E402

SECRET = "bench-app-secret"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def loadgen(build, url, rate, seconds, connections, statuses=0):
    cmd = [os.path.join(build, "bench", "loadgen"), "--url", url, "--secret", SECRET,
           "--pnid", rxctl.DEFAULT_PNID, "--waba", rxctl.DEFAULT_WABA_ID,
           "--connections", str(connections), "--rate", str(rate), "--seconds", str(seconds),
           "--statuses", str(statuses)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 60)
    line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    figures = dict(kv.split("=", 1) for kv in line.split())
    if not figures:
        raise RuntimeError("loadgen printed nothing: %s" % out.stderr)
    return figures


def process_tree(pid):
    """@pid and its descendants (the confined receiver runs under a monitor)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return pids


def cpu_seconds(pid):
    """User and system CPU time of @pid's process tree so far, in seconds."""
    ticks = 0
    for p in process_tree(pid):
        try:
            with open("/proc/%d/stat" % p) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def load_average():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def dir_bytes(directory, names):
    total = 0
    for name in names:
        try:
            total += os.path.getsize(os.path.join(directory, name))
        except OSError:
            pass
    return total


class ReceiverTarget:
    def __init__(self, build, workdir, name="wabiz-receiver"):
        self.name = name
        self.dir = os.path.join(workdir, name.replace(" ", "-"))
        binary = os.path.join(build, "plugin", "receiver", "wabiz-receiver")
        self.rx = rxctl.Receiver.start(binary, self.dir)
        self.account = rxctl.Account(secret=SECRET)
        with self.rx.client() as client:
            answer = client.register(self.account.registration(port=0, max_pending_bytes=1 << 40))
        self.url = answer["url"]
        self.pid = self.rx.proc.pid
        self.base_bytes = self.journal_bytes()

    def journal_bytes(self):
        return dir_bytes(self.dir, ["journal.db", "journal.db-wal"])

    def pending(self):
        status = self.rx.status()
        return sum(a["pending"] for a in status["accounts"])

    def stop(self):
        self.rx.stop(timeout=60)


class NodeTarget:
    def __init__(self, workdir, fsync):
        self.name = "node" + (" --fsync" if fsync else "")
        path = os.path.join(workdir, "node-%s.log" % ("fsync" if fsync else "plain"))
        cmd = ["node", os.path.join(HERE, "node-peer.js"), "--secret", SECRET, "--file", path]
        if fsync:
            cmd.append("--fsync")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.match(r"listening (\d+)", line)
        if not match:
            raise RuntimeError("node-peer.js did not start: %r" % line)
        self.url = "http://127.0.0.1:%s/webhook" % match.group(1)
        self.pid = self.proc.pid

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rates", default="100,1000,5000,0")
    parser.add_argument("--only", default="receiver,node,node-fsync")
    parser.add_argument("--baseline", help="another build whose wabiz-receiver is measured too")
    parser.add_argument("--statuses", type=int, default=0,
                        help="percent of requests that are statuses (default 0: all text messages)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    only = args.only.split(",")

    load_before = load_average()
    workdir = tempfile.mkdtemp(prefix="wabiz-bench-")
    rows = []
    growth = None
    try:
        targets = []
        if "receiver" in only:
            targets.append(lambda: ReceiverTarget(args.build, workdir))
        if args.baseline:
            targets.append(lambda: ReceiverTarget(args.baseline, workdir, "wabiz-receiver (baseline)"))
        if "node" in only:
            targets.append(lambda: NodeTarget(workdir, False))
        if "node-fsync" in only:
            targets.append(lambda: NodeTarget(workdir, True))
        for make in targets:
            target = make()
            try:
                for rate in rates:
                    cpu = cpu_seconds(target.pid)
                    figures = loadgen(args.build, target.url, rate, args.seconds, args.connections,
                                      args.statuses)
                    accepted = int(figures.get("accepted", 0))
                    # the target's own CPU time per 1,000 accepted events: less
                    # sensitive to the machine's other load than the rates
                    figures["cpu_ms_per_1000"] = "%.0f" % ((cpu_seconds(target.pid) - cpu) * 1e6 / accepted
                                                           if accepted else 0)
                    rows.append((target.name, rate, figures))
                    print("%-16s %-6s %s" % (target.name, int(rate) or "max",
                                             " ".join("%s=%s" % kv for kv in figures.items())),
                          file=sys.stderr, flush=True)
                if isinstance(target, ReceiverTarget) and target.name == "wabiz-receiver":
                    pending = target.pending()
                    grown = target.journal_bytes() - target.base_bytes
                    if pending > 0:
                        growth = (pending, grown, grown * 100000 // pending)
            finally:
                target.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print("| target | offered/s | accepted/s | p50 ms | p99 ms | max ms | errors | connections opened "
          "| CPU ms per 1,000 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, rate, f in rows:
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s |"
              % (name, "{:,}".format(int(rate)) if rate else "max",
                 "{:,}".format(int(float(f["accepted_per_s"]))), f["p50_ms"], f["p99_ms"], f["max_ms"],
                 f["errors"], f["connects"], f["cpu_ms_per_1000"]))
    maxima = {name: float(f["accepted_per_s"]) for name, rate, f in rows if rate == 0}
    if "wabiz-receiver" in maxima and maxima.get("node"):
        print("\nratio wabiz-receiver / node at maximum: %.2f" % (maxima["wabiz-receiver"] / maxima["node"]))
    if growth:
        print("journal growth: %d bytes for %d pending events = %s bytes per 100,000 pending events"
              % (growth[1], growth[0], "{:,}".format(growth[2])))
    print("body: %s bytes; %d connections; %.0f s per rate" % (rows[0][2]["body_bytes"] if rows else "?",
                                                                args.connections, args.seconds))
    print("load average (1, 5, 15 min): %s before, %s after" % (load_before, load_average()))
    print("machine: %d cores (nproc), %s, %s, node %s" % (
        os.cpu_count(), cpu_model(), platform.platform(),
        subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()))


if __name__ == "__main__":
    main()

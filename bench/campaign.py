#!/usr/bin/env python3
"""bench/campaign.py: how close a campaign comes to the number's throughput.

For each rate R: the simulator answers every send 50 ms after it arrives
(latency_ms) and allows R sends a second (throughput_mps); a host with the
plugin (campaign_throughput R) runs /notify over a CSV of N opted-in
customers and the bench confirms it. Reported: the steady-state send rate
(accepted sends per second of the simulator's clock, the first and last
second left out) as a percentage of R, the whole run's rate, the host's
CPU per message (utime + stime of /proc/PID/stat over the campaign), the
sends the simulator refused (130429), and whether each recipient got
exactly one send.

    bench/campaign.py [--build build] [--rates 80,1000] [--recipients 10000]
                      [--latency-ms 50] [--plugin-build OTHER_BUILD]

Not a test: it prints figures and the machine.
"""

import argparse
import collections
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))

from apply import machine  # noqa: E402
from hostctl import Host, contains, regex  # noqa: E402
from simctl import DEFAULT_APP_SECRET, Sim  # noqa: E402

PROMO = {
    "name": "bench_promo", "language": "en", "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Hi {{1}}, our offer: {{2}} off today."}]}


def number(i):
    return "4917%08d" % (10000000 + i)


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def listen_overflows():
    """The kernel's count of handshakes dropped at a full accept queue (the
    whole machine's)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:]))["ListenOverflows"])
    return 0


def run(args, rate):
    build = os.path.abspath(args.build)
    user_dir = tempfile.mkdtemp(prefix="wabiz-bench-campaign-")
    receiver = os.path.join(build, "plugin", "receiver", "wabiz-receiver")
    path = os.path.join(user_dir, "recipients.csv")
    recipients = [number(i) for i in range(args.recipients)]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("to", "1", "2", "consent"))
        for i, to in enumerate(recipients):
            w.writerow((to, "Customer %d" % i, "%d %%" % (10 + i % 20), "opt-in"))
    sim = Sim.start(args.sim or os.path.join(build, "tests", "sim", "wabiz-sim"), stderr=subprocess.DEVNULL)
    host = Host()
    try:
        sim.add_templates([PROMO])
        # the pair limit is per customer: each gets one send here
        sim.config(throughput_mps=rate, latency_ms=args.latency_ms)
        opts = {"api_base_url": sim.base_url + "/v25.0", "http_timeout": 10, "app_secret": DEFAULT_APP_SECRET,
                "verify_token": "bench-verify-token", "webhook_port": 0, "waba_id": sim.info()["waba_id"],
                "campaign_throughput": str(rate),
                # no daily limit of customers reached (the simulator says TIER_2K)
                "portfolio_limit": "0"}
        env = {"WABIZ_RECEIVER": receiver, "WABIZ_TEST_HOOKS": "1"}
        pbuild = os.path.abspath(args.plugin_build or args.build)
        host.start(binary=os.path.join(pbuild, "tests", "host", "wabiz-host"),
                   plugin_dir=os.path.join(pbuild, "plugin", "purple", "test"), user_dir=user_dir,
                   account=sim.pnid, password=sim.token, options=opts, env=env, timeout=60)
        host.wait_for("signed-on", timeout=60)
        result = host.command("notices", "/notify bench_promo " + path)
        if result["status"] != "ok":
            raise SystemExit("/notify: %r" % result)
        ask = host.wait_for({"event": "request", "kind": "action", "title": "Send notification"}, timeout=120)
        before = cpu_ticks(host.proc.pid)
        sim_before = cpu_ticks(sim.proc.pid)
        overflows = listen_overflows()
        t0 = time.monotonic()
        host.answer(ask["id"], action=0)
        line = host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                              "message": contains("Campaign finished")},
                             timeout=args.recipients / rate * 4 + 120)
        wall = time.monotonic() - t0
        ticks = cpu_ticks(host.proc.pid) - before
        sim_ticks = cpu_ticks(sim.proc.pid) - sim_before
        overflows = listen_overflows() - overflows
        sent = [m for m in sim.sent() if m["type"] == "template"]
        requests = [r for r in sim.requests() if r["method"] == "POST" and r["path"].endswith("/messages")]
        finished = line["message"]
        host.quit(timeout=120)
    finally:
        host.close()
        subprocess.run([receiver, "--dir", os.path.join(user_dir, "wabiz", "receiver"), "--stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        sim.stop()
        shutil.rmtree(user_dir, True)
    per_second = collections.Counter(m["time"] for m in sent)
    first, last = min(per_second), max(per_second)
    inner = [per_second.get(s, 0) for s in range(first + 1, last)]
    if args.per_second:
        print("#   sends per second: %s" % " ".join(str(per_second.get(s, 0)) for s in range(first, last + 1)))
    steady = sum(inner) / len(inner) if inner else float("nan")
    counts = collections.Counter(m["to"].lstrip("+") for m in sent)
    hz = os.sysconf("SC_CLK_TCK")
    return {
        "rate": rate, "sent": len(sent), "wall": wall,
        "steady": steady, "overall": len(sent) / wall,
        "cpu_per_msg_us": ticks / hz * 1e6 / max(len(sent), 1),
        "sim_cpu_per_msg_us": sim_ticks / hz * 1e6 / max(len(sent), 1),
        "refused": sum(1 for r in requests if r.get("error_code") == 130429),
        "requests": len(requests),
        "exactly_once": set(counts) == set(recipients) and max(counts.values()) == 1,
        "missing": len(set(recipients) - set(counts)), "twice": sum(1 for c in counts.values() if c > 1),
        "finished": finished, "overflows": overflows,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(SRC, "build"))
    parser.add_argument("--rates", default="80,1000")
    parser.add_argument("--recipients", type=int, default=10000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--per-second", action="store_true", help="print the sends of each second")
    parser.add_argument("--sim", help="another simulator binary (a before/after figure)")
    parser.add_argument("--plugin-build", help="the host and plugin of another build directory, with this "
                        "build's simulator and receiver (a before/after figure)")
    args = parser.parse_args()
    print("# bench/campaign.py, %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("# machine: %s" % machine())
    print("# %d opted-in recipients, simulator latency %d ms" % (args.recipients, args.latency_ms))
    print("# plugin: %s" % os.path.abspath(args.plugin_build or args.build))
    print("| limit/s | steady-state sends/s | % of limit | whole run/s (wall s) | host CPU per message (µs) "
          "| simulator CPU per message (µs) | POSTs / refused 130429 | listen overflows | exactly once |")
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in [int(n) for n in args.rates.split(",")]:
        r = run(args, rate)
        print("| %d | %.1f | %.1f %% | %.1f (%.1f) | %.0f | %.0f | %d / %d | %d | %s |" % (
            r["rate"], r["steady"], 100.0 * r["steady"] / r["rate"], r["overall"], r["wall"], r["cpu_per_msg_us"], r["sim_cpu_per_msg_us"],
            r["requests"], r["refused"], r["overflows"], "yes" if r["exactly_once"] else "NO (%d missing, %d twice)"
            % (r["missing"], r["twice"])), flush=True)
        print("#   %s" % r["finished"], flush=True)


if __name__ == "__main__":
    main()

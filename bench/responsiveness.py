#!/usr/bin/env python3
"""bench/responsiveness.py: the largest main-loop gap of the plugin's host
while it works: during ingest at a fixed rate, while history opens, and
during a campaign.

Each scenario runs a wabiz-host (the plugin signed on to the simulator, its
receiver started) with the gap meter on: a 5 ms repeating timer in the host
that records the largest time between two of its ticks (the longest the
main loop was held) and the 99th percentile of those times. Before each
scenario the same host is measured idle for --idle seconds: the machine's
own noise (a loaded machine delays a ready process too). For the largest
gap the host also reports the main thread's CPU time in it and its time
waiting for a core (the kernel's run-queue delay): a gap of CPU time is
work the loop did in one go (profile it with --perf), a gap of waiting is
the machine. Scenarios:

  ingest    bench/loadgen posts signed 1.5 KB text webhooks (one customer)
            at --rate per second for --seconds through the receiver while
            the host applies them live; measured until every accepted one
            is shown.
  history   a first session stores --history messages from one customer and
            --per-conv from each of --convs others (applied live), then a
            second session (nothing shown yet this session) opens the long
            conversation alone, then all the others at once; measured until
            every history line is written.
  campaign  /notify to rate x --campaign-seconds opted-in customers at each
            of --campaign-rates sends/s (the simulator's throughput limit, 50
            ms answers, as bench/campaign.py); measured from the
            confirmation to "Campaign finished".

    bench/responsiveness.py [--build build] [--only ingest,history,campaign]
                            [--rate 1000] [--seconds 20] [--history 20000]
                            [--convs 50] [--per-conv 100]
                            [--campaign-rates 80,1000] [--campaign-seconds 20]
                            [--perf SCENARIO]

--perf SCENARIO records that scenario's host with `perf record -g`
(perf-responsiveness-SCENARIO.data in the current directory). Not a test:
it prints figures and the machine.
"""

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))
sys.path.insert(0, HERE)

from apply import machine  # noqa: E402
from campaign import PROMO, number  # noqa: E402
from hostctl import Host, contains, has, regex  # noqa: E402
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402

RECV = {"event": "write", "flags": has("recv")}
HISTORY = {"event": "write", "flags": has("no-linkify")}


def ms(us):
    return us / 1000.0


class Run:
    """One simulator and user directory; hosts started on them in turn."""

    def __init__(self, args, name, extra_options=None):
        self.args = args
        self.name = name
        self.build = os.path.abspath(args.build)
        self.receiver = os.path.join(self.build, "plugin", "receiver", "wabiz-receiver")
        self.user_dir = tempfile.mkdtemp(prefix="wabiz-bench-resp-")
        self.sim = Sim.start(os.path.join(self.build, "tests", "sim", "wabiz-sim"), stderr=subprocess.DEVNULL)
        self.extra_options = extra_options or {}
        self.host = None
        self.url = None

    def start_host(self, perf=False):
        opts = {"api_base_url": self.sim.base_url + "/v25.0", "http_timeout": 10,
                "app_secret": DEFAULT_APP_SECRET, "verify_token": "bench-verify-token", "webhook_port": 0}
        opts.update(self.extra_options)
        wrapper = ()
        if perf:
            wrapper = ("perf", "record", "-g", "-F", "999", "-o", "perf-responsiveness-%s.data" % self.name, "--")
        self.host = Host()
        self.host.start(binary=os.path.join(self.build, "tests", "host", "wabiz-host"),
                        plugin_dir=os.path.join(self.build, "plugin", "purple", "test"), user_dir=self.user_dir,
                        account=self.sim.pnid, password=self.sim.token, options=opts,
                        env={"WABIZ_RECEIVER": self.receiver, "WABIZ_TEST_HOOKS": "1"}, wrapper=wrapper,
                        timeout=60)
        notice = self.host.wait_for({"event": "write", "message": lambda m: "webhook receiver listens on" in m},
                                    timeout=120)
        self.url = re.search(r"listens on (http://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"]).group(1)
        self.host.wait_for("signed-on", timeout=120)
        return self.host

    def idle(self):
        """The gap meter over --idle seconds of nothing to do."""
        self.host.gap_meter("start")
        time.sleep(self.args.idle)
        return self.host.gap_meter("read")

    def quit_host(self):
        code = self.host.quit(timeout=120)
        self.host.close()
        if code != 0:
            raise SystemExit("the host exited with %r" % code)

    def close(self):
        if self.host is not None:
            self.host.close()
        subprocess.run([self.receiver, "--dir", os.path.join(self.user_dir, "wabiz", "receiver"), "--stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        self.sim.stop()
        shutil.rmtree(self.user_dir, True)


def row(scenario, idle, busy, note):
    print("| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %s | %s |" % (
        scenario, ms(idle["max_gap_us"]), ms(idle["p99_gap_us"]), ms(busy["max_gap_us"]),
        ms(busy["p99_gap_us"]), ms(busy["gap_cpu_us"]), ms(busy["gap_wait_us"]), ms(busy["max_cpu_us"]),
        "yes" if busy["max_gap_us"] <= 20000 else "**no**", note), flush=True)


def ingest(args):
    run = Run(args, "ingest")
    try:
        host = run.start_host(args.perf == "ingest")
        idle = run.idle()
        host.gap_meter("reset")
        cmd = [os.path.join(run.build, "bench", "loadgen"), "--url", run.url, "--secret", DEFAULT_APP_SECRET,
               "--pnid", run.sim.pnid, "--waba", run.sim.waba_id, "--connections", "16",
               "--rate", str(args.rate), "--seconds", str(args.seconds)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds * 10 + 120)
        figures = dict(kv.split("=", 1) for kv in out.stdout.split())
        accepted = int(figures["accepted"])
        shown = [0, 0]

        def lines():
            count, shown[1] = host.count_since(shown[1], RECV)
            shown[0] += count
            return shown[0]

        wait_until(lambda: lines() >= accepted, timeout=600, interval=0.5, what="%d lines" % accepted)
        busy = host.gap_meter("read")
        run.quit_host()
        row("ingest at %d/s for %g s (1 customer, 16 connections)" % (args.rate, args.seconds), idle, busy,
            "%d accepted (%s/s, p99 %s ms), %d shown" % (accepted, figures.get("accepted_per_s", "?"),
                                                        figures.get("p99_ms", "?"), shown[0]))
    finally:
        run.close()


def history(args):
    run = Run(args, "history")
    try:
        host = run.start_host()
        run.sim.webhook(url=run.url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        long_one = "4915%09d" % 100000000
        others = ["4915%09d" % (200000000 + i) for i in range(args.convs)]
        run.sim.inbound_bulk([long_one], args.history, text="old {n}")
        run.sim.inbound_bulk(others, args.convs * args.per_conv, text="old {n}", first=args.history)
        total = args.history + args.convs * args.per_conv
        shown = [0, 0]

        def lines():
            count, shown[1] = host.count_since(shown[1], RECV)
            shown[0] += count
            return shown[0]

        wait_until(lambda: lines() >= total, timeout=1800, interval=1, what="%d lines" % total)
        run.quit_host()

        # a new session: nothing shown yet, so opening shows the history
        host = run.start_host(args.perf == "history")
        idle = run.idle()
        host.gap_meter("reset")
        host.focus(long_one, timeout=60)
        host.wait_for(dict(HISTORY, conv=long_one), timeout=120)
        wait_until(lambda: len(host.events(dict(HISTORY, conv=long_one))) >= 20, timeout=120, interval=0.1,
                   what="20 history lines")
        time.sleep(0.5)
        one = host.gap_meter("read")
        row("history: one conversation opened (%d stored messages)" % args.history, idle, one,
            "%d history lines" % len(host.events(dict(HISTORY, conv=long_one))))

        host.gap_meter("reset")
        for conv in others:
            host.send({"cmd": "focus", "conv": conv})
        expected = 20 * len(others) if args.per_conv >= 20 else args.per_conv * len(others)
        wait_until(lambda: len(host.events(HISTORY)) - 20 >= expected, timeout=300, interval=0.2,
                   what="%d history lines" % expected)
        time.sleep(0.5)
        many = host.gap_meter("read")
        row("history: %d conversations opened at once (%d stored messages each)" % (len(others), args.per_conv),
            idle, many, "%d history lines" % (len(host.events(HISTORY)) - 20))
        run.quit_host()
    finally:
        run.close()


def campaign(args, rate):
    recipients = int(rate * args.campaign_seconds)
    run = Run(args, "campaign-%d" % rate, {"campaign_throughput": str(rate), "portfolio_limit": "0"})
    try:
        run.extra_options["waba_id"] = run.sim.info()["waba_id"]
        path = os.path.join(run.user_dir, "recipients.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(("to", "1", "2", "consent"))
            for i in range(recipients):
                w.writerow((number(i), "Customer %d" % i, "%d %%" % (10 + i % 20), "opt-in"))
        run.sim.add_templates([PROMO])
        run.sim.config(throughput_mps=rate, latency_ms=50)
        host = run.start_host(args.perf == "campaign")
        idle = run.idle()
        result = host.command("notices", "/notify bench_promo " + path)
        if result["status"] != "ok":
            raise SystemExit("/notify: %r" % result)
        ask = host.wait_for({"event": "request", "kind": "action", "title": "Send notification"}, timeout=120)
        host.gap_meter("reset")
        t0 = time.monotonic()
        host.answer(ask["id"], action=0)
        host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                       "message": contains("Campaign finished")}, timeout=recipients / rate * 4 + 120)
        wall = time.monotonic() - t0
        busy = host.gap_meter("read")
        sent = len([m for m in run.sim.sent() if m["type"] == "template"])
        run.quit_host()
        row("campaign at %d/s (%d recipients)" % (rate, recipients), idle, busy,
            "%d sent in %.1f s (%.0f/s)" % (sent, wall, sent / wall))
    finally:
        run.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(SRC, "build"))
    parser.add_argument("--only", default="ingest,history,campaign")
    parser.add_argument("--idle", type=float, default=5, help="seconds measured idle before each scenario")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--history", type=int, default=20000)
    parser.add_argument("--convs", type=int, default=50)
    parser.add_argument("--per-conv", type=int, default=100)
    parser.add_argument("--campaign-rates", default="80,1000")
    parser.add_argument("--campaign-seconds", type=float, default=20)
    parser.add_argument("--perf", choices=("ingest", "history", "campaign"))
    args = parser.parse_args()
    only = args.only.split(",")
    print("# bench/responsiveness.py, %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("# machine: %s" % machine())
    print("| scenario | idle: largest gap / p99 (ms) | busy: largest gap / p99 (ms) "
          "| in the largest gap: main thread's CPU / waiting for a core (ms) | most CPU between two ticks (ms) "
          "| largest gap within 20 ms | what was done |")
    print("|---|---|---|---|---|---|---|")
    if "ingest" in only:
        ingest(args)
    if "history" in only:
        history(args)
    if "campaign" in only:
        for rate in [int(n) for n in args.campaign_rates.split(",")]:
            campaign(args, rate)
    print("# load after: %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()

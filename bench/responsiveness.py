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
  pidgin    for reference, Pidgin 2.14 under Xvfb (xvfb-run) with the
            plugin, signed on to the simulator, during ingest as above for
            --pidgin-seconds (5; Pidgin's conversation window slows down as
            its lines grow, so longer runs take many minutes): the
            gap meter is bench/gap-preload.c in LD_PRELOAD (compiled here
            with cc), which writes each second's largest gap and p99.

    bench/responsiveness.py [--build build] [--only ingest,history,campaign,pidgin]
                            [--rate 1000] [--seconds 20] [--history 20000]
                            [--convs 50] [--per-conv 100]
                            [--campaign-rates 80,1000] [--campaign-seconds 20]
                            [--pidgin-seconds 5] [--perf SCENARIO]

Callbacks that hold the loop 15 ms or more are named (wabiz-host's
WABIZ_HOST_SLOW_MS, resolved with addr2line). --perf SCENARIO records that
scenario's host with `perf record --call-graph dwarf -k mono`
(perf-responsiveness-SCENARIO.data in the current directory) and prints the
monotonic start of the slowest callbacks, to pick their samples out of
`perf script`. Not a test: it prints figures and the machine.
"""

import argparse
import csv
import json
import os
import re
import shutil
import signal
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
SLOW_MS = 15  # wabiz-host reports callbacks that hold the loop this long
PERF_NOTES = False
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
            wrapper = ("perf", "record", "--call-graph", "dwarf,8192", "-k", "mono", "-F", "300", "-o", "perf-responsiveness-%s.data" % self.name, "--")
        self.host = Host()
        self.host.start(binary=os.path.join(self.build, "tests", "host", "wabiz-host"),
                        plugin_dir=os.path.join(self.build, "plugin", "purple", "test"), user_dir=self.user_dir,
                        account=self.sim.pnid, password=self.sim.token, options=opts,
                        env={"WABIZ_RECEIVER": self.receiver, "WABIZ_TEST_HOOKS": "1",
                             "WABIZ_HOST_SLOW_MS": str(SLOW_MS)}, wrapper=wrapper,
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


_names = {}


def function_name(event):
    """The slow callback's function: addr2line on its module and offset."""
    key = (event.get("module"), event.get("offset"))
    if key not in _names:
        name = event.get("nearest_symbol") or "?"
        if key[0] and key[1]:
            out = subprocess.run(["addr2line", "-f", "-e", key[0], key[1]], capture_output=True, text=True)
            if out.returncode == 0 and out.stdout and not out.stdout.startswith("??"):
                name = out.stdout.split()[0]
        _names[key] = "%s (%s)" % (name, os.path.basename(key[0] or "?"))
    return _names[key]


def slow_dispatches(host, since):
    """The callbacks that held the loop SLOW_MS or more since SINCE
    (time.monotonic()): "N: function cpu/wall ms, ..." by CPU time."""
    events = [e for e in host.events("slow-dispatch") if e["_t"] >= since]
    events.sort(key=lambda e: e["cpu_us"], reverse=True)
    if PERF_NOTES:
        for e in events[:5]:
            # with --perf: where to look in the profile (perf record -k mono)
            print("#   slow callback %s: start %.6f s (monotonic), %.1f ms CPU, %.1f ms wall"
                  % (function_name(e), e["start_us"] / 1e6, ms(e["cpu_us"]), ms(e["wall_us"])))
    return "%d%s" % (len(events), "".join("; %s %.1f/%.1f" % (function_name(e), ms(e["cpu_us"]), ms(e["wall_us"]))
                                          for e in events[:3]))


def row(scenario, idle, busy, note, slow):
    print("| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %s | %s | %s |" % (
        scenario, ms(idle["max_gap_us"]), ms(idle["p99_gap_us"]), ms(busy["max_gap_us"]),
        ms(busy["p99_gap_us"]), ms(busy["gap_cpu_us"]), ms(busy["gap_wait_us"]), ms(busy["max_cpu_us"]),
        slow, "yes" if busy["max_gap_us"] <= 20000 else "**no**", note), flush=True)


def loadgen(run, rate, seconds):
    """bench/loadgen posting to the run's receiver at RATE for SECONDS
    (one customer, 16 connections); its key=value figures."""
    cmd = [os.path.join(run.build, "bench", "loadgen"), "--url", run.url, "--secret", DEFAULT_APP_SECRET,
           "--pnid", run.sim.pnid, "--waba", run.sim.waba_id, "--connections", "16",
           "--rate", str(rate), "--seconds", str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 120)
    return dict(kv.split("=", 1) for kv in out.stdout.split())


def ingest(args):
    run = Run(args, "ingest")
    try:
        host = run.start_host(args.perf == "ingest")
        idle = run.idle()
        host.gap_meter("reset")
        since = time.monotonic()
        figures = loadgen(run, args.rate, args.seconds)
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
                                                        figures.get("p99_ms", "?"), shown[0]),
            slow_dispatches(host, since))
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
        since = time.monotonic()
        host.focus(long_one, timeout=60)
        host.wait_for(dict(HISTORY, conv=long_one), timeout=120)
        wait_until(lambda: len(host.events(dict(HISTORY, conv=long_one))) >= 20, timeout=120, interval=0.1,
                   what="20 history lines")
        time.sleep(0.5)
        one = host.gap_meter("read")
        row("history: one conversation opened (%d stored messages)" % args.history, idle, one,
            "%d history lines" % len(host.events(dict(HISTORY, conv=long_one))), slow_dispatches(host, since))

        host.gap_meter("reset")
        since = time.monotonic()
        for conv in others:
            host.send({"cmd": "focus", "conv": conv})
        expected = min(20, args.per_conv) * len(others)
        wanted = set(others)

        def history_lines():
            return len([e for e in host.events(HISTORY) if e.get("conv") in wanted])

        wait_until(lambda: history_lines() >= expected, timeout=300, interval=0.2,
                   what="%d history lines" % expected)
        time.sleep(0.5)
        many = host.gap_meter("read")
        row("history: %d conversations opened at once (%d stored messages each)" % (len(others), args.per_conv),
            idle, many, "%d history lines" % history_lines(), slow_dispatches(host, since))
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
        t0 = since = time.monotonic()
        host.answer(ask["id"], action=0)
        host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                       "message": contains("Campaign finished")}, timeout=recipients / rate * 4 + 120)
        wall = time.monotonic() - t0
        busy = host.gap_meter("read")
        sent = len([m for m in run.sim.sent() if m["type"] == "template"])
        run.quit_host()
        row("campaign at %d/s (%d recipients)" % (rate, recipients), idle, busy,
            "%d sent in %.1f s (%.0f/s)" % (sent, wall, sent / wall), slow_dispatches(host, since))
    finally:
        run.close()


def receiver_pending(run):
    out = subprocess.run([run.receiver, "--dir", os.path.join(run.user_dir, "wabiz", "receiver"), "--status"],
                         capture_output=True, text=True, timeout=60)
    return sum(a["pending"] for a in json.loads(out.stdout)["accounts"]) if out.returncode == 0 else None


def gap_lines(path, start, end):
    """The gap-preload lines of seconds that lie within [start, end]:
    (largest gap, p99) in µs."""
    rows = []
    with open(path) as f:
        for line in f:
            t, largest, p99, _ = line.split()
            if start + 1 <= float(t) <= end:
                rows.append((int(largest), int(p99)))
    return rows


def pidgin(args):
    """Pidgin under Xvfb with the plugin (signed on to the simulator) and
    bench/gap-preload.c in LD_PRELOAD: idle, then ingest as in ingest()."""
    if shutil.which("pidgin") is None or shutil.which("xvfb-run") is None:
        print("# pidgin: not measured (pidgin or xvfb-run is missing)")
        return
    run = Run(args, "pidgin")
    proc = None
    try:
        preload = os.path.join(run.user_dir, "gap-preload.so")
        glib = subprocess.run(["pkg-config", "--cflags", "--libs", "glib-2.0"], capture_output=True, text=True,
                              check=True).stdout.split()
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", preload, os.path.join(HERE, "gap-preload.c")] + glib,
                       check=True)
        # the host creates the account (password remembered), the store and
        # its key file, and starts the receiver, which stays running
        run.start_host()
        run.quit_host()
        run.host = None
        os.makedirs(os.path.join(run.user_dir, "plugins"), exist_ok=True)
        os.symlink(os.path.join(run.build, "plugin", "purple", "test", "libwabiz.so"),
                   os.path.join(run.user_dir, "plugins", "libwabiz.so"))
        gap_file = os.path.join(run.user_dir, "gap.txt")
        env = dict(os.environ, LD_PRELOAD=preload, WABIZ_GAP_FILE=gap_file, WABIZ_RECEIVER=run.receiver,
                   WABIZ_TEST_HOOKS="1", DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent", NO_AT_BRIDGE="1")
        with open(os.path.join(run.user_dir, "pidgin.log"), "w") as log:
            proc = subprocess.Popen(["xvfb-run", "-a", "pidgin", "-c", run.user_dir, "-l", run.sim.pnid],
                                    env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        # signed on and applying: one message is acknowledged
        run.sim.webhook(url=run.url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        run.sim.inbound_bulk(["4915%09d" % 300000000], 1, text="hello {n}")
        wait_until(lambda: os.path.exists(gap_file) and receiver_pending(run) == 0, timeout=120, interval=0.5,
                   what="Pidgin signed on and applying")
        time.sleep(2)
        idle_start = time.monotonic()
        time.sleep(args.idle + 1)
        idle_end = busy_start = time.monotonic()
        figures = loadgen(run, args.rate, args.pidgin_seconds)
        posted = time.monotonic()
        wait_until(lambda: receiver_pending(run) == 0, timeout=1800, interval=0.5, what="every event shown")
        shown_after = time.monotonic() - posted
        time.sleep(1.5)
        busy_end = time.monotonic()
        idle = gap_lines(gap_file, idle_start, idle_end)
        busy = gap_lines(gap_file, busy_start, busy_end)
        if not idle or not busy:
            raise SystemExit("pidgin: no gap lines (%s)" % gap_file)
        largest = max(g for g, _ in busy)
        print("| Pidgin 2.14 under Xvfb: ingest at %d/s for %g s | %.1f / %.1f | %.1f / %.1f (p99: the worst "
              "second's) | n/a | n/a | n/a | %s | %s accepted (%s/s, p99 %s ms), all acknowledged (shown) %.1f s "
              "after the last was posted |" % (
                  args.rate, args.pidgin_seconds, ms(max(g for g, _ in idle)), ms(max(p for _, p in idle)), ms(largest),
                  ms(max(p for _, p in busy)), "yes" if largest <= 20000 else "**no**", figures.get("accepted"),
                  figures.get("accepted_per_s"), figures.get("p99_ms"), shown_after), flush=True)
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        run.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(SRC, "build"))
    parser.add_argument("--only", default="ingest,history,campaign,pidgin")
    parser.add_argument("--idle", type=float, default=5, help="seconds measured idle before each scenario")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--history", type=int, default=20000)
    parser.add_argument("--convs", type=int, default=50)
    parser.add_argument("--per-conv", type=int, default=100)
    parser.add_argument("--campaign-rates", default="80,1000")
    parser.add_argument("--campaign-seconds", type=float, default=20)
    parser.add_argument("--pidgin-seconds", type=float, default=5,
                        help="ingest seconds for Pidgin (it shows one window's lines ever more slowly)")
    parser.add_argument("--perf", choices=("ingest", "history", "campaign"))
    args = parser.parse_args()
    only = args.only.split(",")
    global PERF_NOTES
    PERF_NOTES = args.perf is not None
    print("# bench/responsiveness.py, %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("# machine: %s" % machine())
    print("| scenario | idle: largest gap / p99 (ms) | busy: largest gap / p99 (ms) "
          "| in the largest gap: main thread's CPU / waiting for a core (ms) | most CPU between two ticks (ms) "
          "| callbacks held %d ms or more: count; the longest by CPU, CPU/wall ms "
          "| largest gap within 20 ms | what was done |" % SLOW_MS)
    print("|---|---|---|---|---|---|---|---|")
    if "ingest" in only:
        ingest(args)
    if "history" in only:
        history(args)
    if "campaign" in only:
        for rate in [int(n) for n in args.campaign_rates.split(",")]:
            campaign(args, rate)
    if "pidgin" in only:
        pidgin(args)
    print("# load after: %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()

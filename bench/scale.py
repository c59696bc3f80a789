#!/usr/bin/env python3
"""bench/scale.py: sign-on time and memory with a large store.

A first host signs the account on (key-file mode: the store and its key file
are created), then bench/scale-store (built as build/bench/scale-store) fills
the store through the store API with CUSTOMERS customers and MESSAGES
messages, and blist.xml gets BUDDIES buddies (the first customers, with
their store ids, as the plugin leaves them). A second host signs on with the
gap meter running. Reported: host start to signed-on, signed-on to the
service windows shown (every buddy's presence set), the largest main-loop
gap meanwhile, the host's RSS after sign-on, and RSS after MORE further
messages applied live (from 16 customers, through the receiver), every
STEP messages.

    bench/scale.py [--build build] [--customers 100000] [--messages 1000000]
                   [--buddies 5000] [--more 100000] [--step 25000]
                   [--close-convs] [--slow-ms 15] [--keep DIR]

Each step also prints its largest main-loop gap (split into the main
thread's CPU time and its wait for a core) and, with --slow-ms, the
callbacks that held the loop that long.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))
sys.path.insert(0, HERE)

from apply import machine  # noqa: E402
from hostctl import Host, has  # noqa: E402
from responsiveness import function_name  # noqa: E402
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def add_buddies(user_dir, pnid, ids):
    """Adds a group of buddies (number, store customer id) to blist.xml."""
    path = os.path.join(user_dir, "blist.xml")
    tree = ET.parse(path)
    blist = tree.getroot().find("blist")
    if blist is None:
        blist = ET.SubElement(tree.getroot(), "blist")
    group = ET.SubElement(blist, "group", name="Customers")
    for number, customer_id in ids:
        contact = ET.SubElement(group, "contact")
        buddy = ET.SubElement(contact, "buddy", account=pnid, proto="prpl-wabiz")
        ET.SubElement(buddy, "name").text = number
        setting = ET.SubElement(buddy, "setting", name="wabiz-customer-id", type="string")
        setting.text = customer_id
    tree.write(path, encoding="UTF-8", xml_declaration=True)


def build_store(args, build, user_dir, ids_path, sim, host):
    """A first sign-on creates the store; scale-store fills it; blist.xml
    gets the buddies. Returns the buddies [(number, customer id)] and the
    webhook URL."""
    first = host()
    notice = first.wait_for({"event": "write", "message": lambda m: "webhook receiver listens on" in m},
                            timeout=60)
    url = re.search(r"listens on (http://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"]).group(1)
    assert first.quit(timeout=60) == 0
    first.close()
    t = time.monotonic()
    fill = subprocess.run([os.path.join(build, "bench", "scale-store"), user_dir, sim.pnid,
                           str(args.customers), str(args.messages), "--blist", str(args.buddies)],
                          capture_output=True, text=True, check=True)
    fill_s = time.monotonic() - t
    ids = [line.split() for line in fill.stdout.splitlines() if line.strip()]
    add_buddies(user_dir, sim.pnid, ids)
    with open(ids_path, "w") as f:
        f.write(fill.stdout)
    db = os.path.join(user_dir, "wabiz", "store", sim.pnid + ".db")
    print("# store: %d customers, %d messages, %d buddies: %.0f MiB, written in %.0f s (%s)"
          % (args.customers, args.messages, len(ids), os.path.getsize(db) / 2**20, fill_s,
             fill.stderr.strip().splitlines()[-1]))
    return ids, url


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(SRC, "build"))
    parser.add_argument("--customers", type=int, default=100000)
    parser.add_argument("--messages", type=int, default=1000000)
    parser.add_argument("--buddies", type=int, default=5000)
    parser.add_argument("--more", type=int, default=100000)
    parser.add_argument("--step", type=int, default=25000)
    parser.add_argument("--plugin-build", help="take the plugin from another build (an older version, for a "
                        "before/after figure); the host, receiver, simulator and scale-store come from --build")
    parser.add_argument("--close-convs", action="store_true",
                        help="close the conversations after each step (libpurple frees their lines)")
    parser.add_argument("--slow-ms", type=int, default=0,
                        help="report the host's callbacks that held the main loop this long (WABIZ_HOST_SLOW_MS)")
    parser.add_argument("--keep", metavar="DIR",
                        help="build the store in DIR and keep it; a later run with the same DIR reuses it")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    plugin_build = os.path.abspath(args.plugin_build or args.build)
    receiver = os.path.join(build, "plugin", "receiver", "wabiz-receiver")
    user_dir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="wabiz-scale-")
    ids_path = os.path.join(user_dir, "scale-buddies.txt")
    reuse = os.path.exists(ids_path)
    receiver_dir = os.path.join(user_dir, "wabiz", "receiver")
    sim = Sim.start(os.path.join(build, "tests", "sim", "wabiz-sim"), stderr=subprocess.DEVNULL)

    def host():
        h = Host()
        h.start(binary=os.path.join(build, "tests", "host", "wabiz-host"),
                plugin_dir=os.path.join(plugin_build, "plugin", "purple", "test"), user_dir=user_dir,
                account=sim.pnid, password=sim.token,
                options={"api_base_url": sim.base_url + "/v25.0", "http_timeout": 10,
                         "app_secret": DEFAULT_APP_SECRET, "verify_token": "bench-verify-token",
                         "webhook_port": 0},
                env=dict({"WABIZ_RECEIVER": receiver, "WABIZ_TEST_HOOKS": "1"},
                         **({"WABIZ_HOST_SLOW_MS": str(args.slow_ms)} if args.slow_ms else {})), timeout=60)
        return h

    print("# bench/scale.py, %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("# machine: %s" % machine())
    try:
        if reuse:
            with open(ids_path) as f:
                ids = [line.split() for line in f if line.strip()]
            url = None
            print("# store reused from %s" % user_dir)
        else:
            ids, url = build_store(args, build, user_dir, ids_path, sim, host)

        start = time.monotonic()
        second = host()
        ready = second.events("ready")[0]["_t"]
        second.gap_meter("start")
        signed_on = second.wait_for("signed-on", timeout=600)["_t"]
        # every buddy's presence is set once the windows are loaded: the
        # last customer's buddy (the blist's last) gets its status
        last = ids[-1][0]
        shown = second.wait_for({"event": "buddy", "name": last, "status_id": "available"}, timeout=600)["_t"] \
            if ids else signed_on
        time.sleep(2)
        gap = second.gap_meter("read")
        rss = [(0, rss_kib(second.proc.pid))]
        print("| measure | value |")
        print("|---|---|")
        print("| host start to ready (libpurple, blist of %d buddies) | %.2f s |" % (len(ids), ready - start))
        print("| host start to signed-on | %.2f s |" % (signed_on - start))
        print("| signed-on to every buddy's window shown | %.2f s |" % (shown - signed_on))
        print("| largest main-loop gap from ready to 2 s after | %.1f ms |" % (gap["max_gap_us"] / 1000.0))
        print("| RSS after sign-on | %.1f MiB |" % (rss[0][1] / 1024.0), flush=True)

        if args.more > 0:
            if url is None:
                notice = second.wait_for({"event": "write", "message": lambda m: "webhook receiver listens on" in m},
                                         timeout=60)
                url = re.search(r"listens on (http://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"]).group(1)
            sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
            customers = ["4916%09d" % (100000000 + i) for i in range(16)]
            second.gap_meter("reset")
            done = 0
            seen = [0, 0, 0]  # lines counted, events scanned for them, for slow callbacks

            def lines_shown():
                count, seen[1] = second.count_since(seen[1], {"event": "write", "flags": has("recv")})
                seen[0] += count
                return seen[0]

            while done < args.more:
                count = min(args.step, args.more - done)
                sim.inbound_bulk(customers, count, text="more {n}", first=done)
                done += count
                wait_until(lambda: lines_shown() >= done, timeout=3600 * 4, interval=1, what="%d lines" % done)
                rss.append((done, rss_kib(second.proc.pid)))
                step_gap = second.gap_meter("read")
                second.gap_meter("reset")
                print("| RSS after %d more messages applied (largest main-loop gap of the step) | %.1f MiB (%.1f ms) |"
                      % (done, rss[-1][1] / 1024.0, step_gap["max_gap_us"] / 1000.0), flush=True)
                if "gap_cpu_us" in step_gap:
                    print("#   in that gap: main thread CPU %.1f ms, waiting for a core %.1f ms; most CPU between "
                          "two ticks %.1f ms" % (step_gap["gap_cpu_us"] / 1000.0, step_gap["gap_wait_us"] / 1000.0,
                                                 step_gap["max_cpu_us"] / 1000.0), flush=True)
                # only the new events: a scan of every event holds the
                # reader, and the host, writing its events, would wait
                slow, seen[2] = second.events_since(seen[2], "slow-dispatch")
                for e in sorted(slow, key=lambda e: e["wall_us"], reverse=True)[:5]:
                    print("#   slow callback: %s, %.1f ms wall, %.1f ms CPU"
                          % (function_name(e), e["wall_us"] / 1000.0, e["cpu_us"] / 1000.0), flush=True)
                if args.close_convs:
                    # libpurple keeps every line of an open conversation
                    # (its message history): closed, they are freed
                    for customer in customers:
                        second.call({"cmd": "close_conv", "conv": customer}, timeout=60)
                    print("| RSS after closing the 16 conversations | %.1f MiB |"
                          % (rss_kib(second.proc.pid) / 1024.0), flush=True)
        assert second.quit(timeout=120) == 0
    finally:
        subprocess.run([receiver, "--dir", receiver_dir, "--stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60)
        sim.stop()
        if not args.keep:
            shutil.rmtree(user_dir, True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/apply.py: how fast the plugin applies a backlog, and how long its
main loop is held meanwhile.

For each count N: a receiver journal is filled with N text-message events
while the account is offline (a first host starts the receiver and quits;
the simulator delivers; the receiver keeps them), then a second host signs
on with the gap meter running (a 5 ms repeating timer in wabiz-host that
records the largest gap between two ticks). Reported: shown events/s (the
first to the last live line), the time from sign-on to the last line, the
largest main-loop gap, that every message was shown exactly once, and the
CPU time per event of the host's main thread and of its other threads
(from /proc: a figure the load of a shared machine moves less than rates),
and the turns of the main loop over 15 ms with the CPU time the main thread
had in each (the test host's WABIZ_SLOW_TURNS: a long turn with
little CPU is the thread waiting for a core).

    bench/apply.py [--build build] [--events 30000,50000] [--customers 16]
                   [--per-body 1] [--perf | --sched] [--plugin-build OTHER_BUILD]

--perf records the applying host with `perf record -g` (perf.data in the
current directory); --sched records it with `perf sched record` and reports
how long its main thread waited for a core (the machine's share of a gap).
Not a test: it prints figures and the machine.
"""

import argparse
import collections
import json
import os
import platform
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

from hostctl import Host, has  # noqa: E402
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402

TEXT = "bench message {n}"
LINE = re.compile(r"^bench message (\d+)$")


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d cores, %s, load %s" % (cpu, os.cpu_count() or 0, platform.platform(),
                                          "%.1f %.1f %.1f" % os.getloadavg())


def thread_cpu(pid):
    """CPU seconds used so far by each thread of @pid, by thread name (the
    main thread as "main"); {} when it cannot be read (under perf)."""
    out = collections.Counter()
    tick = os.sysconf("SC_CLK_TCK")
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                stat = f.read()
            name = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            out["main" if int(tid) == pid else name] += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError):
        return {}
    return out


def sched_waits(path, pid):
    """From `perf sched record` of the host's run: how long its main thread
    waited, runnable, for a core (each wait from being woken or preempted to
    running again), and how long it ran without sleeping. A main-loop gap
    as long as such a wait is the machine's, not the plugin's."""
    out = subprocess.run(["perf", "sched", "timehist", "-i", path, "--state", "-p", str(pid)], capture_output=True, text=True,
                         timeout=600).stdout
    waits, runs, span = [], [], 0.0
    main = r"wabiz-host\[%d\]" % pid
    for line in out.splitlines():
        m = re.match(r"\s*[\d.]+\s+\[\d+\]\s+" + main + r"\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\S+)", line)
        if m is None:
            continue
        delay, run, state = float(m.group(2)), float(m.group(3)), m.group(4)
        waits.append(delay)
        span += run
        if state != "R":  # it slept: a span of running ends
            runs.append(span)
            span = 0.0
    waits.sort(reverse=True)
    return {"max_wait_ms": waits[0] if waits else 0, "waits_over_15ms": sum(1 for w in waits if w > 15),
            "max_run_ms": max(runs) if runs else 0, "top_waits": waits[:5]}


class Bench:
    def __init__(self, args):
        build = os.path.abspath(args.build)
        self.sim_bin = os.path.join(build, "tests", "sim", "wabiz-sim")
        self.host_bin = os.path.join(build, "tests", "host", "wabiz-host")
        self.plugin_dir = os.path.join(os.path.abspath(args.plugin_build or args.build), "plugin", "purple", "test")
        self.receiver = os.path.join(build, "plugin", "receiver", "wabiz-receiver")
        self.args = args

    def receiver_pending(self, receiver_dir):
        out = subprocess.run([self.receiver, "--dir", receiver_dir, "--status"],
                             capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            return None
        return sum(a["pending"] for a in json.loads(out.stdout)["accounts"])

    def host(self, sim, user_dir, wrapper=(), slow_turns=None):
        host = Host()
        opts = {"api_base_url": sim.base_url + "/v25.0", "http_timeout": 10, "app_secret": DEFAULT_APP_SECRET,
                "verify_token": "bench-verify-token", "webhook_port": 0}
        env = {"WABIZ_RECEIVER": self.receiver, "WABIZ_TEST_HOOKS": "1"}
        if slow_turns is not None:
            env["WABIZ_SLOW_TURNS"] = slow_turns
        host.start(binary=self.host_bin, plugin_dir=self.plugin_dir, user_dir=user_dir, account=sim.pnid,
                   password=sim.token, options=opts, env=env, wrapper=wrapper, timeout=60)
        return host

    def run(self, total):
        customers = ["4917%09d" % (100000007 + 7919 * i) for i in range(self.args.customers)]
        user_dir = tempfile.mkdtemp(prefix="wabiz-bench-")
        receiver_dir = os.path.join(user_dir, "wabiz", "receiver")
        sim = Sim.start(self.sim_bin, stderr=subprocess.DEVNULL)
        try:
            first = self.host(sim, user_dir)
            notice = first.wait_for({"event": "write", "message": lambda m: "webhook receiver listens on" in m},
                                    timeout=60)
            url = re.search(r"listens on (http://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"]).group(1)
            first.wait_for("signed-on", timeout=60)
            self.assertEqual(first.quit(timeout=60), 0)
            first.close()
            sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
            t = time.monotonic()
            sim.inbound_bulk(customers, total, text=TEXT, per_body=self.args.per_body, name="Customer")
            events = -(-total // self.args.per_body)
            wait_until(lambda: self.receiver_pending(receiver_dir) == events, timeout=3600, interval=1,
                       what="%d events in the receiver" % events)
            fill = time.monotonic() - t
            attempts = sim.webhooks()
            retried = sum(1 for a in attempts if a.get("status") != 200)

            wrapper = ()
            if self.args.perf:
                wrapper = ("perf", "record", "--call-graph", "dwarf,16384", "-F", "499", "-o", "perf-apply-%d.data" % total, "--")
            elif self.args.sched:
                wrapper = ("perf", "sched", "record", "-o", "sched-apply-%d.data" % total, "--")
            slow_turns = os.path.join(user_dir, "slow-turns")
            host = self.host(sim, user_dir, wrapper, slow_turns)
            host.gap_meter("start")
            signed_on = host.wait_for("signed-on", timeout=120)["_t"]
            cpu_before = thread_cpu(host.proc.pid) if not wrapper else {}
            host_pid = host.proc.pid
            if wrapper:  # the host is perf's child
                with open("/proc/%d/task/%d/children" % (host_pid, host_pid)) as f:
                    host_pid = int(f.read().split()[0])

            # acknowledged means shown; polling the receiver leaves the
            # host's event list alone (scanning it holds its reader, and a
            # host blocked on a full stdout pipe would stall)
            wait_until(lambda: self.receiver_pending(receiver_dir) == 0, timeout=3600, interval=0.5,
                       what="every event acknowledged")
            acked = time.monotonic()
            cpu_after = thread_cpu(host.proc.pid) if cpu_before else {}
            cpu = {k: (cpu_after.get(k, 0) - cpu_before.get(k, 0)) * 1e6 / total for k in cpu_after}
            gap = host.gap_meter("read")
            host.gap_meter("reset")
            time.sleep(3)
            idle_gap = host.gap_meter("read")["max_gap_us"]
            lines = host.events({"event": "write", "flags": has("recv")})
            numbers = [int(LINE.match(e["message"]).group(1)) for e in lines]
            counts = collections.Counter(numbers)
            per_customer = collections.defaultdict(list)
            for e, n in zip(lines, numbers):
                per_customer[e["conv"]].append(n)
            in_order = all(ns == sorted(ns) for ns in per_customer.values())
            if not in_order and not retried:
                for conv, ns in per_customer.items():
                    bad = [(a, b) for a, b in zip(ns, ns[1:]) if b < a]
                    if bad:
                        print("# out of order in %s: %r" % (conv, bad[:5]), file=sys.stderr)
                        break
            self.assertEqual(host.quit(timeout=120), 0)
            turns = []
            if os.path.exists(slow_turns):
                with open(slow_turns) as f:
                    turns = [tuple(float(x) for x in line.split()) for line in f if line.strip()]
            span = lines[-1]["_t"] - lines[0]["_t"]
            return {
                "events": total, "fill_s": fill,
                "shown_per_s": total / span if span > 0 else float("inf"),
                "signon_to_last_s": lines[-1]["_t"] - signed_on,
                "signon_to_acked_s": acked - signed_on,
                "max_gap_ms": gap["max_gap_us"] / 1000.0, "ticks": gap["ticks"],
                "idle_gap_ms": idle_gap / 1000.0,
                "exactly_once": set(counts) == set(range(total)) and max(counts.values()) == 1,
                "in_order": in_order,
                "missing": len(set(range(total)) - set(counts)),
                "twice": sum(1 for c in counts.values() if c > 1), "retried": retried,
                "cpu_us": cpu,
                "slow_turns": turns,
                "sched": sched_waits("sched-apply-%d.data" % total, host_pid) if self.args.sched else None,
            }
        finally:
            subprocess.run([self.receiver, "--dir", receiver_dir, "--stop"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60)
            sim.stop()
            shutil.rmtree(user_dir, True)

    @staticmethod
    def assertEqual(a, b):
        if a != b:
            raise SystemExit("unexpected: %r != %r" % (a, b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(SRC, "build"))
    parser.add_argument("--events", default="30000,50000")
    parser.add_argument("--customers", type=int, default=16)
    parser.add_argument("--per-body", type=int, default=1)
    parser.add_argument("--perf", action="store_true")
    parser.add_argument("--sched", action="store_true", help="record the host with `perf sched record` "
                        "(system-wide, sched-apply-N.data) and report its main thread's waits for a core")
    parser.add_argument("--plugin-build", help="take the plugin from another build (an older version, "
                        "for a before/after figure); the host, receiver and simulator come from --build")
    args = parser.parse_args()
    bench = Bench(args)
    print("# bench/apply.py, %s UTC" % time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
    print("# machine: %s" % machine())
    print("# %d customers, %d message(s) per webhook" % (args.customers, args.per_body))
    print("| events | fill (s) | shown/s | sign-on to last line (s) | sign-on to all acked (s) "
          "| largest main-loop gap (ms): signing on and applying / idle after | exactly once, in order "
          "| CPU µs per event: main thread / others |")
    print("|---|---|---|---|---|---|---|---|")
    for total in [int(n) for n in args.events.split(",")]:
        r = bench.run(total)
        cpu = r["cpu_us"]
        others = ", ".join("%s %.0f" % (k, v) for k, v in sorted(cpu.items()) if k != "main" and v > 0)
        print("| %d | %.1f | %.0f | %.2f | %.2f | %.1f / %.1f | %s | %s |" % (
            r["events"], r["fill_s"], r["shown_per_s"], r["signon_to_last_s"], r["signon_to_acked_s"],
            r["max_gap_ms"], r["idle_gap_ms"], ("yes, yes" if r["in_order"] else "yes, n/a (%d deliveries retried)" % r["retried"])
            if r["exactly_once"] and (r["in_order"] or r["retried"] > 0) else
            "NO (%d missing, %d more than once, in order: %s, %d deliveries retried)"
            % (r["missing"], r["twice"], r["in_order"], r["retried"]),
            "%.0f / %s" % (cpu["main"], others) if cpu else "n/a"),
            flush=True)
        turns = r["slow_turns"]
        if turns:
            longest = max(turns)
            busiest = max(turns, key=lambda t: t[1])
            print("# turns of the main loop over 15 ms (whole run, the test host's WABIZ_SLOW_TURNS): %d; longest %.1f ms "
                  "(%.1f ms of it on a core); most CPU in one turn %.1f ms (of %.1f ms)" % (
                      len(turns), longest[0], longest[1], busiest[1], busiest[0]), flush=True)
        if r["sched"] is not None:
            print("# main thread (perf sched): longest wait for a core %.1f ms (the five longest: %s), waits over "
                  "15 ms: %d, longest run without sleeping %.1f ms" % (
                      r["sched"]["max_wait_ms"], ", ".join("%.1f" % w for w in r["sched"]["top_waits"]),
                      r["sched"]["waits_over_15ms"], r["sched"]["max_run_ms"]), flush=True)


if __name__ == "__main__":
    main()

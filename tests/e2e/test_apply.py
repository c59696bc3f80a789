"""Applying what arrived while the messenger was closed: a backlog of
thousands of webhook events is shown at sign-on exactly once per message,
in each customer's order, and every event is acknowledged; the host's gap
meter (a 5 ms timer on the main loop) keeps ticking meanwhile. How fast, and
the largest gap, are figures for bench/apply.py, not assertions here. The
ids remembered as shown this session are bounded: an older one's line can
come back as history when its conversation is opened again."""

import collections
import os
import re
import time

from harness import Receiving, has, main, wait_until
from hostctl import TIMEOUT_FACTOR

# 16 customers: the simulator's bulk delivery runs 16 chains, message n in
# chain n % 16, so each customer's messages are delivered one after another,
# in order (unless a delivery is retried)
CUSTOMERS = ["4917%09d" % (200000003 + 7919 * i) for i in range(16)]
TEXT = "backlog message {n}"
LINE = re.compile(r"^backlog message (\d+)$")
ANNA = "491701234567"
BEN = "491709876543"


class Apply(Receiving):

    def pending(self):
        status = self.receiver_status()
        return sum(a["pending"] for a in status["accounts"]) if status is not None else None

    def test_backlog_of_thousands_shown_once_in_order_and_acked(self):
        # under the sanitizers (every allocation unwinds its stack) the
        # receiver takes in about 10 deliveries a second on a loaded machine
        total = 1000 if os.environ.get("WABIZ_SANITIZED") == "1" else 3000
        host = self.start_receiving_host()
        self.assertEqual(host.quit(), 0)
        self.hosts.remove(host)
        host.close()
        self.sim.inbound_bulk(CUSTOMERS, total, text=TEXT, name="Customer")
        self.wait_delivered(total, timeout=300 * TIMEOUT_FACTOR)
        self.assertEqual(self.pending(), total)
        # a retried delivery may land after later ones of its chain: its
        # place in a customer's order is not known
        retried = set()
        for attempt in self.sim.webhooks():
            if attempt.get("status") != 200:
                retried.update(int(n) for n in re.findall(r"backlog message (\d+)", attempt.get("body") or ""))

        again = self.start_receiving_host(connect_sim=False)
        meter = again.gap_meter("start")
        self.assertTrue(meter["running"])
        self.assertEqual(meter["interval_ms"], 5)

        def shown():
            return len(again.events({"event": "write", "flags": has("recv")}))
        wait_until(lambda: shown() >= total, timeout=300 * TIMEOUT_FACTOR, interval=0.5,
                   what="%d backlog lines" % total)
        wait_until(lambda: self.pending() == 0, timeout=60 * TIMEOUT_FACTOR, interval=0.2,
                   what="every event acknowledged")
        again.consume_all()
        again.expect_none({"event": "write", "flags": has("recv")}, 1.0)
        meter = again.gap_meter("read")
        print("backlog of %d: largest main-loop gap %.1f ms over %d ticks"
              % (total, meter["max_gap_us"] / 1000.0, meter["ticks"]))
        self.assertGreater(meter["ticks"], 0)
        self.assertFalse(again.gap_meter("stop")["running"])

        lines = again.events({"event": "write", "flags": has("recv")})
        numbers = []
        for line in lines:
            match = LINE.match(line["message"])
            self.assertIsNotNone(match, line)
            # history lines (from the store) carry no-log and no-linkify; a live
            # line may be "delayed" (late: a slow run takes minutes)
            self.assertNotIn("no-linkify", line["flags"], "a backlog line came as history: %r" % line)
            n = int(match.group(1))
            self.assertEqual((line["conv"], line["who"]), (CUSTOMERS[n % 16], CUSTOMERS[n % 16]), line)
            numbers.append(n)
        counts = collections.Counter(numbers)
        self.assertEqual(sorted(counts), list(range(total)))
        self.assertEqual({n: c for n, c in counts.items() if c > 1}, {})
        per_customer = collections.defaultdict(list)
        for n in numbers:
            if n not in retried:
                per_customer[n % 16].append(n)
        for customer, ns in per_customer.items():
            self.assertEqual(ns, sorted(ns), "customer %d's lines out of order" % customer)
        self.assertEqual(again.quit(), 0)

    def test_ids_shown_this_session_are_bounded(self):
        """With room for 20 ids (WABIZ_TEST_SHOWN_KEPT), Anna's 5 messages
        are forgotten once Ben's 20 were shown: opening her conversation
        again shows hers as history (Ben's open conversation gets nothing)."""
        host = self.start_receiving_host(env={"WABIZ_TEST_SHOWN_KEPT": "20"})
        now = int(time.time())
        for who, count in ((ANNA, 5), (BEN, 20)):
            for i in range(count):
                self.sim.inbound("line %02d" % i, sender=who, timestamp=now - 300 + i)
            for i in range(count):
                host.wait_for({"event": "write", "conv": who, "flags": has("recv"), "message": "line %02d" % i})
        wait_until(lambda: self.pending() == 0, timeout=30 * TIMEOUT_FACTOR, interval=0.2,
                   what="every event acknowledged")
        host.call({"cmd": "close_conv", "conv": ANNA})
        host.call({"cmd": "command", "conv": ANNA, "text": "help"})
        history = [host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv", "delayed")})["message"]
                   for _ in range(5)]
        self.assertEqual(history, ["line %02d" % i for i in range(5)])
        host.consume_all()
        host.expect_none({"event": "write", "flags": has("recv")}, 1.0)


if __name__ == "__main__":
    main()

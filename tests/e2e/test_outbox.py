"""The durable outbox end to end: messages are stored before they are sent,
survive restarts and kill -9, go out in order once the API answers again,
and messages that may have been sent are resent only when the agent says so.
"""

import collections
import re
import signal
import socket
import threading

from harness import Receiving, contains, has, main, wait_until
from hostctl import TIMEOUT_FACTOR

ANNA = "491701234567"


class Gate:
    """A TCP proxy in front of the simulator that can go down (connections
    refused: the API provably never saw a request) and up again on the same
    port."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.up()

    def up(self):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def down(self):
        with self.lock:
            sock, self.listener = self.listener, None
            conns, self.conns = self.conns, []
        if sock is not None:
            # close() alone does not wake a thread blocked in accept() (which
            # would then take one more connection); shutdown() does
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, sock):
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Outbox(Receiving):

    def bodies_sent(self):
        """Texts the simulator accepted, in order, with the recipient."""
        return [(m["request"].get("to", "").lstrip("+"), m["request"]["text"]["body"])
                for m in self.sim.sent() if m["request"].get("type") == "text"]

    def assert_each_once_in_order(self, expected):
        """`expected`: {customer: [bodies in order]}: each accepted exactly
        once, per customer in the order written."""
        by_customer = collections.defaultdict(list)
        for to, body in self.bodies_sent():
            by_customer[to].append(body)
        self.assertEqual(dict(by_customer), expected)

    def rate_limit_everything(self):
        # Meta's throughput error: provably not taken, retried by the outbox
        self.sim.fault(path="/messages", status=400, code=130429, count=-1)

    def test_api_down_then_up_in_order(self):
        gate = Gate(int(self.api_url().split(":")[2].split("/")[0]))
        self.addCleanup(gate.down)
        host = self.start_host(options={"api_base_url": "http://127.0.0.1:%d/v25.0" % gate.port,
                                        "send_retry_delay_ms": 100})
        gate.down()
        customers = ["49170100000%d" % i for i in range(3)]
        expected = {c: [] for c in customers}
        for n in range(10):
            for c in customers:
                body = "message %d to %s" % (n, c)
                host.send_im(c, body)
                expected[c].append(body)
        for c in customers:
            host.wait_for({"event": "write", "conv": c, "flags": has("system"),
                           "message": contains("waiting, retrying")})
        host.expect_none("disconnect", 0.5)
        self.assertEqual(self.bodies_sent(), [])
        gate.up()
        wait_until(lambda: len(self.bodies_sent()) >= 30 or None, timeout=60, what="30 messages sent")
        host.expect_none({"event": "write", "flags": has("error")}, 0.5)
        self.assert_each_once_in_order(expected)
        for c in customers:
            host.wait_for({"event": "write", "conv": c, "message": contains("waiting messages have been sent")})

    def test_queued_messages_survive_a_restart_and_come_back_as_history(self):
        host = self.start_host(user_dir=self.user_dir)
        self.rate_limit_everything()
        for n in range(4):
            host.send_im(ANNA, "reply %d" % n)
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("waiting, retrying")})
        host.quit()
        self.hosts.remove(host)
        host.close()
        self.assertEqual(self.bodies_sent(), [])
        # signed in again, the API still refusing: still queued, nothing lost
        host = self.start_host(user_dir=self.user_dir)
        host.wait_for({"event": "write", "conv": "notices",
                       "message": contains("4 messages waiting from before are being sent")})
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("waiting, retrying")})
        self.sim.clear_faults()
        wait_until(lambda: len(self.bodies_sent()) >= 4 or None, what="the queued messages")
        self.assert_each_once_in_order({ANNA: ["reply %d" % n for n in range(4)]})
        # the agent's messages are in the history of a new session
        host.quit()
        self.hosts.remove(host)
        host.close()
        host = self.start_host(user_dir=self.user_dir)
        host.call({"cmd": "send", "to": ANNA, "text": "and one more"})
        history = [host.wait_for({"event": "write", "conv": ANNA, "flags": has("delayed"),
                                  "message": contains("reply %d" % n)}) for n in range(4)]
        for line in history:
            self.assertIn("send", line["flags"])
        wait_until(lambda: len(self.bodies_sent()) >= 5 or None, what="the new message")
        self.assertEqual(len(self.bodies_sent()), 5)

    def test_killed_with_500_queued_none_lost_none_twice(self):
        self.rate_limit_everything()
        customers = ["4917020000%02d" % i for i in range(50)]
        host = self.start_host(user_dir=self.user_dir,
                               env={"WABIZ_TEST_HOOKS": "1", "WABIZ_TEST_CRASH": "outbox-queued:500"})
        expected = {c: [] for c in customers}
        for n in range(10):
            for c in customers:
                body = "update %d for %s" % (n, c)
                expected[c].append(body)
                try:
                    host.send_im(c, body)
                except Exception:  # the host may die right after the 500th commit
                    pass
        wait_until(lambda: host.proc.poll() is not None or None, timeout=60, what="the host to be killed")
        self.assertEqual(host.proc.returncode, -signal.SIGKILL)
        self.assertIn("test crash at outbox-queued #500", host.stderr_text())
        self.hosts.remove(host)
        host.close()
        self.assertEqual(self.bodies_sent(), [])
        self.sim.clear_faults()
        # a generous timeout: 500 sends at once under a sanitizer must not
        # time out (a timed-out send is uncertain, and would be asked about)
        host = self.start_host(user_dir=self.user_dir, options={"uncertain_grace_seconds": 1, "http_timeout": 300})
        note = host.wait_for({"event": "write", "conv": "notices",
                              "message": contains("waiting from before are being sent")})
        restored = int(re.search(r"(\d+) messages? waiting", note["message"]).group(1))
        # those whose request was under way at the kill may have gone out:
        # they wait for the agent, everything else goes
        wait_until(lambda: len(self.bodies_sent()) >= restored or None, timeout=120,
                   what="%d messages sent" % restored)
        if restored < 500:
            ask = host.wait_for({"event": "request", "kind": "action"}, timeout=30)
            self.assertIn("%d message" % (500 - restored), ask["primary"])
            sent = self.bodies_sent()
            self.assertEqual(len(sent), len(set(sent)), "nothing sent twice before the agent decided")
            self.assertEqual(len(sent), restored)
            host.answer(ask["id"], action=0)  # resend all
            wait_until(lambda: len(self.bodies_sent()) >= 500 or None, timeout=60, what="500 messages sent")
        host.expect_none({"event": "request"}, 0.5)
        # each exactly once (those resent by the agent's decision never
        # reached the API before: it refused everything)
        by_customer = collections.defaultdict(list)
        for to, body in self.bodies_sent():
            by_customer[to].append(body)
        self.assertEqual({c: sorted(b) for c, b in by_customer.items()},
                         {c: sorted(b) for c, b in expected.items()})
        if restored == 500:
            self.assert_each_once_in_order(expected)

    def test_count_at_sign_off_includes_one_in_flight_that_comes_back_unsent(self):
        """Signed off with a request in flight: the conversation is told how
        many wait once that request has ended: with it when Meta refused it
        (rate limit: it waits too), without it when Meta took it."""
        host = self.start_host()
        ben = "491709876543"
        carl = "491705550000"
        # Anna's first request: held, then refused by the rate limit; Ben's:
        # held, then accepted (both within the sign-off grace of 5 s)
        self.sim.fault(path="/messages", status=400, code=130429, delay_ms=3000, count=1)
        host.send_im(ANNA, "anna 0")
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 1 or None,
                   what="Anna's first send to be held")
        self.sim.fault(path="/messages", delay_ms=3000, count=1)
        host.send_im(ben, "ben 0")
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 2 or None,
                   what="Ben's first send to be held")
        host.send_im(ANNA, "anna 1")
        host.send_im(ANNA, "anna 2")
        host.send_im(ben, "ben 1")
        # the store answers in order: once a later customer's message went
        # out, the three above are in the outbox behind the held requests
        host.send_im(carl, "carl 0")
        wait_until(lambda: ("carl 0" in [b for _, b in self.bodies_sent()]) or None, what="Carl's message sent")
        host.disconnect()
        host.wait_for("signed-off")
        anna = host.wait_for({"event": "write", "conv": ANNA, "flags": has("system"),
                              "message": contains("wait in the outbox")})
        self.assertIn("3 messages to this customer wait in the outbox", anna["message"])
        ben_line = host.wait_for({"event": "write", "conv": ben, "flags": has("system"),
                                  "message": contains("in the outbox")})
        self.assertIn("1 message to this customer waits in the outbox", ben_line["message"])
        host.expect_none({"event": "write", "message": contains("in the outbox")}, 1.0)
        # and that is what goes out at the next sign-on
        self.sim.clear_faults()
        host.connect()
        host.wait_for("signed-on")
        wait_until(lambda: len(self.bodies_sent()) >= 6 or None, what="the waiting messages")
        self.assert_each_once_in_order({ANNA: ["anna 0", "anna 1", "anna 2"], ben: ["ben 0", "ben 1"],
                                        carl: ["carl 0"]})

    def test_uncertain_ones_are_resent_only_when_the_agent_says_so(self):
        host = self.start_receiving_host(options={"uncertain_grace_seconds": 1})
        self.sim.inbound("Where is my order?", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        # two answers lost before Meta took them, two lost after it did
        self.sim.fault(path="/messages", reset=True, count=2)
        self.sim.fault(path="/messages", reset=True, process=True, count=2)
        for n in range(4):
            host.send_im(ANNA, "maybe %d" % n)
        # the two Meta took are resolved by their status webhooks (before or
        # after the conversation was told they may not have gone)
        for _ in range(2):
            host.wait_for({"event": "write", "conv": ANNA, "message": contains("did reach WhatsApp after all")})
        self.assertEqual(sorted(b for _, b in self.bodies_sent()), ["maybe 2", "maybe 3"])
        # the other two: one question, never an automatic resend
        ask = host.wait_for({"event": "request", "kind": "action"}, timeout=30)
        self.assertIn("2 messages may have been sent", ask["primary"])
        self.assertEqual(len(ask["actions"]), 3)
        self.assertEqual(len(self.bodies_sent()), 2)
        host.answer(ask["id"], action=2)  # list
        listing = host.wait_for({"event": "notify", "kind": "formatted", "text": contains("maybe")})
        self.assertIn("maybe 0", listing["text"])
        self.assertIn("maybe 1", listing["text"])
        self.assertNotIn("maybe 2", listing["text"])
        again = host.wait_for({"event": "request", "kind": "action"})
        host.answer(again["id"], action=0)  # resend all
        wait_until(lambda: len(self.bodies_sent()) >= 4 or None, what="the resent messages")
        self.assertEqual(sorted(b for _, b in self.bodies_sent()), ["maybe %d" % n for n in range(4)])
        host.expect_none({"event": "request"}, 2.0)

    def test_dropping_uncertain_ones_and_resend_command(self):
        host = self.start_receiving_host(options={"uncertain_grace_seconds": 3600})
        self.sim.fault(path="/messages", reset=True, count=1)
        host.send_im(ANNA, "lost answer")
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("may or may not have been sent")})
        # the grace period has not passed: /resend asks at once
        host.expect_none({"event": "request"}, 0.5)
        host.call({"cmd": "command", "conv": ANNA, "text": "resend"})
        ask = host.wait_for({"event": "request", "kind": "action"})
        self.assertIn("1 message may have been sent", ask["primary"])
        host.answer(ask["id"], action=1)  # drop
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("Not sent again, as you decided")})
        host.call({"cmd": "command", "conv": ANNA, "text": "resend"})
        host.wait_for({"event": "write", "message": contains("No message is waiting for a decision")})
        self.assertEqual(self.bodies_sent(), [])

    def test_dropped_one_that_went_after_all_is_told(self):
        """Meta took it, its answer was lost, the agent dropped it: when its
        status comes, the conversation says it went, and the store holds it
        as delivered."""
        host = self.start_receiving_host(options={"uncertain_grace_seconds": 3600})
        self.sim.inbound("hello", sender=ANNA)  # the window opens
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        self.sim.config(status_delay_ms=int(3000 * TIMEOUT_FACTOR))
        self.sim.fault(path="/messages", reset=True, process=True, count=1)
        host.send_im(ANNA, "taken, answer lost")
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("may or may not have been sent")})
        host.call({"cmd": "command", "conv": ANNA, "text": "resend"})
        ask = host.wait_for({"event": "request", "kind": "action"})
        host.answer(ask["id"], action=1)  # drop
        dropped = host.wait_for({"event": "write", "conv": ANNA, "message": contains("Not sent again, as you decided")})
        went = host.wait_for({"event": "write", "conv": ANNA, "message": contains("did reach WhatsApp after all")},
                             timeout=30)
        self.assertLess(dropped["_t"], went["_t"])
        self.assertEqual(self.bodies_sent(), [(ANNA, "taken, answer lost")])


if __name__ == "__main__":
    main()

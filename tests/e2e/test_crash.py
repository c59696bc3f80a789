"""Crashes while customers write: the plugin's own test hook
(WABIZ_TEST_HOOKS=1, WABIZ_TEST_CRASH=<point>:<n>) kills the host with SIGKILL
at a chosen step of applying inbound events (stored, shown, marked shown,
acknowledged: the receiver confirmed the ACK) while messages arrive through
wabiz-receiver, or the statuses of messages sent elsewhere; the host is
started again on the same user dir until every message is shown.

What the agent must see: every customer message shown exactly once as it
arrives (a live line, not only as history), in its customer's conversation.
One documented exception: messages are applied in batches, and the "shown"
marks of a batch are committed together after its lines: killed between
showing lines and committing their marks, those lines (at most BATCH, the
last ones the killed run showed) may be shown a second time after the
restart."""

import collections
import json
import os
import re
import signal
import time

from harness import DEFAULT_APP_SECRET, RECEIVER_ARGS, VERIFY_TOKEN, Receiving, has, main, wait_until
from hostctl import TIMEOUT_FACTOR

# 20 customers; message n comes from CUSTOMERS[n % 20] (the simulator's bulk rule)
CUSTOMERS = ["4917%09d" % (100000007 + 7919 * i) for i in range(20)]
TEXT = "crash test message {n}"
LINE = re.compile(r"^crash test message (\d+)$")
ELSEWHERE = "[A message sent from another app or device; its text is not available here]"
# the most lines shown and not yet marked shown at any time (APPLY_WINDOW in
# plugin/purple/wabiz-inbound.c): what a kill may show a second time
BATCH = 64


class Crash(Receiving):

    def setUp(self):
        super().setUp()
        self.runs = []  # [(host, crash spec or None)], in order

    def test_installed_plugin_has_no_test_hooks(self):
        """The plugin that is installed (build/plugin/purple, not the test
        build the suites load) has no test hooks, whatever its environment
        says: no crash point fires, no clock IPC exists."""
        host = self.start_receiving_host(env={"WABIZ_TEST_CRASH": "inbound-stored:1"},
                                         plugin_dir=os.environ["WABIZ_INSTALLED_PLUGIN_DIR"])
        self.sim.inbound("crash test message 1", sender="491701234567")
        host.wait_for({"event": "write", "flags": has("recv"), "message": "crash test message 1"})
        answer = host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "90000"},
                           expect_error=True)
        self.assertIn("no such IPC command", answer["message"])
        host.ping()
        self.assertNotIn("test crash", host.stderr_text())

    # ---- running hosts -----------------------------------------------------

    def start_run(self, crash=None):
        """Starts a host on the test's user dir, the crash hook armed at
        crash ("point:n") when given. The first run also starts the receiver
        and points the simulator at it; later runs find both running (the
        receiver keeps its port) and wait for nothing: a run may die early."""
        env = {"WABIZ_TEST_CRASH": crash} if crash else {}
        if not self.runs:
            host = self.start_receiving_host(env=env)
        else:
            env.update({"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1",
                        "WABIZ_RECEIVER_ARGS": RECEIVER_ARGS})
            host = self.start_host(options={"app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN,
                                            "webhook_port": 0},
                                   env=env, user_dir=self.user_dir, wait_signed_on=False)
        self.runs.append((host, crash))
        return host

    def expect_crash(self, host, crash, timeout=120):
        """The host kills itself at crash ("point:n"): SIGKILL, and the
        hook's line on stderr."""
        point, n = crash.rsplit(":", 1)
        code = host.wait_exit(timeout=timeout)
        tail = host.stderr_text()[-3000:]
        self.assertEqual(code, -signal.SIGKILL, "the host was to die by SIGKILL at %s; stderr:\n%s" % (crash, tail))
        self.assertIn("wabiz: test crash at %s #%s\n" % (point, n), host.stderr_text(),
                      "the host died, but not at %s; stderr:\n%s" % (crash, tail))

    # ---- what was shown ----------------------------------------------------

    def lines(self, run=None):
        """Every received-message line of the runs (or of one run), oldest
        first: {"run", "n", "live", "event"}. History lines (written from the
        store when a conversation opens) carry "delayed"; live ones do not."""
        found = []
        for index, (host, _) in enumerate(self.runs):
            if run is not None and index != run:
                continue
            for event in host.events({"event": "write", "flags": has("recv")}):
                match = LINE.match(event["message"])
                self.assertIsNotNone(match, "an unexpected received line: %r" % event)
                found.append({"run": index, "n": int(match.group(1)),
                              "live": "delayed" not in event["flags"], "event": event})
        return found

    def wait_all_shown(self, host, total, timeout):
        """Waits until each of the total messages was shown live in some run
        and the receiver holds no event of the account, then a second for
        anything late."""
        def shown():
            return {line["n"] for line in self.lines() if line["live"]}
        try:
            wait_until(lambda: len(shown()) >= total, timeout=timeout * TIMEOUT_FACTOR, interval=0.1,
                       what="all %d messages shown" % total)
        except AssertionError as error:
            missing = sorted(set(range(total)) - shown())
            raise AssertionError("%s: %d missing, e.g. %s; receiver: %r"
                                 % (error, len(missing), missing[:20], self.receiver_status())) from None

        def acknowledged():
            status = self.receiver_status()
            return status is not None and [a["pending"] for a in status["accounts"]] == [0]
        try:
            wait_until(acknowledged, timeout=30 * TIMEOUT_FACTOR, interval=0.1,
                       what="the receiver to hold no event of the account")
        except AssertionError as error:
            raise AssertionError("%s: %r" % (error, self.receiver_status())) from None
        # nothing more comes (a late duplicate would show here)
        host.consume_all()
        host.expect_none({"event": "write", "flags": has("recv")}, 1.0)

    def check_exactly_once(self, total, may_repeat=()):
        """Each of the total messages was shown live exactly once (those in
        may_repeat at most twice), in its customer's conversation; history
        lines only ever repeat what an earlier run showed live."""
        lines = self.lines()
        live = [line for line in lines if line["live"]]
        counts = collections.Counter(line["n"] for line in live)
        everything = set(range(total))
        shown_at_all = {line["n"] for line in lines}
        missing = sorted(everything - shown_at_all)
        self.assertEqual(missing, [], "%d messages never shown (live or as history): %s"
                         % (len(missing), missing[:20]))
        only_history = sorted(everything - set(counts))
        self.assertEqual(only_history, [], "%d messages shown only as history, never live: %s"
                         % (len(only_history), only_history[:20]))
        self.assertEqual(sorted(set(counts) - everything), [], "lines for messages never sent")
        twice = {n: c for n, c in counts.items() if c > 1}
        allowed = {n: c for n, c in twice.items() if n in may_repeat and c == 2}
        extra = {n: c for n, c in twice.items() if n not in allowed}
        where = {n: [(line["run"], self.runs[line["run"]][1]) for line in live if line["n"] == n]
                 for n in list(extra)[:10]}
        self.assertEqual(extra, {}, "messages shown live more than once (run, crash point): %r" % where)
        for line in live:
            customer = CUSTOMERS[line["n"] % len(CUSTOMERS)]
            self.assertEqual((line["event"]["conv"], line["event"]["who"]), (customer, customer), line)
        first_live_run = {}
        for line in live:
            first_live_run.setdefault(line["n"], line["run"])
        for line in lines:
            if not line["live"]:
                self.assertLess(first_live_run[line["n"]], line["run"],
                                "history showed message %d before it was shown live" % line["n"])

    def last_lines(self, run, count=BATCH):
        """The numbers of the last count live lines a run showed: those a
        kill may show again."""
        return {line["n"] for line in [line for line in self.lines(run=run) if line["live"]][-count:]}

    def post(self, total, per_body=1):
        result = self.sim.inbound_bulk(CUSTOMERS, total, text=TEXT, per_body=per_body, name="Customer")
        self.assertEqual(result["messages"], total)

    # ---- scenarios -----------------------------------------------------------

    def test_inbound_2000_killed_at_each_point(self):
        """2,000 messages from 20 customers; the host is killed at every step
        of applying an event: early (the first run normally dies while the
        simulator is still delivering), at each of the four points (the
        tenth batch acknowledged), and on the very first event after a
        restart (a redelivered one); the last run goes to the end. Only the
        last lines of a killed run (at most one batch) may come again."""
        total = 2000
        crashes = ["inbound-stored:300", "inbound-shown:250", "inbound-marked:400", "inbound-acked:10",
                   "inbound-stored:1"]
        may_repeat = set()
        for crash in crashes:
            host = self.start_run(crash)
            if len(self.runs) == 1:
                self.post(total)
            self.expect_crash(host, crash)
            # the lines shown last before the kill: their marks were perhaps not committed
            may_repeat |= self.last_lines(len(self.runs) - 1)
        # killed before showing its 300th message: 299 shown, none as history
        first = self.lines(run=0)
        self.assertEqual((len(first), all(line["live"] for line in first)), (299, True))
        host = self.start_run()
        self.wait_all_shown(host, total, timeout=150)
        self.assertEqual(host.quit(), 0)
        self.check_exactly_once(total, may_repeat)

    def test_inbound_batched_webhooks_killed_mid_batch(self):
        """Meta batches messages: 500 messages, 10 to a webhook (one event
        each in the receiver). Killed inside a batch, after some of its
        messages were shown: none of those may come again (only the one
        shown right before a kill at inbound-shown)."""
        total = 500
        # hits count messages: 35 and 57 are the 5th and 7th of a webhook
        crashes = ["inbound-stored:35", "inbound-shown:57", "inbound-marked:123", "inbound-acked:1"]
        may_repeat = set()
        for crash in crashes:
            host = self.start_run(crash)
            if len(self.runs) == 1:
                self.post(total, per_body=10)
            self.expect_crash(host, crash)
            may_repeat |= self.last_lines(len(self.runs) - 1)
        host = self.start_run()
        self.wait_all_shown(host, total, timeout=60)
        self.assertEqual(host.quit(), 0)
        self.check_exactly_once(total, may_repeat)

    def test_inbound_killed_between_show_and_mark(self):
        """Killed after showing the 10th message, before the "shown" marks of
        its batch are committed: those 10 may come twice, no other one."""
        total = 50
        host = self.start_run("inbound-shown:10")
        self.post(total)
        self.expect_crash(host, "inbound-shown:10")
        before = self.lines(run=0)
        self.assertEqual(len(before), 10)
        host = self.start_run()
        self.wait_all_shown(host, total, timeout=60)
        self.assertEqual(host.quit(), 0)
        self.check_exactly_once(total, may_repeat={line["n"] for line in before})

    def test_inbound_backlog_killed_mid_batch_repeats_at_most_one_batch(self):
        """A backlog of 600 messages applied at sign-on (batches of the
        most the receiver sends at a time), killed after the 200th line:
        at most one batch of lines, the last ones before the kill, comes
        again; every other line exactly once."""
        total = 600
        host = self.start_run()
        self.assertEqual(host.quit(), 0)
        self.post(total)
        self.wait_delivered(total, timeout=120)
        host = self.start_run("inbound-shown:200")
        self.expect_crash(host, "inbound-shown:200")
        self.assertEqual(len(self.lines(run=1)), 200)
        host = self.start_run()
        self.wait_all_shown(host, total, timeout=120)
        self.assertEqual(host.quit(), 0)
        self.check_exactly_once(total, may_repeat=self.last_lines(1))

    def test_inbound_killed_before_show_is_shown_after_restart(self):
        """Killed after the message was stored, before it was shown: nothing
        is shown in that run, and the restart shows it, once, live."""
        host = self.start_run("inbound-stored:1")
        self.post(1)
        self.expect_crash(host, "inbound-stored:1")
        self.assertEqual(self.lines(run=0), [])
        host = self.start_run()
        self.wait_all_shown(host, 1, timeout=30)
        self.assertEqual(host.quit(), 0)
        self.check_exactly_once(1)
        self.assertEqual([line["live"] for line in self.lines()], [True])

    def test_inbound_acked_reaches_the_receiver_before_the_kill(self):
        """Killed at inbound-acked, the point where the receiver confirmed
        the first batch's ACK (it deleted the batch's events): whatever
        else the run did, the receiver holds at most the other events, and
        the restart shows each message once, but for lines of a later
        batch shown before the kill whose "shown" marks were not recorded
        yet (the crash rule: the simulator delivers in parallel, so a later
        batch may have started): at most the events shown in the first run
        that the receiver still held, each at most twice."""
        total = 10
        host = self.start_run("inbound-acked:1")
        self.post(total)
        self.expect_crash(host, "inbound-acked:1")
        shown = len(self.lines(run=0))
        self.assertGreaterEqual(shown, 1)
        self.wait_delivered(total)
        status = self.receiver_status()
        pending = [a["pending"] for a in status["accounts"]] if status is not None else None
        # no event is deleted without its ACK: those shown after the first
        # batch may or may not have been acknowledged before the kill
        self.assertIsNotNone(pending)
        self.assertLess(pending[0], total, "the receiver did not have the first ACK")
        self.assertGreaterEqual(pending[0], total - shown)
        # events shown before the kill and not acknowledged: their lines
        # may have been shown without their marks recorded
        unacked_shown = pending[0] - (total - shown)
        before = {line["n"] for line in self.lines(run=0) if line["live"]}
        host = self.start_run()
        self.wait_all_shown(host, total, timeout=60)
        self.assertEqual(host.quit(), 0)
        again = {line["n"] for line in self.lines(run=1) if line["live"]} & before
        self.assertLessEqual(len(again), unacked_shown,
                             "more lines shown again than events shown and not acknowledged before the kill")
        self.check_exactly_once(total, may_repeat=again)

    def test_statuses_of_one_event_killed_mid_way(self):
        """One event with the statuses of five messages the business sent
        from elsewhere (each shows a "sent from another app" line in its
        customer's conversation), applied one after another like messages:
        killed after the first line's "shown" mark, then while storing the
        second, then after showing the second line of a run: each line is
        shown live once (the one shown right before a kill at inbound-shown
        at most twice), and none is lost, not even one stored before a kill
        that came before its line was shown."""
        total = 5
        waba = self.sim.info()["waba_id"]
        statuses = [{"id": "wamid.elsewhere-crash-%d" % i, "status": "sent", "timestamp": str(int(time.time())),
                     "recipient_id": CUSTOMERS[i]} for i in range(total)]
        body = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                "statuses": statuses}}]}]}

        def live(run=None):
            return [(index, event["conv"])
                    for index, (host, _) in enumerate(self.runs) if run is None or index == run
                    for event in host.events({"event": "write", "flags": has("send", "remote-send"),
                                              "message": ELSEWHERE})
                    if "delayed" not in event["flags"]]
        may_repeat = set()
        for crash in ("inbound-marked:1", "inbound-stored:2", "inbound-shown:2"):
            host = self.start_run(crash)
            if len(self.runs) == 1:
                self.sim.webhook_raw(json.dumps(body))
            self.expect_crash(host, crash, timeout=30 * TIMEOUT_FACTOR)
            if crash.startswith("inbound-shown:"):
                may_repeat.add(live(run=len(self.runs) - 1)[-1][1])
        # killed storing the second: only the first was shown
        # one after another: the first was marked shown before the second
        # was even stored; the second run died storing the second (the first
        # is not shown again), the third showed the second and the third
        self.assertEqual([conv for _, conv in live(run=0)], [CUSTOMERS[0]])
        self.assertEqual(live(run=1), [])
        self.assertEqual([conv for _, conv in live(run=2)], CUSTOMERS[1:3])
        host = self.start_run()
        wait_until(lambda: {conv for _, conv in live()} >= set(CUSTOMERS[:total]) or None,
                   timeout=30 * TIMEOUT_FACTOR, what="every sent-elsewhere line shown")
        wait_until(lambda: [a["pending"] for a in (self.receiver_status() or {"accounts": [{}]})["accounts"]] == [0]
                   or None, timeout=30 * TIMEOUT_FACTOR, what="the event acknowledged")
        host.consume_all()
        host.expect_none({"event": "write", "message": ELSEWHERE}, 1.0)
        self.assertEqual(host.quit(), 0)
        counts = collections.Counter(conv for _, conv in live())
        self.assertEqual(set(counts), set(CUSTOMERS[:total]))
        twice = {conv: n for conv, n in counts.items() if n > 1 and not (conv in may_repeat and n == 2)}
        self.assertEqual(twice, {}, "sent-elsewhere lines shown more than once: %r" % live())


if __name__ == "__main__":
    main()

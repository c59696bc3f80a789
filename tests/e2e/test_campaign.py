"""Notifications to many customers (campaigns) end to end: /notify with a
CSV file of a few hundred recipients with mixed consent, invalid and
duplicate rows, asked once (who receives it, who is skipped and why), sent
through the outbox at the throughput option against injected 130429 and
131056, each eligible recipient exactly once (the simulator's /_sim/sent)
and the CSV report; pause and resume; kill -9 in the middle and a restart
that goes on without sending anyone twice; two overlapping campaigns that
never send the same template to a customer twice in a day; a buddy group
with fixed values."""

import csv
import os
import re
import tempfile
import time

from harness import TWO_NUMBERS, Receiving, contains, main, regex, wait_until

PROMO = {
    "name": "spring_sale", "language": "en", "category": "MARKETING",
    "components": [{"type": "BODY", "text": "Hi {{1}}, spring sale: {{2}} off today."}]}

NOTE = {
    "name": "store_note", "language": "en", "category": "UTILITY",
    "components": [{"type": "BODY", "text": "Our store is closed on {{1}}."}]}

OFFER = {
    "name": "flash_offer", "language": "en", "category": "MARKETING",
    "components": [{"type": "LIMITED_TIME_OFFER", "limited_time_offer": {"text": "Ends soon", "has_expiration": True}},
                   {"type": "BODY", "text": "Hi {{1}}, use {{2}} today."},
                   {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]}]}


def number(i):
    return "4917%08d" % (10000000 + i)


class Campaign(Receiving):

    sim_opts = TWO_NUMBERS

    def setUp(self):
        super().setUp()
        self.sim.add_templates([PROMO, NOTE, OFFER])
        # the number's throughput at the simulator: well above the option's
        self.sim.config(throughput_mps=5000, pair_burst=1000)
        self.waba = self.sim.info()["waba_id"]
        self.dir = tempfile.mkdtemp(prefix="wabiz-campaign-")

    def start(self, **options):
        opts = {"waba_id": self.waba, "campaign_throughput": "80", "send_retry_delay_ms": 50}
        opts.update(options)
        self.host = self.start_receiving_host(options=opts)
        return self.host

    def write_csv(self, name, rows, header=("to", "1", "2", "consent")):
        path = os.path.join(self.dir, name)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for row in rows:
                w.writerow(row)
        return path

    def notify(self, text, answer=0, conv="notices", account=None):
        """/notify (in a conversation of ``account``, default the first);
        answers its one question; returns the question."""
        result = self.host.command(conv, "/notify " + text, account=account)
        self.assertEqual(result["status"], "ok", result)
        ask = self.host.wait_for({"event": "request", "kind": "action", "title": "Send notification",
                                  "account": account or self.sim.pnid}, timeout=60)
        self.host.answer(ask["id"], action=answer)
        return ask

    def campaign_chat(self):
        line = self.host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                                   "message": contains("Sending template")}, timeout=60)
        return line["conv"]

    def template_sends(self, name="spring_sale"):
        return [m for m in self.sim.sent() if m["type"] == "template" and m["request"]["template"]["name"] == name]

    def report(self, chat):
        path = os.path.join(self.dir, "report-%d.csv" % time.monotonic_ns())
        result = self.host.command(chat, "/report " + path)
        self.assertEqual(result["status"], "ok", result)
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("written to")}, timeout=30)
        with open(path, newline="") as f:
            return list(csv.DictReader(f))

    def mixed_rows(self, count):
        """Every third opted in, every third without consent, every third
        opted out; returns the rows and the numbers that may receive it."""
        rows, eligible = [], []
        for i in range(count):
            consent = ("opt-in", "", "opt-out")[i % 3]
            rows.append((number(i), "Customer %d" % i, "%d %%" % (10 + i % 20), consent))
            if consent == "opt-in":
                eligible.append(number(i))
        return rows, eligible

    def test_mixed_consent_with_rate_faults_each_once_and_report(self):
        count = int(os.environ.get("WABIZ_CAMPAIGN_SIZE", "2000"))
        rows, eligible = self.mixed_rows(count)
        rows += [("12", "Too short", "5 %", "opt-in"), ("not a number", "X", "5 %", "opt-in"),
                 (number(0), "Again", "5 %", "opt-in")]
        path = self.write_csv("mixed.csv", rows)
        self.start()
        # throughput reached now and then, and one customer's pair limit
        # (a few: each 130429 halves the campaign's rate, which recovers slowly)
        self.sim.fault(path="/messages", code=130429, probability=0.05, seed=1, count=2)
        self.sim.fault(path="/messages", code=131056, probability=0.03, seed=2, count=10)
        ask = self.notify("spring_sale " + path)
        text = ask["primary"] + " " + (ask["secondary"] or "")
        self.assertIn("to %d customers" % len(eligible), text)
        self.assertIn("opted out", text)
        self.assertIn("no consent", text)
        self.assertIn("2 invalid number", text)
        self.assertIn("1 duplicate", text)
        self.assertIn("MARKETING, billed as marketing", text)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=120)
        sent = self.template_sends()
        tos = [m["to"].lstrip("+") for m in sent]
        self.assertEqual(len(tos), len(set(tos)), "a customer got it twice")
        self.assertEqual(sorted(tos), sorted(eligible))
        # the values went to the right customers
        for m in sent[:20]:
            i = int(m["to"].lstrip("+")[4:]) - 10000000
            body = m["request"]["template"]["components"][0]["parameters"]
            self.assertEqual(body[0]["text"], "Customer %d" % i)
        codes = [r.get("error_code") for r in self.sim.requests()]
        self.assertEqual(codes.count(130429), 2)
        self.assertEqual(codes.count(131056), 10)
        report = self.report(chat)
        by_to = {r["recipient"]: r for r in report}
        self.assertEqual(len(report), count)  # the invalid and duplicate lines are not recipients
        for to in eligible:
            self.assertIn(by_to[to]["status"], ("sent", "delivered", "read"), by_to[to])
            self.assertTrue(by_to[to]["message_id"].startswith("wamid."), by_to[to])
            self.assertEqual(by_to[to]["pricing_category"], "marketing")
        for i in range(count):
            r = by_to[number(i)]
            if i % 3 == 1:
                self.assertEqual((r["status"], r["code"]), ("skipped", "no-consent"))
            elif i % 3 == 2:
                self.assertEqual((r["status"], r["code"]), ("skipped", "opted-out"))

    def test_pause_and_resume(self):
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(250)]
        path = self.write_csv("pause.csv", rows)
        self.start(campaign_throughput="20")
        self.notify("spring_sale " + path)
        chat = self.campaign_chat()
        wait_until(lambda: len(self.template_sends()) >= 60, timeout=60, what="60 sends")
        self.assertEqual(self.host.command(chat, "/pause")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Paused")}, timeout=30)
        time.sleep(1.0)  # sends under way finish
        paused_at = len(self.template_sends())
        time.sleep(2.0)
        self.assertEqual(len(self.template_sends()), paused_at, "sent while paused")
        self.assertLess(paused_at, 250)
        self.assertEqual(self.host.command(chat, "/resume")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Resumed")}, timeout=30)
        # the progress lines' rate counts what is sent after the resume
        # (20/s), not what went before the pause
        rate = self.host.wait_for({"event": "write", "conv": chat, "message": regex(r", \d+/s,")}, timeout=60)
        self.assertLessEqual(int(re.search(r", (\d+)/s,", rate["message"]).group(1)), 25, rate["message"])
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=120)
        tos = [m["to"].lstrip("+") for m in self.template_sends()]
        self.assertEqual(sorted(tos), sorted(number(i) for i in range(250)))

    def test_agent_chat_goes_first_and_counts_against_the_throughput(self):
        # 30 customers with an open window (each has a queue of their own in
        # the outbox, so the agent's answers go at once, side by side)
        customers = ["4916%08d" % (20000000 + i) for i in range(30)]
        path = self.write_csv("chat.csv", [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(150)])
        self.start(campaign_throughput="20")
        self.sim.inbound_bulk(customers, 30, text="question {n}")
        for c in customers:
            self.host.wait_for({"event": "write", "conv": c, "message": contains("question")}, timeout=60)
        started = time.monotonic()
        self.notify("spring_sale " + path)
        wait_until(lambda: len(self.template_sends()) >= 20, timeout=60, what="20 sends")
        for c in customers:
            self.host.send_im(c, "an answer")
        wait_until(lambda: len(self.template_sends()) == 150, timeout=120, what="150 sends")
        took = time.monotonic() - started
        sent = self.sim.sent()
        last = max(i for i, m in enumerate(sent) if m["type"] == "template")
        chats = [i for i, m in enumerate(sent) if m["type"] == "text" and i < last]
        # the agent's lines are never held behind the campaign
        self.assertEqual(len(chats), 30, "the agent's lines waited for the campaign")
        # each counts against the number's 20/s: the campaign made room for
        # them (20 a second and the bucket's depth of 2, over the whole run)
        self.assertGreaterEqual(took, (150 + len(chats) - 2) / 20 - 0.25,
                                "the campaign did not give the agent's lines their share of the throughput")

    def test_ended_offer_skips_the_rest_at_once(self):
        """An offer that has ended is not sent; its recipients are skipped
        without waiting for the throughput (a token is used only by a send)."""
        rows = [(number(i), "C%d" % i, "SAVE%d" % i, "SAVE%d" % i, "2020-01-01T00:00", "opt-in") for i in range(300)]
        path = self.write_csv("offer.csv", rows, header=("to", "1", "2", "code", "expires", "consent"))
        self.start(campaign_throughput="20")
        self.notify("flash_offer " + path)
        chat = self.campaign_chat()
        started = time.monotonic()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        # at 20/s the 300 would take 15 s
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual(self.template_sends(name="flash_offer"), [])
        report = self.report(chat)
        self.assertEqual({(r["status"], r["code"]) for r in report}, {("skipped", "invalid-values")})
        self.assertEqual(len(report), 300)

    def test_killed_mid_campaign_then_resumed_without_duplicates(self):
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(300)]
        path = self.write_csv("kill.csv", rows)
        # answers slow enough that some are in flight at the kill
        self.sim.config(latency_ms=100)
        host = self.start(campaign_throughput="80")
        self.notify("spring_sale " + path)
        chat = self.campaign_chat()
        wait_until(lambda: len(self.template_sends()) >= 60, timeout=60, what="60 sends")
        host.kill()  # SIGKILL
        before = len(self.template_sends())
        self.assertLess(before, 300)
        self.host = self.start_receiving_host(options={"waba_id": self.waba, "send_retry_delay_ms": 50})
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign reopened")}, timeout=60)
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=120)
        tos = [m["to"].lstrip("+") for m in self.template_sends()]
        self.assertEqual(len(tos), len(set(tos)), "a customer got it twice after the kill")
        report = self.report(chat)
        self.assertEqual(len(report), 300)
        for r in report:
            # sent, or uncertain (under way at the kill: not sent again)
            self.assertIn(r["status"], ("sent", "delivered", "read", "uncertain"), r)
            if r["status"] == "uncertain":
                self.assertIn(r["recipient"], tos + [r["recipient"]])
        missing = {number(i) for i in range(300)} - set(tos)
        uncertain = {r["recipient"] for r in report if r["status"] == "uncertain"}
        self.assertLessEqual(missing, uncertain, "an eligible recipient neither sent nor listed as uncertain")

    def queue_then_kill(self, count, stop=None):
        """A campaign of `count` whose first sends are left QUEUED in the
        outbox at a kill -9 (maintenance, 131057, answered late: the runner
        begins many before the first answer, each goes back to the queue to be
        tried again only after a minute); `stop` ("pause" or "cancel") is typed
        in the campaign's chat before the kill; then a restart at 20/s. Returns
        the campaign's chat and how many were queued."""
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(count)]
        path = self.write_csv("queued.csv", rows)
        self.sim.config(latency_ms=1000, maintenance=True)
        host = self.start(campaign_throughput="1000", send_retry_delay_ms=60000)
        self.notify("spring_sale " + path)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("maintenance")}, timeout=60)
        # every request answered (none held by the latency, the count stable),
        # then time for the plugin to queue them again in its store
        slow = 3 if os.environ.get("WABIZ_SANITIZED") == "1" else 1

        def answered():
            before = len(self.sim.requests())
            if self.sim.control("GET", "fault")["paused"] != 0:
                return False
            time.sleep(slow)
            return self.sim.control("GET", "fault")["paused"] == 0 and len(self.sim.requests()) == before
        wait_until(answered, timeout=60, what="every send answered")
        time.sleep(slow)
        if stop is not None:
            self.assertEqual(self.host.command(chat, "/" + stop)["status"], "ok")
            self.host.wait_for({"event": "write", "conv": chat,
                                "message": contains({"pause": "Paused", "cancel": "Cancelled"}[stop])}, timeout=30)
        refused = {r["seq"] for r in self.sim.requests() if r.get("error_code") == 131057}
        host.kill()  # SIGKILL, with sends queued in the outbox
        self.assertEqual(self.template_sends(), [])
        self.assertGreaterEqual(len(refused), 40)
        self.sim.config(maintenance=False, latency_ms=0)
        self.host = self.start_receiving_host(
            options={"waba_id": self.waba, "campaign_throughput": "20", "send_retry_delay_ms": 50})
        return chat, len(refused)

    def only_the_queued_go(self, queued, what):
        """The sends under way before the kill go, as they would have in the
        session, paced at 20/s; nothing more goes."""
        wait_until(lambda: len(self.template_sends()) >= queued, timeout=60, what="the queued sends")
        time.sleep(1.5)
        sent = self.template_sends()
        self.assertEqual(len(sent), queued, what)
        self.assertEqual(len({m["to"] for m in sent}), queued)
        self.assertGreaterEqual(sent[-1]["time"] - sent[0]["time"], queued // 20 - 1)

    def test_queued_of_a_paused_campaign_go_out_after_restart_and_no_more(self):
        chat, queued = self.queue_then_kill(150, stop="pause")
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign reopened: paused")},
                           timeout=60)
        self.only_the_queued_go(queued, "sent while paused")

    def test_queued_of_a_cancelled_campaign_go_out_after_restart_and_no_more(self):
        chat, queued = self.queue_then_kill(150, stop="cancel")
        self.only_the_queued_go(queued, "sent after the cancel")

    def test_queued_at_the_kill_go_out_paced_after_restart(self):
        count = 120
        chat, queued = self.queue_then_kill(count)
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=120)
        sent = self.template_sends()
        tos = [m["to"].lstrip("+") for m in sent]
        self.assertEqual(sorted(tos), sorted(number(i) for i in range(count)), "each exactly once")
        # the queued ones go first, at 20/s (not all at once by the outbox)
        times = [m["time"] for m in sent[:queued]]
        self.assertGreaterEqual(times[-1] - times[0], queued // 20 - 1, times)

    def test_suppressed_numbers_refused_without_a_record(self):
        self.start()
        erased = number(0)
        self.sim.inbound("hi", sender=erased, name="Erased")
        self.host.wait_for({"event": "write", "conv": erased, "message": "hi"}, timeout=30)
        self.host.command(erased, "/erase")
        self.host.answer(self.host.wait_for({"event": "request", "kind": "action"}, timeout=30)["id"], action=0)
        self.host.wait_for({"event": "write", "conv": erased, "message": contains("was erased")}, timeout=30)
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(3)]
        ask = self.notify("spring_sale " + self.write_csv("suppressed.csv", rows))
        text = ask["primary"] + " " + (ask["secondary"] or "")
        self.assertIn("to 2 customers", text)
        self.assertIn("1 suppressed", text)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        self.assertEqual(sorted(m["to"].lstrip("+") for m in self.template_sends()), [number(1), number(2)])
        # no record was made for it (nor its file's opt-in recorded): an
        # opt-in is still refused as for a number without one
        self.host.command(erased, "/optin")
        self.host.wait_for({"event": "write", "conv": erased,
                            "message": contains("This number is on the suppression list")}, timeout=30)

    def test_marketing_skips_closed_countries(self):
        closed = "989121234567"
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(2)] + [(closed, "Ali", "5 %", "opt-in")]
        self.start(marketing_closed_countries="7, +98")
        ask = self.notify("spring_sale " + self.write_csv("closed.csv", rows))
        text = ask["primary"] + " " + (ask["secondary"] or "")
        self.assertIn("to 2 customers", text)
        self.assertIn("1 closed to marketing in their country", text)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        self.assertEqual(sorted(m["to"].lstrip("+") for m in self.template_sends()), [number(0), number(1)])
        by_to = {r["recipient"]: r for r in self.report(chat)}
        self.assertEqual((by_to[closed]["status"], by_to[closed]["code"]), ("skipped", "closed-country"))

    def test_selection_of_numbers_and_buddy_names(self):
        self.start()
        self.host.add_buddy(number(1), alias="Anna Schmidt")
        self.host.add_buddy(number(2))
        self.sim.config(templates={"store_note": "UTILITY"})
        self.host.set_option("utility_consent", "not_required")
        # a number, a buddy's alias (case ignored), a buddy's name, a repeat and a wrong one
        ask = self.notify('store_note +%s,"anna schmidt",%s,+%s,nobody Monday' % (number(0), number(2), number(0)))
        text = ask["primary"] + " " + (ask["secondary"] or "")
        self.assertIn("to 3 customers", text)
        self.assertIn("1 duplicate", text)
        self.assertIn("1 invalid number", text)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        sent = self.template_sends("store_note")
        self.assertEqual(sorted(m["to"].lstrip("+") for m in sent), [number(0), number(1), number(2)])
        for m in sent:
            self.assertEqual(m["request"]["template"]["components"][0]["parameters"][0]["text"], "Monday")

    def test_two_overlapping_campaigns_send_once_a_day(self):
        first = self.write_csv("first.csv", [(number(i), "A%d" % i, "5 %", "opt-in") for i in range(0, 60)])
        second = self.write_csv("second.csv", [(number(i), "B%d" % i, "5 %", "opt-in") for i in range(30, 90)])
        self.start(campaign_throughput="20")
        self.notify("spring_sale " + first)
        self.campaign_chat()
        self.notify("spring_sale " + second)
        # the 30 the first one reached: the agent is asked, and says no
        ask = self.host.wait_for({"event": "request", "kind": "action",
                                  "primary": contains("30 customers got template spring_sale")}, timeout=120)
        self.host.answer(ask["id"], action=1)
        chats = set()
        for _ in range(2):
            line = self.host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                                       "message": contains("Campaign finished")}, timeout=120)
            chats.add(line["conv"])
        self.assertEqual(len(chats), 2)
        tos = [m["to"].lstrip("+") for m in self.template_sends()]
        self.assertEqual(len(tos), len(set(tos)), "a customer got the template twice in a day")
        self.assertEqual(set(tos), {number(i) for i in range(90)})
        repeats = []
        for chat in chats:
            repeats += [r for r in self.report(chat) if r["code"] == "sent-within-24h"]
        self.assertEqual(sorted(r["recipient"] for r in repeats), sorted(number(i) for i in range(30, 60)))

    def test_scheduled_start_survives_a_restart(self):
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(20)]
        path = self.write_csv("later.csv", rows)
        hhmm = time.strftime("%H:%M", time.localtime(time.time() + 2 * 3600))
        self.start()
        ask = self.notify("spring_sale %s at %s" % (path, hhmm))
        self.assertIn("Starts at %s" % hhmm, ask["primary"] + " " + (ask["secondary"] or ""))
        line = self.host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                                   "message": contains("scheduled for %s" % hhmm)}, timeout=60)
        chat = line["conv"]
        time.sleep(2.0)
        self.assertEqual(self.template_sends(), [], "sent before its time")
        # signed off and on (the chat stays, left) ...
        self.host.disconnect()
        self.host.wait_for({"event": "signed-off"}, timeout=30)
        self.host.connect()
        self.host.wait_for({"event": "signed-on"}, timeout=60)
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign reopened: scheduled")},
                           timeout=60)
        # ... and a new process
        self.host.quit()
        self.host.close()
        self.host = self.start_receiving_host(options={"waba_id": self.waba})
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign reopened: scheduled")},
                           timeout=60)
        time.sleep(1.5)
        self.assertEqual(self.template_sends(), [], "sent before its time after the restart")
        self.host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(2 * 3600 + 60)})
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Starting now")}, timeout=30)
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        tos = sorted(m["to"].lstrip("+") for m in self.template_sends())
        self.assertEqual(tos, sorted(number(i) for i in range(20)))

    def test_final_errors_recorded_without_retry(self):
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(10)]
        path = self.write_csv("final.csv", rows)
        self.start(campaign_throughput="20")
        self.sim.fault(path="/messages", code=131049, count=2)
        self.sim.fault(path="/messages", code=131026, count=1)
        self.notify("spring_sale " + path)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished: 7 sent, 3 failed")},
                           timeout=60)
        posts = [r for r in self.sim.requests() if r["path"].endswith("/messages") and r["method"] == "POST"]
        self.assertEqual(len(posts), 10, "a final error was retried")
        report = self.report(chat)
        codes = sorted(r["code"] for r in report if r["status"] == "failed")
        self.assertEqual(codes, ["131026", "131049", "131049"])
        # the failed are the chat's members
        self.assertEqual(len(self.sim.sent()), 7)

    def test_portfolio_daily_limit_waits_then_cancel(self):
        rows = [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(260)]
        path = self.write_csv("limit.csv", rows)
        self.start(portfolio_limit="250")
        self.notify("spring_sale " + path)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("daily limit of 250 customers")},
                           timeout=60)
        wait_until(lambda: len(self.template_sends()) == 250, timeout=30, what="250 sends")
        time.sleep(1.5)
        self.assertEqual(len(self.template_sends()), 250, "sent beyond the daily limit")
        self.assertEqual(self.host.command(chat, "/cancel")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Cancelled")}, timeout=30)
        report = self.report(chat)
        self.assertEqual(sorted(r["code"] for r in report if r["status"] == "skipped"), ["cancelled"] * 10)

    def test_two_numbers_of_one_business_share_the_daily_limit(self):
        first = self.write_csv("first.csv", [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(240)])
        more = self.write_csv("second.csv", [(number(1000 + i), "D%d" % i, "5 %", "opt-in") for i in range(20)])
        self.start(portfolio_limit="250")
        second = self.add_second_number(self.host, waba_id=self.waba, portfolio_limit="250",
                                        campaign_throughput="80")
        self.notify("spring_sale " + first)
        self.host.wait_for({"event": "write", "account": self.sim.pnid, "conv": regex("^Campaign "),
                            "message": contains("Campaign finished")}, timeout=90)
        self.assertEqual(len(self.template_sends()), 240)
        # the second number's campaign reaches the business's 250th customer, then waits
        self.notify("spring_sale " + more, account=second)
        line = self.host.wait_for({"event": "write", "account": second, "conv": regex("^Campaign "),
                                   "message": contains("daily limit of 250 customers")}, timeout=60)
        wait_until(lambda: len(self.template_sends()) == 250, timeout=30, what="250 sends")
        time.sleep(1.5)
        sends = self.template_sends()
        self.assertEqual(len(sends), 250, "sent beyond the business's daily limit")
        self.assertEqual(len([s for s in sends if s["pnid"] == second]), 10)
        self.assertEqual(self.sim.portfolio()["used"], 250)
        self.assertEqual(self.host.command(line["conv"], "/cancel", account=second)["status"], "ok")
        self.host.wait_for({"event": "write", "account": second, "conv": line["conv"],
                            "message": contains("Cancelled")}, timeout=30)

    def test_repeat_within_a_day_only_when_the_agent_confirms(self):
        path = self.write_csv("again.csv", [(number(i), "A%d" % i, "5 %", "opt-in") for i in range(5)])
        self.start()
        self.notify("spring_sale " + path)
        self.host.wait_for({"event": "write", "conv": regex("^Campaign "), "message": contains("Campaign finished")},
                           timeout=60)
        self.notify("spring_sale " + path)
        ask = self.host.wait_for({"event": "request", "kind": "action",
                                  "primary": contains("5 customers got template spring_sale")}, timeout=60)
        self.assertEqual(len(self.template_sends()), 5, "sent again before the agent agreed")
        # the agent closes the campaign's chat: progress lines do not open it again
        chat = self.host.wait_for({"event": "write", "conv": regex("^Campaign "),
                                   "message": contains("5 customers got template")})["conv"]
        self.host.close_conv(chat)
        self.host.consume_all({"event": "write", "conv": chat})
        self.host.expect_none({"event": "write", "conv": chat}, 4.0)
        self.host.answer(ask["id"], action=0)
        # news does
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        wait_until(lambda: len(self.template_sends()) == 10, timeout=60, what="10 sends")
        tos = [m["to"].lstrip("+") for m in self.template_sends()]
        self.assertEqual(sorted(tos), sorted([number(i) for i in range(5)] * 2))

    def test_send_notification_action_asks_for_the_fields(self):
        path = self.write_csv("action.csv", [(number(i), "C%d" % i, "5 %", "opt-in") for i in range(3)])
        self.start()
        self.host.call({"cmd": "account_action", "name": "Send notification..."})
        form = self.host.wait_for({"event": "request", "kind": "fields"}, timeout=30)
        self.host.answer(form["id"], fields={"template": "spring_sale", "language": "", "recipients": path})
        ask = self.host.wait_for({"event": "request", "kind": "action", "title": "Send notification"}, timeout=60)
        self.assertIn("to 3 customers", ask["primary"])
        self.host.answer(ask["id"], action=0)
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        self.assertEqual(sorted(m["to"].lstrip("+") for m in self.template_sends()), [number(i) for i in range(3)])

    def test_buddy_group_with_fixed_values(self):
        self.start()
        for i in range(5):
            self.host.add_buddy(number(i), group="Regulars")
        self.sim.config(templates={"store_note": "UTILITY"})
        # utility templates need an opt-in by default; the option lets them go
        self.host.set_option("utility_consent", "not_required")
        self.notify("store_note @Regulars Monday")
        chat = self.campaign_chat()
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("Campaign finished")}, timeout=60)
        sent = self.template_sends("store_note")
        self.assertEqual(sorted(m["to"].lstrip("+") for m in sent), sorted(number(i) for i in range(5)))
        for m in sent:
            self.assertEqual(m["request"]["template"]["components"][0]["parameters"][0]["text"], "Monday")
        # signed off and on again: the finished campaign's chat still writes its report
        self.host.disconnect()
        self.host.wait_for({"event": "signed-off"}, timeout=30)
        self.host.connect()
        self.host.wait_for({"event": "signed-on"}, timeout=60)
        # (known once the store has listed the campaigns, right after sign-on)
        path = os.path.join(self.dir, "after.csv")
        wait_until(lambda: self.host.command(chat, "/report " + path)["status"] == "ok", timeout=30,
                   what="/report known after the reconnect")
        self.host.wait_for({"event": "write", "conv": chat, "message": contains("written to")}, timeout=30)
        with open(path) as f:
            self.assertEqual(len(f.read().strip().splitlines()), 6)
        self.assertEqual(self.host.events({"event": "write", "conv": chat, "message": contains("reopened")}), [])


if __name__ == "__main__":
    main()

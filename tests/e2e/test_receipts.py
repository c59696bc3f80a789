"""Read receipts, the typing indicator and ticks end to end: what the
simulator receives (its reads log) for each receipt policy and a customer's
own setting, the typing indicator at most every 20 s (the plugin's clock is
moved, nothing sleeps 20 s), tick lines by the delivery_ticks option, and the
last message's status and pricing category in the tooltip and Get Info."""

import os
import time

from harness import Receiving, contains, has, main, regex, wait_until

ANNA = "491701234567"
BEN = "491709876543"


def im_from(who, text):
    return {"event": "write", "conv": who, "who": who, "flags": has("recv"), "message": text}


class Receipts(Receiving):

    def reads(self):
        return [(r["message_id"], r["typing_indicator"]) for r in self.sim.reads()]

    def wait_reads(self, count):
        wait_until(lambda: len(self.sim.reads()) >= count, timeout=30, what="%d read receipts" % count)
        return self.reads()

    def no_more_reads(self, count, within_s=1.0):
        """Nothing beyond `count` receipts reaches the simulator within a
        generous while (receipts start as soon as they are decided)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            self.assertLessEqual(len(self.sim.reads()), count, self.reads())
            time.sleep(0.05)

    def customer_writes(self, host, text, who=ANNA):
        wamid = self.sim.inbound(text, sender=who, name="Anna")["id"]
        host.wait_for(im_from(who, text))
        return wamid

    def reply(self, host, text, count, who=ANNA):
        host.send_im(who, text)
        self.sim.wait_for_sent(count)

    def advance_clock(self, host, seconds):
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(seconds)})

    # ---- policies -------------------------------------------------------------

    def test_default_policy_on_typing_and_reply_with_typing_at_most_every_20_s(self):
        host = self.start_receiving_host()
        first = self.customer_writes(host, "Do you ship to Munich?")
        # seen is not enough by default
        host.focus(ANNA)
        self.no_more_reads(0)
        again = host.typing(ANNA)
        self.assertEqual(again["again"], 20)
        self.assertEqual(self.wait_reads(1), [(first, True)])
        request = self.sim.reads()[0]["request"]
        self.assertEqual(request, {"messaging_product": "whatsapp", "status": "read", "message_id": first,
                                   "typing_indicator": {"type": "text"}})
        # still typing 10 s later (and the seconds this test took; a slow
        # machine has 10 to spare): nothing; the reply needs no receipt either
        self.advance_clock(host, 10)
        host.typing(ANNA)
        self.reply(host, "Yes, next day.", 1)
        self.no_more_reads(1)
        # 20 s after the first indicator it goes again
        self.advance_clock(host, 10)
        host.typing(ANNA)
        self.assertEqual(self.wait_reads(2), [(first, True), (first, True)])
        # a new message, then a reply within the 20 s: a plain receipt
        second = self.customer_writes(host, "And to Hamburg?")
        self.reply(host, "Also.", 2)
        self.assertEqual(self.wait_reads(3)[2], (second, False))
        self.no_more_reads(3)
        # never a failure line for receipts
        host.expect_none({"event": "write", "flags": has("error")}, 0.2)

    def test_policy_seen_marks_when_the_conversation_gets_focus(self):
        host = self.start_receiving_host(options={"read_receipts": "seen"})
        first = self.customer_writes(host, "one")
        self.no_more_reads(0, 0.5)
        host.focus(ANNA)
        self.assertEqual(self.wait_reads(1), [(first, False)])
        # arriving in the conversation the agent looks at: seen at once
        second = self.customer_writes(host, "two")
        self.assertEqual(self.wait_reads(2)[1], (second, False))
        # looking at another conversation: a new message there waits
        host.focus(BEN)
        third = self.customer_writes(host, "three")
        self.no_more_reads(2, 0.5)
        host.focus(ANNA)
        self.assertEqual(self.wait_reads(3)[2], (third, False))
        # focus again without news: nothing more
        host.focus(ANNA)
        self.no_more_reads(3)

    def test_policy_reply_only(self):
        host = self.start_receiving_host(options={"read_receipts": "reply"})
        first = self.customer_writes(host, "question")
        host.focus(ANNA)
        host.typing(ANNA)
        self.no_more_reads(0, 0.5)
        # a reply WhatsApp refuses marks nothing read
        self.sim.fault(path="/messages", status=400, code=131009, count=1)
        host.send_im(ANNA, "refused")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"), "message": contains("Not sent")})
        self.no_more_reads(0, 0.5)
        self.reply(host, "answer", 1)
        self.assertEqual(self.wait_reads(1), [(first, False)])
        self.reply(host, "and more", 2)
        self.no_more_reads(1)

    def test_policy_never(self):
        host = self.start_receiving_host(options={"read_receipts": "never"})
        self.customer_writes(host, "question")
        host.focus(ANNA)
        host.typing(ANNA)
        self.reply(host, "answer", 1)
        self.no_more_reads(0, 1.5)

    def test_customer_override_by_command_and_buddy_menu_survives_a_restart(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hello")
        answer = host.command(ANNA, "/receipts")
        self.assertEqual(answer["status"], "ok")
        # (plain text, as HTML: the apostrophe is escaped)
        host.wait_for({"event": "write", "conv": ANNA,
                       "message": "Read receipts to this customer: when you type or reply (the account&apos;s "
                                  "setting)."})
        host.command(ANNA, "/receipts never")
        host.wait_for({"event": "write", "conv": ANNA,
                       "message": "Read receipts to this customer: never (set for this customer)."})
        host.typing(ANNA)
        self.reply(host, "hi", 1)
        self.no_more_reads(0)
        wrong = host.command(ANNA, "/receipts sometimes")
        self.assertEqual(wrong["status"], "failed")
        self.assertIn("seen|typing|reply|never|default", wrong["error"])
        # the buddy menu: when the conversation is seen
        host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Read receipts/When the conversation is seen"})
        host.wait_for({"event": "write", "conv": ANNA,
                       "message": "Read receipts to this customer: when the conversation is seen "
                                  "(set for this customer)."})
        second = self.customer_writes(host, "are you there?")
        host.focus(ANNA)
        self.assertEqual(self.wait_reads(1), [(second, False)])
        # stored with the customer: a new session reads it back
        host.quit()
        self.hosts.remove(host)
        host.close()
        again = self.start_receiving_host()
        again.command(ANNA, "/receipts")
        again.wait_for({"event": "write", "conv": ANNA, "message": contains("seen (set for this customer)")})
        third = self.customer_writes(again, "still there?")
        again.focus(ANNA)
        self.assertEqual(self.wait_reads(2)[1], (third, False))
        # back to the account's setting
        again.command(ANNA, "/receipts default")
        again.wait_for({"event": "write", "conv": ANNA, "message": contains("(the account&apos;s setting)")})
        # erasing the customer forgets their setting in memory too
        again.command(ANNA, "/receipts never")
        again.wait_for({"event": "write", "conv": ANNA, "message": contains("never (set for this customer)")})
        again.command(ANNA, "/erase")
        request = again.wait_for({"event": "request", "kind": "action"})
        again.answer(request["id"], action=0)
        again.wait_for({"event": "write", "conv": ANNA, "message": contains("was erased")})
        again.command(ANNA, "/receipts")
        again.wait_for({"event": "write", "conv": ANNA, "message": contains("reply (the account&apos;s setting)")})

    def test_a_refused_receipt_is_logged_not_shown_and_texts_still_go(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hello")
        self.sim.fault(path="/messages", status=400, code=131009, count=1)
        host.typing(ANNA)
        wait_until(lambda: any(r.get("error_code") == 131009 for r in self.sim.requests()), timeout=30,
                   what="the refused receipt")
        self.reply(host, "hello back", 1)
        host.expect_none({"event": "write", "flags": has("error")}, 1.0)

    # ---- ticks and the tooltip -------------------------------------------------

    def send_three(self, host):
        self.sim.config(auto_statuses=["sent"])
        self.customer_writes(host, "hi")
        for text in ("one", "two", "three"):
            host.send_im(ANNA, text)
        return [m["wamid"] for m in self.sim.wait_for_sent(3)]

    def tick_lines(self, host):
        return [e["message"] for e in host.events({"event": "write", "conv": ANNA, "flags": has("system"),
                                                   "message": regex("^(delivered|read)")})]

    def test_ticks_all_are_coalesced_per_conversation(self):
        # the three statuses of a batch reach the plugin well within one interval
        interval_ms = 10000 if os.environ.get("WABIZ_SANITIZED") == "1" else 5000
        host = self.start_receiving_host(options={"delivery_ticks": "all"},
                                         env={"WABIZ_TEST_TICKS_MS": str(interval_ms)})
        wamids = self.send_three(host)
        for wamid in wamids:
            self.sim.status(wamid, "delivered")
        host.wait_for({"event": "write", "conv": ANNA, "message": "delivered: 3 messages"}, timeout=30)
        for wamid in wamids[:2]:
            self.sim.status(wamid, "read")
        host.wait_for({"event": "write", "conv": ANNA, "message": "read: 2 messages"}, timeout=30)
        # a duplicate status changes nothing: no line
        self.sim.status(wamids[0], "read")
        host.expect_none({"event": "write", "conv": ANNA, "message": regex("^read")}, interval_ms / 1000 + 1)
        self.assertEqual(self.tick_lines(host), ["delivered: 3 messages", "read: 2 messages"])

    def test_ticks_failures_only_by_default_and_none_still_writes_failures(self):
        host = self.start_receiving_host()
        wamids = self.send_three(host)
        self.sim.status(wamids[0], "delivered")
        self.sim.status(wamids[1], "failed")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"), "message": contains("Not delivered")})
        host.expect_none({"event": "write", "conv": ANNA, "message": regex("^(delivered|read)")}, 1.0)
        host.set_option("delivery_ticks", "none")
        self.sim.status(wamids[2], "failed")
        def tooltip_failed():
            pairs = host.call({"cmd": "buddy_info", "who": ANNA})["tooltip"]
            return any(p["label"] == "Last message" and p["value"].startswith("failed") for p in pairs)
        wait_until(tooltip_failed, timeout=30, what="the tooltip says failed")
        # failures are written whatever the option says; delivered and read are not
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"), "message": contains("Not delivered")})
        self.assertEqual(len(host.events({"event": "write", "conv": ANNA, "message": contains("Not delivered")})), 2)
        self.sim.status(wamids[0], "read")
        host.expect_none({"event": "write", "conv": ANNA, "message": regex("^(delivered|read)")}, 1.0)

    def test_tooltip_and_get_info_show_the_last_status_and_pricing_category(self):
        host = self.start_receiving_host()
        wamids = self.send_three(host)
        # the simulator delivers in parallel: the automatic "sent" statuses
        # (pricing "service") first, then the category's own status
        self.wait_delivered(4)
        self.sim.status(wamids[2], "sent", category="galactic_promo")
        self.wait_delivered(5)
        self.sim.status(wamids[2], "read")
        # an older message's status does not replace the last one's
        self.sim.status(wamids[0], "delivered")

        def tooltip():
            return {p["label"]: p["value"] for p in host.call({"cmd": "buddy_info", "who": ANNA})["tooltip"]}
        wait_until(lambda: (tooltip().get("Last message") or "").startswith("read, "), timeout=30,
                   what="the tooltip says read")
        self.sim.status(wamids[0], "read")
        time.sleep(0.5)
        shown = tooltip()
        self.assertRegex(shown["Last message"], r"^read, \d{4}-\d\d-\d\d \d\d:\d\d$")
        self.assertEqual(shown["Pricing category"], "galactic_promo")
        host.get_info(ANNA)
        info = host.wait_for({"event": "userinfo", "who": ANNA})
        entries = {e["label"]: e["value"] for e in info["entries"]}
        self.assertTrue(entries["Last message"].startswith("read, "), entries)
        self.assertEqual(entries["Pricing category"], "galactic_promo")


if __name__ == "__main__":
    main()

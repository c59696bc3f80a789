"""Consent end to end: the agent's /optin, /optout and /consent and the
buddy menu, the customer's STOP keyword and opt-out button payloads,
WhatsApp's user_preferences webhook and error 131050 all land in the store's
consent ledger (seen through /consent and /export) with a line in the
customer's conversation; the check the templates feature makes before each
send (reached through the test build's "consent-check" hook) refuses what
the ledger and the suppression list forbid, with the reason."""

import json
import os
import time

from harness import Receiving, contains, has, main, regex, wait_until

ANNA = "491701234567"
BEN = "491709876543"


def im_from(who, text):
    return {"event": "write", "conv": who, "who": who, "flags": has("recv"), "message": text}


def escaped(text):
    """`text` as the plugin writes plain text into a conversation (HTML)."""
    for plain, html in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;")):
        text = text.replace(plain, html)
    return text


def line(who, text):
    """A line of the plugin's (plain `text`, escaped) in `who`'s conversation."""
    return {"event": "write", "conv": who, "flags": has("system"), "message": contains(escaped(text))}


class Consent(Receiving):

    def customer_writes(self, host, text, who=ANNA, **fields):
        self.sim.inbound(text, sender=who, name="Anna", **fields)
        host.wait_for(im_from(who, text))

    def settle(self):
        """Every delivered event applied (and acknowledged) by the plugin."""
        def applied():
            status = self.receiver_status()
            return status is not None and all(a["pending"] == 0 for a in status["accounts"])
        wait_until(applied, timeout=30, what="every event applied")

    def ledger(self, host, who):
        """The customer's consent rows, oldest first, from /export."""
        path = os.path.join(self.user_dir, "export-%d.json" % time.monotonic_ns())
        host.command(who, "/export " + path)
        host.wait_for({"event": "write", "conv": who, "message": contains("Exported everything")})
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        os.unlink(path)
        return [(row["state"], row["scope"], row["source"]) for row in data["consent"]]

    def consent(self, host, who):
        """The line /consent writes."""
        before = len(host.events(line(who, "Consent: ")))
        host.command(who, "/consent")
        wait_until(lambda: len(host.events(line(who, "Consent: "))) > before, timeout=30, what="the consent line")
        return host.events(line(who, "Consent: "))[-1]["message"]

    def check(self, host, who, category):
        """What wabiz_consent_check answers for a template of `category`."""
        before = len(host.events(line(who, "[test] " + category)))
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "consent-check", "arg": who + " " + category})
        wait_until(lambda: len(host.events(line(who, "[test] " + category))) > before, timeout=30,
                   what="the consent check")
        return host.events(line(who, "[test] " + category))[-1]["message"]

    def test_optin_optout_and_consent_commands(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hi")
        shown = self.consent(host, ANNA)
        self.assertIn("marketing: no record; utility: no record.", shown)
        # the window is open: a utility template is a service reply, marketing needs an opt-in
        self.assertIn("Templates now: marketing no, utility yes, authentication yes.", shown)
        self.assertTrue(self.check(host, ANNA, "MARKETING").startswith(
            "[test] MARKETING refused: Not sent: marketing templates need the customer&apos;s opt-in"))
        self.assertEqual(self.check(host, ANNA, "UTILITY"), "[test] UTILITY allowed")
        # /optin without a word: marketing
        self.assertEqual(host.command(ANNA, "/optin")["status"], "ok")
        host.wait_for(line(ANNA, "Recorded: the customer opted in to marketing messages (source: agent)."))
        self.assertIn("marketing: opted in (recorded by an agent, ", self.consent(host, ANNA))
        self.assertEqual(self.check(host, ANNA, "MARKETING"), "[test] MARKETING allowed")
        host.command(ANNA, "/optin utility")
        host.wait_for(line(ANNA, "Recorded: the customer opted in to utility messages (source: agent)."))
        host.command(ANNA, "/optout marketing")
        host.wait_for(line(ANNA, "Recorded: the customer opted out of marketing messages (source: agent)"))
        refused = self.check(host, ANNA, "MARKETING")
        self.assertIn("Not sent: the customer opted out of marketing messages: opted out (recorded by an agent, ",
                      refused)
        # /optout without a word: everything
        host.command(ANNA, "/optout")
        host.wait_for(line(ANNA, "Recorded: the customer opted out of marketing and utility messages"))
        shown = self.consent(host, ANNA)
        self.assertIn("marketing: opted out (recorded by an agent, ", shown)
        self.assertIn("utility: opted out (recorded by an agent, ", shown)
        self.assertIn("Templates now: marketing no, utility no, authentication no.", shown)
        self.assertIn("opted out of all messages", self.check(host, ANNA, "AUTHENTICATION"))
        # wrong words are refused with the usage, nothing recorded
        for wrong in ("/optin all", "/optin promotions", "/optout promotions"):
            answer = host.command(ANNA, wrong)
            self.assertEqual(answer["status"], "failed", wrong)
            self.assertIn("marketing|utility", answer["error"])
        notices = host.command("notices", "/optin")
        self.assertEqual(notices["status"], "failed")
        self.assertIn("in a customer's conversation", notices["error"])
        # the buddy menu records the same way
        host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Consent/Opted in to utility"})
        host.wait_for(line(ANNA, "Recorded: the customer opted in to utility messages (source: agent)."))
        host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Consent/Show consent"})
        wait_until(lambda: "utility: opted in" in host.events(line(ANNA, "Consent: "))[-1]["message"], timeout=30,
                   what="the menu's consent line")
        self.assertEqual(self.ledger(host, ANNA), [
            ("opt_in", "marketing", "agent"), ("opt_in", "utility", "agent"), ("opt_out", "marketing", "agent"),
            ("opt_out", "marketing", "agent"), ("opt_out", "utility", "agent"), ("opt_in", "utility", "agent")])
        # nothing of it went to the customer
        self.assertEqual(self.sim.sent(), [])

    def test_utility_consent_option_and_closed_window(self):
        host = self.start_receiving_host(options={"utility_consent": "not_required"})
        self.customer_writes(host, "hi")
        self.assertIn("Utility templates go unless the customer opted out of them.", self.consent(host, ANNA))
        # a day later the window is closed: utility still goes, marketing still needs an opt-in
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(25 * 3600)})
        self.assertEqual(self.check(host, ANNA, "UTILITY"), "[test] UTILITY allowed")
        self.assertIn("refused", self.check(host, ANNA, "MARKETING"))
        host.command(ANNA, "/optout utility")
        host.wait_for(line(ANNA, "opted out of utility messages"))
        self.assertIn("Not sent: the customer opted out of utility messages", self.check(host, ANNA, "UTILITY"))
        # authentication: not opted out of everything
        self.assertEqual(self.check(host, ANNA, "AUTHENTICATION"), "[test] AUTHENTICATION allowed")

    def test_utility_needs_an_opt_in_once_the_window_closed(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hi")
        self.assertEqual(self.check(host, ANNA, "UTILITY"), "[test] UTILITY allowed")
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(25 * 3600)})
        refused = self.check(host, ANNA, "UTILITY")
        self.assertIn("utility templates need the customer&apos;s opt-in on this account", refused)
        host.command(ANNA, "/optin utility")
        host.wait_for(line(ANNA, "opted in to utility messages"))
        self.assertEqual(self.check(host, ANNA, "UTILITY"), "[test] UTILITY allowed")

    def test_stop_keyword_is_the_whole_message(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "please stop sending offers")
        self.customer_writes(host, "STOP it")
        self.customer_writes(host, "Stop!")
        host.wait_for(line(ANNA, "The customer opted out with \"Stop!\": recorded for marketing and utility "
                                 "messages; templates will not be sent to them."))
        # accents and case ignored; the same opt-out again records nothing new
        self.customer_writes(host, "Abmëlden.")
        shown = self.consent(host, ANNA)
        self.assertIn("marketing: opted out (the customer&apos;s keyword, ", shown)
        self.assertIn("utility: opted out (the customer&apos;s keyword, ", shown)
        # the agent records a new opt-in; a later STOPP counts again
        host.command(ANNA, "/optin")
        host.wait_for(line(ANNA, "opted in to marketing"))
        self.customer_writes(host, "stopp")
        host.wait_for(line(ANNA, "The customer opted out with \"stopp\": recorded for marketing messages;"))
        self.assertIn("refused", self.check(host, ANNA, "MARKETING"))
        self.assertEqual(len(host.events(line(ANNA, "The customer opted out with"))), 2)
        self.assertEqual(self.ledger(host, ANNA), [("opt_out", "marketing", "keyword"),
                                                   ("opt_out", "utility", "keyword"),
                                                   ("opt_in", "marketing", "agent"),
                                                   ("opt_out", "marketing", "keyword")])
        # the customer is still answered: free-form replies are service, not templates
        host.send_im(ANNA, "Done, you will get no more offers.")
        self.sim.wait_for_sent(1)

    def test_keywords_and_button_payloads_by_option(self):
        host = self.start_receiving_host(options={"optout_keywords": "Halt, ARRET",
                                                  "optout_payloads": "STOP_PROMOS"})
        self.customer_writes(host, "stop")
        self.customer_writes(host, "Arrêt.")
        host.wait_for(line(ANNA, "The customer opted out with \"Arrêt.\""))
        self.settle()
        self.assertEqual(len(host.events(line(ANNA, "opted out with"))), 1)
        # a quick-reply button of a template: marketing only
        self.sim.inbound_kind("button", sender=BEN, title="Tell me more", payload="MORE_INFO")
        host.wait_for(im_from(BEN, contains("Tell me more")))
        self.sim.inbound_kind("button", sender=BEN, title="Stop promotions", payload="STOP_PROMOS")
        host.wait_for(line(BEN, "The customer opted out with the button \"Stop promotions\": recorded for "
                                "marketing messages"))
        self.settle()
        self.assertEqual(self.ledger(host, BEN), [("opt_out", "marketing", "button")])

    def preferences(self, wa_id, value, category="marketing_messages"):
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                 "contacts": [{"wa_id": wa_id, "profile": {"name": "Anna"}}],
                 "user_preferences": [{"wa_id": wa_id, "detail": "User requested to stop marketing messages",
                                       "category": category, "value": value, "timestamp": int(time.time())}]}
        body = {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "user_preferences", "value": value}]}]}
        self.sim.webhook_raw(json.dumps(body))

    def test_user_preferences_stop_and_resume(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hi")
        host.command(ANNA, "/optin marketing")
        host.wait_for(line(ANNA, "opted in to marketing"))
        self.preferences(ANNA, "stop")
        host.wait_for(line(ANNA, "The customer stopped marketing messages in WhatsApp: recorded as an opt-out of "
                                 "marketing messages"))
        self.assertIn("marketing: opted out (the customer&apos;s WhatsApp settings, ", self.consent(host, ANNA))
        self.assertIn("refused", self.check(host, ANNA, "MARKETING"))
        self.preferences(ANNA, "resume")
        host.wait_for(line(ANNA, "The customer allowed marketing messages again in WhatsApp"))
        self.assertEqual(self.check(host, ANNA, "MARKETING"), "[test] MARKETING allowed")
        self.preferences(ANNA, "signup", category="something_new")
        host.wait_for(line(ANNA, "WhatsApp reported a preference of the customer (something_new: signup); "
                                 "nothing was recorded."))
        self.settle()
        self.assertEqual(self.ledger(host, ANNA), [("opt_in", "marketing", "agent"),
                                                   ("opt_out", "marketing", "user_preferences"),
                                                   ("opt_in", "marketing", "user_preferences")])
        # none of it in the notices as an unknown account event
        self.assertEqual(host.events({"event": "write", "conv": "notices", "message": contains("user_preferences")}),
                         [])

    def test_error_131050_opts_out_of_marketing(self):
        host = self.start_receiving_host()
        self.sim.config(auto_statuses=[])
        self.customer_writes(host, "hi")
        host.command(ANNA, "/optin")
        host.wait_for(line(ANNA, "opted in to marketing"))
        host.send_im(ANNA, "our offer")
        wamid = self.sim.wait_for_sent(1)[-1]["wamid"]
        self.sim.status(wamid, "failed", errors=[{
            "code": 131050, "title": "Unable to deliver the message. This recipient has chosen to stop receiving "
                                     "marketing messages on WhatsApp from your business.",
            "message": "Unable to deliver the message."}])
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"), "message": contains("131050")})
        host.wait_for(line(ANNA, "WhatsApp says the customer stopped marketing messages: recorded as an opt-out"))
        self.assertIn("marketing: opted out (reported by WhatsApp, ", self.consent(host, ANNA))
        # on a send's own answer too (after a new opt-in)
        host.command(ANNA, "/optin")
        host.wait_for(line(ANNA, "opted in to marketing"))
        self.sim.fault(path="/messages", status=400, code=131050, count=1)
        host.send_im(ANNA, "another offer")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"), "message": contains("Not sent:")})
        wait_until(lambda: len(host.events(line(ANNA, "WhatsApp says the customer stopped"))) == 2, timeout=30,
                   what="the second opt-out line")
        self.assertEqual(self.ledger(host, ANNA), [("opt_in", "marketing", "agent"), ("opt_out", "marketing", "api"),
                                                   ("opt_in", "marketing", "agent"), ("opt_out", "marketing", "api")])

    def test_erased_customer_is_suppressed(self):
        host = self.start_receiving_host()
        self.customer_writes(host, "hi")
        host.command(ANNA, "/optin")
        host.wait_for(line(ANNA, "opted in to marketing"))
        host.command(ANNA, "/erase")
        request = host.wait_for({"event": "request", "kind": "action"})
        host.answer(request["id"], action=0)
        host.wait_for(line(ANNA, "Everything stored about this customer was erased"))
        # nothing goes to an erased number, whatever the category
        for category in ("MARKETING", "UTILITY", "AUTHENTICATION"):
            self.assertIn("this customer&apos;s data was erased and the number is on the suppression list",
                          self.check(host, ANNA, category))
        # an opt-in is not recorded (no new record is made for the number)
        host.command(ANNA, "/optin")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                       "message": contains("This number is on the suppression list")})
        self.assertIn("This number is on the suppression list (its data was erased).", self.consent(host, ANNA))
        # the suppression entry outlives a new record: the customer writes again
        self.customer_writes(host, "hello again")
        self.assertIn("on the suppression list", self.check(host, ANNA, "UTILITY"))


if __name__ == "__main__":
    main()

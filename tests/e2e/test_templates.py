"""Message templates end to end: the catalogue fetched from the simulator
(cursor paging), /template positional and named, header media uploaded
first, buttons, the exact template JSON the simulator receives and the
rendered line, refusals that send nothing (unknown, not approved, missing
or extra values, no consent), a status webhook told in the notices and
kept, the closed-window refusal naming /template, readable failures
(131050, 132001, 131063) and the Marketing Messages endpoint option."""

import os
import sys
import tempfile
import time

from harness import TWO_NUMBERS, Receiving, contains, has, main, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
from simctl import SAMPLE_TEMPLATES  # noqa: E402

ANNA = "491701234567"
BEN = "491709876543"
CARL = "491705550123"


def jpeg():
    return bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 64 + b"\xff\xd9"


ORDER = {
    "name": "order_update", "language": "en_US", "category": "UTILITY", "parameter_format": "POSITIONAL",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#42"]}},
        {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships today.",
         "example": {"body_text": [["Anna", "A-7"]]}},
        {"type": "FOOTER", "text": "Shop Ltd"},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}",
             "example": ["https://shop.example/t/A-7"]},
            {"type": "QUICK_REPLY", "text": "Stop"}]}]}

WELCOME = {
    "name": "welcome", "language": "de", "category": "MARKETING", "parameter_format": "NAMED",
    "components": [
        {"type": "BODY", "text": "Hallo {{first_name}}, Tisch fuer {{guests}}.",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Pablo"},
                                                {"param_name": "guests", "example": "4"}]}}]}

PHOTO = {
    "name": "new_arrival", "language": "en", "category": "UTILITY",
    "components": [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "New: {{1}}"},
                   {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "SAVE10"}]}]}

LOGIN_CODE = {
    "name": "login_code", "language": "en", "category": "AUTHENTICATION",
    "components": [{"type": "BODY", "text": "*{{1}}* is your verification code."},
                   {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]}

PAUSED = {"name": "old_promo", "language": "en", "category": "MARKETING", "status": "PAUSED",
          "components": [{"type": "BODY", "text": "Sale!"}]}


def callback_free(request):
    request = dict(request)
    request.pop("biz_opaque_callback_data", None)
    return request


class Templates(Receiving):

    sim_opts = TWO_NUMBERS

    def setUp(self):
        super().setUp()
        self.sim.add_templates([ORDER, WELCOME, PHOTO, PAUSED, LOGIN_CODE])
        self.waba = self.sim.info()["waba_id"]

    def start(self, env=None, **options):
        opts = {"waba_id": self.waba}
        opts.update(options)
        self.host = self.start_receiving_host(options=opts, env=env)
        return self.host

    def inbound(self, sender=ANNA, text="hello"):
        """The customer writes: the window opens (utility templates need an
        opt-in or an open window)."""
        self.sim.inbound(text, sender=sender, name="Anna")
        self.host.wait_for({"event": "write", "conv": sender, "message": contains(text)})

    def optin(self, conv, scope):
        self.command(conv, "/optin " + scope)

    def restart(self, **options):
        self.host.quit()
        self.hosts.remove(self.host)
        self.host.close()
        return self.start(**options)

    def command(self, conv, text):
        answer = self.host.command(conv, text)
        self.assertEqual(answer["status"], "ok", answer)

    def refused_line(self, conv, fragment):
        return self.host.wait_for({"event": "write", "conv": conv, "flags": has("error"),
                                   "message": contains(fragment)})

    def template_sends(self):
        return [s for s in self.sim.sent() if s["type"] == "template"]

    def catalogue_fetches(self):
        return [r for r in self.sim.requests() if r["path"].endswith("/message_templates")]

    def test_positional_with_buttons_exact_json(self):
        self.start()
        self.inbound()
        self.command(ANNA, "/template order_update en_US #42 | Anna | A-7 | button1=A-7")
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                                   "message": contains("[Template order_update, UTILITY]")})
        self.assertIn("Order #42", line["message"])
        self.assertIn("Hi Anna, order A-7 ships today.", line["message"])
        sent = self.sim.wait_for_sent(1)[0]
        self.assertEqual(callback_free(sent["request"]), {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + ANNA,
            "type": "template", "template": {
                "name": "order_update", "language": {"code": "en_US"}, "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "#42"}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Anna"},
                                                    {"type": "text", "text": "A-7"}]},
                    {"type": "button", "sub_type": "url", "index": "0",
                     "parameters": [{"type": "text", "text": "A-7"}]}]}})
        self.assertEqual(sent["template"]["body"], "Hi Anna, order A-7 ships today.")
        # the catalogue was fetched once, with the fields and a large limit
        fetches = self.catalogue_fetches()
        self.assertEqual(len(fetches), 1)
        self.assertIn("limit=250", fetches[0]["query"])
        self.assertIn("parameter_format", fetches[0]["query"])
        self.host.expect_none({"event": "write", "conv": ANNA, "flags": has("error")}, 0.5)

    def test_named_marketing_with_consent(self):
        self.start()
        # marketing needs the customer's opt-in: refused first, nothing sent
        self.command(ANNA, "/template welcome first_name=Anna | guests=4")
        self.refused_line(ANNA, "Not sent")
        time.sleep(0.5)
        self.assertEqual(self.template_sends(), [])
        self.optin(ANNA, "marketing")
        self.command(ANNA, "/template welcome guests=4 | first_name=Anna Maria")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                            "message": contains("Hallo Anna Maria, Tisch fuer 4.")})
        sent = self.sim.wait_for_sent(1)[0]
        self.assertEqual(sent["request"]["template"]["components"], [
            {"type": "body", "parameters": [
                {"type": "text", "parameter_name": "first_name", "text": "Anna Maria"},
                {"type": "text", "parameter_name": "guests", "text": "4"}]}])
        self.assertEqual(sent["endpoint"], "messages")

    def test_header_image_from_a_file_and_coupon(self):
        self.start()
        self.inbound()
        path = os.path.join(tempfile.mkdtemp(dir=self.user_dir), "shoes.jpg")
        with open(path, "wb") as f:
            f.write(jpeg())
        self.command(ANNA, "/template new_arrival header=%s | Red shoes | code=SAVE10" % path)
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                                   "message": contains("[Template new_arrival, UTILITY]")})
        self.assertIn("[image: shoes.jpg]", line["message"])
        uploads = self.sim.uploads()
        self.assertEqual(len(uploads), 1)
        sent = self.sim.wait_for_sent(1)[0]
        self.assertEqual(sent["request"]["template"]["components"], [
            {"type": "header", "parameters": [{"type": "image", "image": {"id": uploads[0]["id"]}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Red shoes"}]},
            {"type": "button", "sub_type": "copy_code", "index": "0",
             "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}]}])
        # a media id is sent as it is, without an upload
        self.command(ANNA, "/template new_arrival header=%s | Blue shoes | code=SAVE10" % uploads[0]["id"])
        self.sim.wait_for_sent(2)
        self.assertEqual(len(self.sim.uploads()), 1)

    def test_refusals_send_nothing_and_show_the_placeholders(self):
        self.start()
        self.inbound()
        self.command(ANNA, "/template nope 1 | 2")
        self.refused_line(ANNA, "no template named &quot;nope&quot;")
        self.command(ANNA, "/template old_promo")
        self.refused_line(ANNA, "paused because of low quality")
        self.command(ANNA, "/template order_update #42 | Anna")
        line = self.refused_line(ANNA, "Missing: {{2}} (e.g. A-7), button1=URL_SUFFIX")
        self.assertIn("takes: header {{1}} (e.g. #42)", line["message"])
        self.command(ANNA, "/template order_update #42 | Anna | A-7 | more | button1=x")
        self.refused_line(ANNA, "1 value too many.")
        self.command(ANNA, "/template order_update %s | Anna | A-7 | button1=x" % ("x" * 61))
        self.refused_line(ANNA, "at most 60")
        time.sleep(0.5)
        self.assertEqual(self.template_sends(), [])
        self.assertEqual(self.sim.uploads(), [])

    def test_closed_window_refusal_names_template_and_a_template_goes(self):
        self.start()
        # Ben wrote 25 hours ago: the window is closed
        self.sim.inbound("old question", sender=BEN, name="Ben", timestamp=int(time.time()) - 25 * 3600)
        self.host.wait_for({"event": "write", "conv": BEN, "message": contains("old question")})
        self.host.send_im(BEN, "are you there?")
        self.refused_line(BEN, "/template NAME")
        # an authentication template goes without an opt-in: the code in the body and its button
        self.command(BEN, "/template login_code 482913")
        self.host.wait_for({"event": "write", "conv": BEN, "flags": has("send"),
                            "message": contains("*482913* is your verification code.")})
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[0]["type"], "template")
        self.assertFalse(sent[0]["window_open"])
        self.assertEqual(sent[0]["request"]["template"]["components"], [
            {"type": "body", "parameters": [{"type": "text", "text": "482913"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "482913"}]}])
        # a utility template to a closed window needs an opt-in: refused, nothing more sent
        self.command(BEN, "/template order_update #1 | Ben | B-2 | button1=B-2")
        self.refused_line(BEN, "Not sent")
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 1)
        # text to a customer the plugin knows nothing of goes; Meta's 131047 names /template too
        self.host.send_im(CARL, "hello?")
        self.host.wait_for({"event": "write", "conv": CARL, "flags": has("error"),
                            "message": contains("Only an approved template can be sent now: /template")})

    def test_dialog_three_steps_and_the_offer_in_a_closed_window(self):
        self.start()
        self.inbound()
        self.host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Send template..."})
        # 1: the approved templates and languages (not the paused one)
        step1 = self.host.wait_for({"event": "request", "kind": "fields"})
        choices = step1["fields"][0]["choices"]
        self.assertIn("order_update (en_US, UTILITY)", choices)
        self.assertNotIn("old_promo (en, MARKETING)", choices)
        self.host.call({"cmd": "answer", "id": step1["id"], "fields": {"template": "order_update (en_US, UTILITY)"}})
        # 2: one field per placeholder; a value too long asks again, saying why
        step2 = self.host.wait_for({"event": "request", "kind": "fields"})
        self.assertEqual([f["id"] for f in step2["fields"]], ["header", "1", "2", "button1", "button2"])
        self.host.call({"cmd": "answer", "id": step2["id"],
                        "fields": {"header": "x" * 61, "1": "Anna", "2": "A-7", "button1": "A-7"}})
        again = self.host.wait_for({"event": "request", "kind": "fields"})
        self.assertIn("at most 60", again["secondary"])
        self.host.call({"cmd": "answer", "id": again["id"],
                        "fields": {"header": "#42", "1": "Anna", "2": "A-7", "button1": "A-7"}})
        # 3: the rendered message, then OK
        step3 = self.host.wait_for({"event": "request", "kind": "action"})
        self.assertIn("Hi Anna, order A-7 ships today.", step3["secondary"])
        self.assertEqual(self.template_sends(), [])
        self.host.call({"cmd": "answer", "id": step3["id"], "action": 0})
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[0]["request"]["template"]["components"][0],
                         {"type": "header", "parameters": [{"type": "text", "text": "#42"}]})
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                            "message": contains("[Template order_update, UTILITY]")})
        # text into a closed window: refused, and the dialog is offered
        self.sim.inbound("old question", sender=BEN, name="Ben", timestamp=int(time.time()) - 25 * 3600)
        self.host.wait_for({"event": "write", "conv": BEN, "message": contains("old question")})
        self.host.send_im(BEN, "are you there?")
        self.refused_line(BEN, "/template NAME")
        offer = self.host.wait_for({"event": "request", "kind": "fields"})
        self.assertIn("service window with this customer has closed", offer["secondary"])
        # more text while it is open: refused again, but offered once
        self.host.send_im(BEN, "hello?")
        self.refused_line(BEN, "/template NAME")
        self.host.expect_none({"event": "request"}, 1)
        self.host.call({"cmd": "answer", "id": offer["id"], "action": 1})
        # once it was cancelled, the next text offers it again
        self.host.send_im(BEN, "anyone?")
        self.refused_line(BEN, "/template NAME")
        again = self.host.wait_for({"event": "request", "kind": "fields"})
        self.host.call({"cmd": "answer", "id": again["id"], "action": 1})
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 1)

    def test_two_numbers_of_one_business_share_one_catalogue_fetch(self):
        self.start()
        second = self.add_second_number(self.host, waba_id=self.waba)
        # the catalogue comes slowly: both numbers want it while it is on its way
        self.sim.fault(path="/message_templates", method="GET", delay_ms=4000, count=1)
        self.optin(ANNA, "utility")
        self.assertEqual(self.host.command(BEN, "/optin utility", account=second)["status"], "ok")
        self.command(ANNA, "/template order_update en_US #1 | Anna | A-1 | button1=A-1")
        answer = self.host.command(BEN, "/template order_update en_US #2 | Ben | B-2 | button1=B-2",
                                   account=second)
        self.assertEqual(answer["status"], "ok", answer)
        for account, conv in ((self.sim.pnid, ANNA), (second, BEN)):
            self.host.wait_for({"event": "write", "account": account, "conv": conv, "flags": has("send"),
                                "message": contains("[Template order_update, UTILITY]")}, timeout=60)
        wait_until(lambda: len(self.template_sends()) == 2, timeout=30, what="both templates sent")
        self.assertEqual(sorted((s["pnid"], s["to"]) for s in self.template_sends()),
                         sorted([(self.sim.pnid, "+" + ANNA), (second, "+" + BEN)]))
        self.assertEqual(len(self.catalogue_fetches()), 1, "one fetch for both numbers")
        # each keeps the catalogue: the list is there without another fetch
        self.assertEqual(self.host.command(BEN, "/templates", account=second)["status"], "ok")
        self.host.wait_for({"event": "write", "account": second, "conv": BEN,
                            "message": contains("order_update")}, timeout=30)
        self.assertEqual(len(self.catalogue_fetches()), 1)

    def test_carousel_and_limited_time_offer_accepted_by_the_api(self):
        """The simulator checks cards and offers as Meta does: what the
        plugin sends for them is accepted, and an ended offer never leaves."""
        self.sim.add_templates([t for t in SAMPLE_TEMPLATES if t["name"] in ("summer_picks", "hot_deal")])
        self.start()
        self.optin(ANNA, "marketing")
        self.command(ANNA, "/template summer_picks en_US Anna | card1.header=https://files.example/hat.jpg"
                           " | card1.1=red | card1.2=15 EUR | card1.button2=hat-red"
                           " | card2.header=https://files.example/towel.jpg | card2.1=9 EUR | card2.button2=towel")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                            "message": contains("[Template summer_picks, MARKETING]")}, timeout=30)
        self.command(ANNA, "/template hot_deal en_US header=https://files.example/deal.jpg | Pablo | HOT25"
                           " | code=HOT25 | button2=n3mtql | expires=2100-01-01T00:00")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                            "message": contains("[Template hot_deal, MARKETING]")}, timeout=30)
        sent = self.sim.wait_for_sent(2)  # the log has only what the API accepted
        carousel = [c for c in sent[0]["request"]["template"]["components"] if c["type"] == "carousel"][0]
        self.assertEqual([card["card_index"] for card in carousel["cards"]], [0, 1])
        offer = [c for c in sent[1]["request"]["template"]["components"] if c["type"] == "limited_time_offer"][0]
        self.assertGreater(offer["parameters"][0]["limited_time_offer"]["expiration_time_ms"], time.time() * 1000)
        # an offer that has ended is refused here and nothing is sent
        self.command(ANNA, "/template hot_deal en_US header=https://files.example/deal.jpg | Pablo | HOT25"
                           " | code=HOT25 | button2=n3mtql | expires=2020-01-01T00:00")
        self.refused_line(ANNA, "has passed")
        time.sleep(0.5)
        self.assertEqual(len(self.template_sends()), 2)

    def test_daily_refresh(self):
        self.start(env={"WABIZ_TEST_TEMPLATE_CHECK_S": "1"})
        self.command(ANNA, "/templates")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Message templates")})
        time.sleep(2.5)
        self.assertEqual(len(self.catalogue_fetches()), 1)
        # a day later the catalogue is fetched again, without a use
        self.host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(24 * 3600 + 60)})
        wait_until(lambda: len(self.catalogue_fetches()) == 2, timeout=30)

    def test_usage_limit_backs_off(self):
        self.start()
        self.sim.config(management_exhausted=True)
        self.command(ANNA, "/templates")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("could not be read")})
        self.assertEqual(len(self.catalogue_fetches()), 1)
        # Meta said to wait: the next use does not ask again, and says when it will
        self.command(ANNA, "/template order_update #1 | Anna | A-1 | button1=A-1")
        self.refused_line(ANNA, "usage limit for template requests is reached")
        time.sleep(0.5)
        self.assertEqual(len(self.catalogue_fetches()), 1)
        self.assertEqual(self.template_sends(), [])

    def test_sign_off_while_fetching_and_uploading(self):
        """Signing off with a fetch and an upload in flight: what waited is
        told, nothing is sent, and the next sign-on works."""
        self.start()
        self.inbound()
        self.sim.fault(path="/message_templates", delay_ms=3000)
        self.command(ANNA, "/template order_update #1 | Anna | A-1 | button1=A-1")
        self.command(ANNA, "/templates")
        time.sleep(0.5)
        self.host.disconnect()
        self.refused_line(ANNA, "the account went offline")
        self.host.connect()
        self.host.wait_for("signed-on", timeout=60)
        path = os.path.join(self.user_dir, "shoes.jpg")
        with open(path, "wb") as f:
            f.write(jpeg())
        self.sim.fault(path="/media", delay_ms=3000)
        self.command(ANNA, "/template new_arrival header=%s | Red | code=A" % path)
        time.sleep(0.5)
        self.host.disconnect()
        self.refused_line(ANNA, "the account went offline while the header file was uploading")
        self.host.connect()
        self.host.wait_for("signed-on", timeout=60)
        time.sleep(3.5)
        self.assertEqual(self.template_sends(), [])
        # a dialog open at sign-off is closed and freed
        self.host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Send template..."})
        step1 = self.host.wait_for({"event": "request", "kind": "fields"})
        self.host.call({"cmd": "answer", "id": step1["id"], "fields": {"template": "order_update (en_US, UTILITY)"}})
        self.host.wait_for({"event": "request", "kind": "fields", "primary": contains("order_update")})
        self.host.disconnect()
        self.assertEqual(self.host.quit(timeout=60), 0)
        self.assertEqual(self.template_sends(), [])

    def test_catalogue_paging_and_templates_list(self):
        many = [{"name": "bulk_%03d" % i, "language": "en", "category": "UTILITY",
                 "components": [{"type": "BODY", "text": "Item %d: {{1}}" % i}]} for i in range(300)]
        self.sim.add_templates(many)
        self.start()
        self.inbound()
        self.command(ANNA, "/templates")
        listing = self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Message templates")})
        self.assertIn("bulk_299 (en): APPROVED, UTILITY", listing["message"])
        self.assertIn("old_promo (en): PAUSED, MARKETING", listing["message"])
        self.assertIn("cannot be sent: it is paused", listing["message"])
        fetches = self.catalogue_fetches()
        self.assertEqual(len(fetches), 2)
        self.assertIn("after=", fetches[1]["query"])
        # the last template of the second page is sendable; the catalogue is not fetched again
        self.command(ANNA, "/template bulk_299 last")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"), "message": contains("Item 299: last")})
        self.assertEqual(len(self.catalogue_fetches()), 2)
        # /templates refresh fetches both pages again; a template gone from the catalogue goes from the list
        self.sim.delete_template("bulk_000")
        self.command(ANNA, "/templates refresh")
        listing = self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Message templates")})
        self.assertEqual(len(self.catalogue_fetches()), 4)
        self.assertNotIn("bulk_000", listing["message"])
        self.assertIn("bulk_001", listing["message"])
        # the account action shows the same list in a window
        self.host.call({"cmd": "account_action", "name": "Message templates..."})
        shown = self.host.wait_for({"event": "notify", "kind": "formatted", "title": contains("message templates")})
        self.assertIn("order_update (en_US): APPROVED, UTILITY, quality", shown["text"])
        self.assertIn("bulk_299 (en)", shown["text"])

    def test_status_webhook_told_and_kept_across_restart(self):
        self.start()
        self.inbound()
        self.command(ANNA, "/templates order_update")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Hi {{1}}, order {{2}}")})
        self.sim.set_template_status("order_update", "en_US", "PAUSED", reason="NONE")
        self.host.wait_for({"event": "write", "conv": "notices",
                            "message": contains("order_update&quot; (en_US) is now PAUSED")})
        self.command(ANNA, "/template order_update #42 | Anna | A-7 | button1=A-7")
        self.refused_line(ANNA, "paused because of low quality")
        # the catalogue is fetched again after the webhook, and kept in the store
        wait_until(lambda: len(self.catalogue_fetches()) == 2, timeout=30)
        self.sim.set_template_category("welcome", "de", "UTILITY")
        self.host.wait_for({"event": "write", "conv": "notices",
                            "message": contains("welcome&quot; (de) is now in category UTILITY")})
        wait_until(lambda: len(self.catalogue_fetches()) == 3, timeout=30)
        # a quality change is kept without a notice
        self.sim.set_template_quality("welcome", "de", "RED")
        wait_until(lambda: len(self.catalogue_fetches()) == 4, timeout=30)
        self.command(ANNA, "/templates welcome")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("welcome (de): APPROVED, UTILITY, quality RED")})
        self.restart()
        self.command(ANNA, "/templates")
        listing = self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Message templates")})
        self.assertIn("order_update (en_US): PAUSED", listing["message"])
        self.assertIn("welcome (de): APPROVED, UTILITY", listing["message"])
        self.assertIn("welcome (de): APPROVED, UTILITY, quality RED", listing["message"])
        # read from the store: not fetched again within the day
        time.sleep(0.5)
        self.assertEqual(len(self.catalogue_fetches()), 4)

    def test_failures_are_readable(self):
        self.start()
        self.command(ANNA, "/templates")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("order_update (en_US)")})
        # the simulator no longer has the template (no webhook): Meta's 132001
        self.sim.delete_template("order_update")
        self.inbound(BEN)
        self.command(BEN, "/template order_update #1 | Ben | B-2 | button1=B-2")
        line = self.host.wait_for({"event": "write", "conv": BEN, "flags": has("error"),
                                   "message": contains("does not exist in that language or is not approved")})
        self.assertIn("/templates", line["message"])
        # a customer who stopped marketing messages: Meta's 131050, asynchronously
        self.sim.config(marketing_opted_out=[ANNA])
        self.optin(ANNA, "marketing")
        self.command(ANNA, "/template welcome Anna | 2")
        self.host.wait_for({"event": "write", "conv": ANNA,
                            "message": contains("stopped marketing messages from this business")})

    def test_marketing_endpoint_option(self):
        self.start()
        self.sim.config(marketing_disabled=True)
        self.optin(ANNA, "marketing")
        self.command(ANNA, "/template welcome Anna | 2")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                            "message": contains("marketing_endpoint")})
        self.restart(marketing_endpoint=True)
        self.command(ANNA, "/template welcome Anna | 3")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[0]["endpoint"], "marketing_messages")
        # utility templates stay on /messages
        self.inbound()
        self.command(ANNA, "/template order_update #1 | Anna | A-1 | button1=A-1")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(sent[1]["endpoint"], "messages")


if __name__ == "__main__":
    main()

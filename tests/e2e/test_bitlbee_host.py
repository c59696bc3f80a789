"""The plugin as BitlBee (bitlbee-libpurple, the IRC gateway) runs it: the
host started with --bitlbee has BitlBee's UI id and only the UI ops BitlBee
has, and each "write" event says whether BitlBee would show it
("bitlbee_shows", by the rules of BitlBee's protocols/purple/purple.c).
BitlBee itself, driven from an IRC client, is tested in tests/bitlbee."""

import os
import re
import tempfile
import time

from harness import FAST_KDF_ENV, Receiving, contains, has, main, regex, wait_until

ANNA = "491701234567"
PASSPHRASE = "correct horse battery"
CODE = r"([A-Z2-7]{4}(?:-[A-Z2-7]{4})+)"


def plugin_line(conv, text):
    """A line of the plugin's, as BitlBee shows it: received, from the
    conversation's contact, marked."""
    return {"event": "write", "conv": conv, "who": conv, "via": "im", "bitlbee_shows": True,
            "flags": has("recv"), "message": regex(r"^\[wabiz\] .*" + re.escape(text))}


class BitlBeeHost(Receiving):

    def start_bitlbee(self, **kwargs):
        host = self.start_receiving_host(extra_args=["--bitlbee"], **kwargs)
        return host

    def assert_nothing_hidden(self, host):
        """Every line written was one BitlBee shows, but the echoes of the
        agent's own lines (which the IRC client shows itself)."""
        hidden = [e for e in host.events({"event": "write"})
                  if not e["bitlbee_shows"] and "send" not in e["flags"]]
        self.assertEqual(hidden, [])

    def test_notices_come_from_the_wabiz_contact(self):
        host = self.start_bitlbee()
        self.assertTrue(host.events(plugin_line("wabiz", "the webhook receiver listens on")))
        # typed to the contact: refused, never sent anywhere
        host.send_im("wabiz", "hello there")
        host.wait_for(plugin_line("wabiz", "This contact is the plugin itself"))
        self.assertEqual(self.sim.sent(), [])
        self.assert_nothing_hidden(host)

    def test_refused_send_and_failed_status_are_told(self):
        host = self.start_bitlbee()
        self.sim.config(auto_statuses=[])
        host.send_im("12ab", "hello")
        host.wait_for(plugin_line("12ab", "Not sent:"))
        self.sim.inbound("hi", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True, "message": "hi"})
        host.send_im(ANNA, "our offer")
        wamid = self.sim.wait_for_sent(1)[-1]["wamid"]
        self.sim.status(wamid, "failed", errors=[{
            "code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
            "message": "This message was not delivered to maintain healthy ecosystem engagement."}])
        line = host.wait_for(plugin_line(ANNA, "Not delivered"))
        self.assertIn("131049", line["message"])
        self.assert_nothing_hidden(host)

    def test_receipts_command_and_a_receipt_on_reply(self):
        """BitlBee cannot tell when a conversation is seen: "seen" works as
        "on reply" there, and !receipts says so."""
        host = self.start_bitlbee(options={"read_receipts": "seen"})
        wamid = self.sim.inbound("hi", sender=ANNA)["id"]
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "hi"})
        host.send_im(ANNA, "!receipts")
        host.wait_for(plugin_line(ANNA, "Read receipts to this customer: on reply (BitlBee cannot tell when a "
                                        "conversation is seen) (the account"))
        host.typing(ANNA)  # IRC typing notices reach send_typing
        host.send_im(ANNA, "hello back")
        self.sim.wait_for_sent(1)
        wait_until(lambda: self.sim.reads(), timeout=30, what="a read receipt")
        self.assertEqual([(r["message_id"], r["typing_indicator"]) for r in self.sim.reads()], [(wamid, False)])
        host.send_im(ANNA, "!receipts never")
        host.wait_for(plugin_line(ANNA, "Read receipts to this customer: never (set for this customer)."))
        self.assertEqual(len(self.sim.sent()), 1)  # the commands went nowhere
        self.assert_nothing_hidden(host)

    def test_commands_from_text_run_and_are_not_sent(self):
        host = self.start_bitlbee()
        self.sim.inbound("hi", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "hi"})
        host.send_im(ANNA, "!help")
        help_line = host.wait_for(plugin_line(ANNA, "Commands"))
        for name in ("!help", "!resend", "!export", "!erase"):
            self.assertIn(name, help_line["message"])
        host.send_im(ANNA, "/nosuchthing now")
        refusal = host.wait_for(plugin_line(ANNA, "Not sent: /nosuchthing is not a command here"))
        self.assertIn("!export", refusal["message"])
        # an account command: its answer comes from the wabiz contact
        host.send_im(ANNA, "/resend")
        host.wait_for(plugin_line("wabiz", "No message is waiting for a decision"))
        # doubled: sent as text, with one
        host.send_im(ANNA, "//etc/hosts is a file")
        host.send_im(ANNA, "!!! Sale !!!")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual([m["request"]["text"]["body"] for m in sent], ["/etc/hosts is a file", "!! Sale !!!"])
        self.assert_nothing_hidden(host)

    def test_consent_commands_typed_as_text_and_stop_told(self):
        host = self.start_bitlbee()
        self.sim.inbound("hi", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "hi"})
        host.send_im(ANNA, "!optin")
        host.wait_for(plugin_line(ANNA, "Recorded: the customer opted in to marketing messages (source: agent)."))
        host.send_im(ANNA, "!optout utility")
        host.wait_for(plugin_line(ANNA, "Recorded: the customer opted out of utility messages (source: agent)"))
        host.send_im(ANNA, "!consent")
        shown = host.wait_for(plugin_line(ANNA, "Consent: marketing: opted in (recorded by an agent, "))
        self.assertIn("utility: opted out (recorded by an agent, ", shown["message"])
        # the customer's STOP is told in the query
        self.sim.inbound("STOP", sender=ANNA)
        host.wait_for(plugin_line(ANNA, "The customer opted out with &quot;STOP&quot;: recorded for marketing "
                                        "and utility messages; templates will not be sent to them."))
        # a refusal names the command as BitlBee users type it
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "consent-check", "arg": ANNA + " MARKETING"})
        refused = host.wait_for(plugin_line(ANNA, "[test] MARKETING refused: Not sent: the customer opted out"))
        self.assertIn("!optin marketing", refused["message"])
        host.send_im(ANNA, "!help")
        help_line = host.wait_for(plugin_line(ANNA, "Commands"))
        for name in ("!optin", "!optout", "!consent"):
            self.assertIn(name, help_line["message"])
        self.assertEqual(self.sim.sent(), [])  # the commands went nowhere
        self.assert_nothing_hidden(host)

    def test_inbound_kinds_reach_the_irc_user_and_addcontact_runs_from_text(self):
        host = self.start_bitlbee()
        first = self.sim.inbound("Order 1187, two pairs", sender=ANNA, name="Anna")["id"]
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True,
                       "message": "Order 1187, two pairs"})
        self.sim.inbound_kind("location", sender=ANNA, name="Anna", place="Alexanderplatz", address="10178 Berlin")
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True,
                       "message": contains("[Location] Alexanderplatz, 10178 Berlin (52.520008, 13.404954) "
                                           "https://www.openstreetmap.org/?mlat=52.520008")})
        self.sim.inbound_kind("reaction", sender=ANNA, message_id=first, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True,
                       "message": "reacted \U0001F44D to: \u201cOrder 1187, two pairs\u201d"})
        self.sim.inbound_kind("contacts", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True,
                       "message": contains("[Contact 1] Jonas Brandt (Brandt Logistik)")})
        # the hint names the command as BitlBee users type it
        self.assertTrue(host.events({"event": "write", "conv": ANNA, "message": contains("(!addcontact N adds contact N")}))
        host.send_im(ANNA, "!addcontact 1")
        host.wait_for(plugin_line(ANNA, "Contact 1 is now the buddy +491512223334"))
        host.wait_for({"event": "buddy", "name": "491512223334", "alias": "Jonas Brandt"})
        self.sim.call(sender=ANNA, name="Anna")
        host.wait_for(plugin_line(ANNA, "The customer is calling on WhatsApp"))
        self.assertEqual(self.sim.sent(), [])

    def test_reply_and_buttons_typed_as_text(self):
        host = self.start_bitlbee()
        wamid = self.sim.inbound("Can I pick it up today?", sender=ANNA)["id"]
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "Can I pick it up today?"})
        host.send_im(ANNA, "!reply Yes, until 6 pm.")
        host.send_im(ANNA, "!buttons Which shop? | Mitte | Kreuzberg")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(sent[0]["request"]["context"], {"message_id": wamid})
        self.assertEqual(sent[0]["request"]["text"], {"body": "Yes, until 6 pm."})
        self.assertEqual([b["reply"]["title"] for b in sent[1]["request"]["interactive"]["action"]["buttons"]],
                         ["Mitte", "Kreuzberg"])
        # what went out is shown as the agent's lines
        for text in ("[Reply to: Can I pick it up today?] Yes, until 6 pm.", "[Buttons] Which shop? | Mitte | Kreuzberg"):
            line = host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"), "message": contains(text)})
            self.assertTrue(line["bitlbee_shows"], line)
        # a refusal is told, nothing is sent
        host.send_im(ANNA, "!buttons Which shop? | A | B | C | D")
        host.wait_for(plugin_line(ANNA, "!buttons failed: Not sent: WhatsApp allows at most 3 buttons"))
        host.send_im(ANNA, "!help")
        help_line = host.wait_for(plugin_line(ANNA, "Commands"))
        for name in ("!reply [N] TEXT", "!react [EMOJI]", "!location LAT LON", "!buttons BODY", "!list BUTTON",
                     "!askphone"):
            self.assertIn(name, help_line["message"])
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 2)
        self.assert_nothing_hidden(host)
    def test_templates_listed_and_sent_typed_as_text(self):
        from test_templates import ORDER, PAUSED
        self.sim.add_templates([ORDER, PAUSED])
        host = self.start_bitlbee(options={"waba_id": self.sim.info()["waba_id"]})
        self.sim.inbound("Where is my order?", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "Where is my order?"})
        # the account action's form: the list, in the wabiz contact and in a query
        host.send_im("wabiz", "!templates")
        listing = host.wait_for(plugin_line("wabiz", "Message templates"))
        self.assertIn("order_update (en_US): APPROVED, UTILITY", listing["message"])
        self.assertIn("old_promo (en): PAUSED, MARKETING, quality", listing["message"])
        self.assertIn("cannot be sent: it is paused because of low quality", listing["message"])
        host.send_im(ANNA, "!templates order_update")
        host.wait_for(plugin_line(ANNA, "Hi {{1}}, order {{2}} ships today."))
        # a refusal lists the placeholders, nothing is sent
        host.send_im(ANNA, "!template order_update #42")
        host.wait_for(plugin_line(ANNA, "Not sent: Missing: {{1}} (e.g. Anna), {{2}} (e.g. A-7), button1=URL_SUFFIX"))
        host.send_im(ANNA, "/template order_update #42 | Anna | A-7 | button1=A-7")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[0]["request"]["template"]["name"], "order_update")
        line = host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                              "message": contains("[Template order_update, UTILITY]")})
        self.assertTrue(line["bitlbee_shows"], line)
        self.assertIn("Hi Anna, order A-7 ships today.", line["message"])
        host.send_im(ANNA, "!help")
        self.assertIn("!template NAME [LANG]", host.wait_for(plugin_line(ANNA, "Commands"))["message"])
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 1)
        self.assert_nothing_hidden(host)

    def test_notify_typed_as_text_asks_with_ok_and_reports_in_its_chat(self):
        from test_campaign import NOTE, PROMO, number
        self.sim.add_templates([PROMO, NOTE])
        path = os.path.join(self.user_dir, "customers.csv")
        with open(path, "w") as f:
            f.write("to,1,2,consent\n")
            for i in range(5):
                f.write("%s,C%d,5 %%,opt-in\n" % (number(i), i))
            f.write("%s,Nobody,5 %%,\n" % number(9))
        host = self.start_bitlbee(options={"waba_id": self.sim.info()["waba_id"]})
        host.send_im("wabiz", "!notify spring_sale " + path)
        ask = host.wait_for({"event": "request", "kind": "action"}, timeout=60)
        # BitlBee shows the question's first line only and answers OK or Cancel
        self.assertEqual(ask["actions"], ["OK", "Cancel"])
        self.assertIn("to 5 customers", ask["primary"])
        self.assertIn("Skipped: 1 no consent", ask["primary"])
        host.wait_for(plugin_line("wabiz", "Skipped: 1 no consent"))
        host.answer(ask["id"], action=0)
        done = host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: "),
                              "message": contains("Campaign finished: 5 sent")}, timeout=60)
        self.assertTrue(done["bitlbee_shows"], done)
        chat = done["conv"]
        self.assertEqual(sorted(m["to"].lstrip("+") for m in self.sim.sent()), sorted(number(i) for i in range(5)))
        report = os.path.join(self.user_dir, "report.csv")
        host.chat_send(chat, "!report " + report)
        line = host.wait_for({"event": "write", "conv": chat, "message": contains("written to")}, timeout=30)
        self.assertTrue(line["bitlbee_shows"], line)
        with open(report) as f:
            self.assertEqual(len(f.read().strip().splitlines()), 7)
        # text typed into the campaign's chat is not sent anywhere
        host.chat_send(chat, "hello everyone")
        host.wait_for({"event": "write", "conv": chat, "message": contains("nothing typed here is sent")})
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 5)
        # a selection typed as text: numbers separated by commas, then the values
        host.set_option("utility_consent", "not_required")
        host.send_im("wabiz", "!notify store_note +%s,+%s Monday" % (number(5), number(6)))
        ask = host.wait_for({"event": "request", "kind": "action"}, timeout=60)
        self.assertIn("to 2 customers", ask["primary"])
        host.answer(ask["id"], action=0)
        host.wait_for({"event": "write", "conv": regex("^Campaign [0-9a-f]{8}: store_note"),
                       "message": contains("Campaign finished: 2 sent")}, timeout=60)
        self.assertEqual(sorted(m["to"].lstrip("+") for m in self.sim.sent()[5:]), [number(5), number(6)])

    def test_files_by_command_and_by_dcc(self):
        host = self.start_bitlbee()
        self.sim.inbound("send me the prices", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "send me the prices"})
        folder = tempfile.mkdtemp(prefix="wabiz-bitlbee-files-")
        path = os.path.join(folder, "price list.pdf")
        with open(path, "wb") as f:
            f.write(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
        host.send_im(ANNA, "!help")
        self.assertIn("!sendfile", host.wait_for(plugin_line(ANNA, "Commands"))["message"])
        # typed as text: BitlBee runs no libpurple command
        host.send_im(ANNA, '/sendfile "%s" this week\'s prices' % path)
        host.wait_for(plugin_line(ANNA, "Uploading [Document] price list.pdf"))
        host.wait_for(plugin_line(ANNA, "[Document] price list.pdf, 33 bytes"))
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[0]["request"]["document"]["filename"], "price list.pdf")
        self.assertEqual(sent[0]["request"]["document"]["caption"], "this week's prices")
        # a refusal is a line BitlBee shows
        with open(os.path.join(folder, "x.bmp"), "wb") as f:
            f.write(b"BM:\x00\x00\x00\x00\x00\x00\x006\x00\x00\x00(\x00\x00\x00\x01\x00\x00\x00"
                    b"\x01\x00\x00\x00\x01\x00\x18\x00" + b"\x00" * 28)
        host.send_im(ANNA, "/sendfile %s" % os.path.join(folder, "x.bmp"))
        host.wait_for(plugin_line(ANNA, "Not sent: x.bmp is of a type WhatsApp does not accept"))
        # an IRC user's DCC SEND: BitlBee saves the file and calls send_file
        host.send_file(ANNA, path)
        self.sim.wait_for_sent(2)
        self.assertEqual(len(self.sim.uploads()), 2)
        host.wait_for(plugin_line(ANNA, "[Document] price list.pdf, 33 bytes"))
        # hidden are only libpurple's own transfer lines (the IRC client shows the DCC itself)
        hidden = [e["message"] for e in host.events({"event": "write"})
                  if not e["bitlbee_shows"] and "send" not in e["flags"]]
        self.assertEqual([m for m in hidden if not re.match(r"^(Offering to send|Transfer of file)", m)], [])
    def test_attachment_line_and_save_command(self):
        host = self.start_bitlbee(options={"media_retry_delay_ms": 200})
        picture = b"\xff\xd8\xff\xe0" + b"picture bytes " * 500
        media = self.sim.media(picture, mime_type="image/jpeg")
        self.sim.inbound_media("image", media, caption="the receipt", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "bitlbee_shows": True,
                       "message": contains("the receipt")})
        line = host.wait_for(plugin_line(ANNA, "Type !save 1 to save it"))
        self.assertIn("Image 1 (7 KB)", line["message"])
        out = os.path.join(self.user_dir, "saved")
        os.mkdir(out)
        host.send_im(ANNA, "!save 1 " + out)
        host.wait_for(plugin_line(ANNA, "Saved to " + out))
        with open(os.path.join(out, "whatsapp-image-1.jpg"), "rb") as f:
            self.assertEqual(f.read(), picture)
        # a document: the line and a file transfer (BitlBee's DCC SEND); declined, /save still works
        document = self.sim.media(b"%PDF-1.4 terms", mime_type="application/pdf")
        self.sim.inbound_media("document", document, filename="terms.pdf", sender=ANNA)
        host.wait_for(plugin_line(ANNA, "Document 2 (terms.pdf, 14 bytes) received. Type !save 2"))
        offer = host.wait_for({"event": "request", "kind": "action"}, timeout=30)
        self.assertIn("terms.pdf", offer["primary"])
        host.answer(offer["id"], action=1)
        host.send_im(ANNA, "!save 2 " + out)
        host.wait_for(plugin_line(ANNA, "Saved to " + out))
        with open(os.path.join(out, "terms.pdf"), "rb") as f:
            self.assertEqual(f.read(), b"%PDF-1.4 terms")
        self.assertEqual(self.sim.sent(), [])
        # only the picture's and the document's lines, no offer for the picture
        self.assertEqual(len(host.events({"event": "request"})), 1)

    def test_attachment_transfers_turned_off(self):
        host = self.start_bitlbee(options={"media_retry_delay_ms": 200, "bitlbee_transfers": False})
        document = self.sim.media(b"%PDF-1.4 terms", mime_type="application/pdf")
        self.sim.inbound_media("document", document, filename="terms.pdf", sender=ANNA)
        host.wait_for(plugin_line(ANNA, "Document 1 (terms.pdf, 14 bytes) received. Type !save 1"))
        host.expect_none({"event": "request"}, 1.0)
        self.assert_nothing_hidden(host)

    def test_service_window_as_presence_and_away_message(self):
        host = self.start_bitlbee()
        # a message from 23 h 20 min ago: open, 40 min left
        self.sim.inbound("still there?", sender=ANNA, timestamp=int(time.time()) - 23 * 3600 - 1200)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "away",
                       "status_message": regex(r"^service window closes in (39|40) min$")})
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "1500"})
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "away",
                       "status_message": regex(r"^service window closes in 1[45] min$")})
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "1200"})
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "offline"})
        self.sim.inbound("hello again", sender=ANNA, timestamp=int(time.time()) + 2700)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})

    def test_recovery_code_and_key_rotation(self):
        host = self.start_bitlbee()
        first = host.events(plugin_line("wabiz", "recovery code"))
        self.assertEqual(len(first), 1, "the recovery code, once, from the wabiz contact")
        self.assertIn("IRC clients", first[0]["message"])
        old = re.search(CODE, first[0]["message"]).group(1)
        # an account action as a command: OK and Cancel are what BitlBee can answer
        host.send_im("wabiz", "/rotatekey")
        ask = host.wait_for({"event": "request", "kind": "action"})
        self.assertEqual([a for a in ask["actions"]], ["OK", "Cancel"])
        host.answer(ask["id"], action=0)
        line = host.wait_for(plugin_line("wabiz", "new recovery code"), timeout=60)
        new = re.search(CODE, line["message"]).group(1)
        self.assertNotEqual(new, old)
        self.assert_nothing_hidden(host)

    def test_passphrase_mode_signs_on_with_questions_of_one_value(self):
        """BitlBee has no request fields: the passphrase is asked (twice, when
        new) with request_input, saying that BitlBee shows what is typed."""
        host = self.start_host(user_dir=self.user_dir, extra_args=["--bitlbee"], env=FAST_KDF_ENV,
                               options={"store_protection": "passphrase"}, wait_signed_on=False)
        ask = host.wait_for({"event": "request", "kind": "input"})
        self.assertIn("BitlBee shows what you type", ask["secondary"])
        host.answer(ask["id"], value="short")
        again = host.wait_for({"event": "request", "kind": "input"})
        host.answer(again["id"], value="short")
        ask = host.wait_for({"event": "request", "kind": "input", "secondary": contains("too short")})
        host.answer(ask["id"], value=PASSPHRASE)
        again = host.wait_for({"event": "request", "kind": "input"})
        host.answer(again["id"], value=PASSPHRASE)
        host.wait_for(plugin_line("wabiz", "recovery code"))
        host.wait_for("signed-on")
        self.assertEqual(host.quit(), 0)
        self.hosts.remove(host)
        host.close()
        # a new process asks once, and signs on
        host = self.start_host(user_dir=self.user_dir, extra_args=["--bitlbee"], env=FAST_KDF_ENV,
                               options={"store_protection": "passphrase"}, wait_signed_on=False)
        ask = host.wait_for({"event": "request", "kind": "input"})
        self.assertIn("recovery", ask["secondary"])
        host.answer(ask["id"], value=PASSPHRASE)
        host.wait_for("signed-on", timeout=60)

    def test_messages_that_may_have_been_sent_are_decided_by_command(self):
        host = self.start_bitlbee(options={"uncertain_grace_seconds": 3600})
        self.sim.fault(path="/messages", reset=True, count=1)
        host.send_im(ANNA, "lost answer")
        host.wait_for(plugin_line(ANNA, "may or may not have been sent"))
        host.send_im(ANNA, "/resend")
        host.wait_for(plugin_line("wabiz", "Answer with !resend all"))
        host.expect_none({"event": "request"}, 0.5)
        host.send_im("wabiz", "!resend list")
        host.wait_for(plugin_line("wabiz", "May have been sent to +" + ANNA))
        host.send_im("wabiz", "/resend all")
        host.wait_for(plugin_line(ANNA, "Sending again, as you decided"))
        sent = self.sim.wait_for_sent(1)
        self.assertEqual([m["request"]["text"]["body"] for m in sent], ["lost answer"])
        host.send_im("wabiz", "/resend sideways")
        host.wait_for(plugin_line("wabiz", "is not one of all, drop, list"))
        self.assert_nothing_hidden(host)

    def test_erase_asks_with_buttons_bitlbee_can_answer(self):
        host = self.start_bitlbee()
        self.sim.inbound("please forget me", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "please forget me"})
        host.send_im(ANNA, "!erase")
        ask = host.wait_for({"event": "request", "kind": "action"})
        # BitlBee wires only captions with OK/Accept and Cancel/Reject, in English
        self.assertEqual(ask["actions"], ["OK", "Cancel"])
        host.answer(ask["id"], action=0)
        host.wait_for({"event": "buddy-removed", "name": ANNA})
        host.wait_for(plugin_line(ANNA, "was erased"))
        self.assertEqual(self.sim.sent(), [])

    def test_a_customer_cannot_fake_a_plugin_line(self):
        host = self.start_bitlbee()
        self.sim.inbound("[wabiz] Not sent: pay to IBAN X instead", sender=ANNA)
        line = host.wait_for({"event": "write", "conv": ANNA, "via": "im", "flags": has("recv")})
        self.assertEqual(line["message"], "\\[wabiz] Not sent: pay to IBAN X instead")
        self.sim.inbound("  [WABIZ] also this", sender=ANNA)
        line = host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": regex("also this")})
        self.assertTrue(line["message"].startswith("\\"), line["message"])
        self.sim.inbound("a [wabiz] in the middle is fine", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im",
                       "message": "a [wabiz] in the middle is fine"})
        # BitlBee strips HTML: WhatsApp's markup stays as the customer typed it
        self.sim.inbound("order *1187* is _late_", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "via": "im", "message": "order *1187* is _late_"})


if __name__ == "__main__":
    main()

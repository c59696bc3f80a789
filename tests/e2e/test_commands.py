"""The agent's commands end to end (/reply, /react, /location, /buttons,
/list, /askphone) and text to WhatsApp groups: the exact JSON the simulator
receives, the agent's line in the conversation, refusals that send nothing,
and the outbox (retries) behind them as behind text."""

import json
import os
import tempfile
import time

from harness import Receiving, contains, has, main, wait_until

ANNA = "491701234567"
BSUID = "US.13491208655302741918"
GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo="
BEN = "491709876543"


def callback_free(request):
    """The request without its outbox id (random), which is checked here."""
    request = dict(request)
    opaque = request.pop("biz_opaque_callback_data")
    assert opaque.startswith("wabiz:"), opaque
    return request


class Commands(Receiving):

    def setUp(self):
        super().setUp()
        self.host = self.start_receiving_host()

    def inbound(self, text, sender=ANNA, **extra):
        """A customer's message, shown; returns its wamid."""
        wamid = self.sim.inbound(text, sender=sender, name="Anna", **extra)["id"]
        self.host.wait_for({"event": "write", "conv": sender, "message": contains(text)})
        return wamid

    def command(self, conv, text):
        return self.host.command(conv, text)

    def agent_line(self, conv, fragment):
        return self.host.wait_for({"event": "write", "conv": conv, "flags": has("send"),
                                   "message": contains(fragment)})

    def refused(self, conv, text, fragment):
        """The command fails at once with @fragment and sends nothing."""
        before = len(self.sim.sent())
        answer = self.command(conv, text)
        self.assertEqual(answer["status"], "failed", answer)
        self.assertIn(fragment, answer["error"])
        self.assertIn("Not sent", answer["error"])
        return before

    def nothing_sent_since(self, before):
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), before)

    def test_reply_quotes_the_last_or_nth_last_message(self):
        first = self.inbound("Do you ship to Munich?")
        second = self.inbound("And to Hamburg?")
        self.assertEqual(self.command(ANNA, "/reply Yes, next day.")["status"], "ok")
        line = self.agent_line(ANNA, "[Reply to: And to Hamburg?] Yes, next day.")
        self.assertNotIn("error", line["flags"])
        self.assertEqual(self.command(ANNA, "/reply 2 Munich too & <more>")["status"], "ok")
        self.agent_line(ANNA, "[Reply to: Do you ship to Munich?] Munich too &amp; &lt;more&gt;")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(callback_free(sent[0]["request"]), {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + ANNA,
            "type": "text", "text": {"body": "Yes, next day."}, "context": {"message_id": second}})
        self.assertEqual(sent[1]["request"]["context"], {"message_id": first})
        self.assertEqual(sent[1]["request"]["text"], {"body": "Munich too & <more>"})
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_order_typed_is_kept(self):
        """A /reply or /react first looks its message up in the store; what
        was typed after it still goes after it."""
        wamid = self.inbound("Two questions")
        self.command(ANNA, "/reply first")
        self.host.send_im(ANNA, "second")
        self.command(ANNA, "/react \U0001F44D")
        self.host.send_im(ANNA, "fourth")
        self.command(ANNA, "/location 1 2")
        sent = self.sim.wait_for_sent(5)
        self.assertEqual([(s["type"], s["request"].get("text", {}).get("body")) for s in sent], [
            ("text", "first"), ("text", "second"), ("reaction", None), ("text", "fourth"), ("location", None)])
        self.assertEqual(sent[0]["request"]["context"], {"message_id": wamid})

    def test_reply_refusals_send_nothing(self):
        before = self.refused(ANNA, "/reply 51 hello", "1 to 50")
        self.refused(ANNA, "/reply", "text is missing")
        # no message of the customer's to reply to: said in the conversation
        self.assertEqual(self.command(ANNA, "/reply hello")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                            "message": contains("has not sent a message yet")})
        self.inbound("one message")
        self.assertEqual(self.command(ANNA, "/reply 2 the second last")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                            "message": contains("has not sent that many messages")})
        self.nothing_sent_since(before)

    def test_react_and_remove(self):
        wamid = self.inbound("Your parcel has arrived, thanks!")
        self.assertEqual(self.command(ANNA, "/react \U0001F44D\U0001F3FD")["status"], "ok")
        self.agent_line(ANNA, "reacted \U0001F44D\U0001F3FD to: Your parcel has arrived, thanks!")
        self.assertEqual(self.command(ANNA, "/react")["status"], "ok")
        self.agent_line(ANNA, "removed the reaction from: Your parcel has arrived, thanks!")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(callback_free(sent[0]["request"]), {
            "messaging_product": "whatsapp", "recipient_type": "individual", "to": "+" + ANNA,
            "type": "reaction", "reaction": {"message_id": wamid, "emoji": "\U0001F44D\U0001F3FD"}})
        self.assertEqual(sent[1]["request"]["reaction"], {"message_id": wamid, "emoji": ""})
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_customer_reactions_are_not_the_last_message(self):
        wamid = self.inbound("Here is my order")
        self.sim.inbound(sender=ANNA, name="Anna", type="reaction",
                         reaction={"message_id": wamid, "emoji": "\u2764\ufe0f"})
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": contains("\u2764")})
        self.command(ANNA, "/react \U0001F44D")
        self.command(ANNA, "/reply Thanks!")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(sent[-2]["request"]["reaction"]["message_id"], wamid)
        self.assertEqual(sent[-1]["request"]["context"], {"message_id": wamid})

    def test_react_refusals_send_nothing(self):
        self.inbound("hello")
        before = self.refused(ANNA, "/react great", "one emoji")
        self.refused(ANNA, "/react \U0001F44D\U0001F44D", "one emoji")
        self.nothing_sent_since(before)

    def test_location_buttons_list_exact_json(self):
        self.inbound("Where are you?")
        self.assertEqual(self.command(ANNA, "/location 52.520008 13.404954 Shop <Mitte>")["status"], "ok")
        self.agent_line(ANNA, "[Location] Shop &lt;Mitte&gt; (52.520008, 13.404954)")
        self.assertEqual(self.command(ANNA, "/buttons Deliver tomorrow? | Yes | No | Call me")["status"], "ok")
        self.agent_line(ANNA, "[Buttons] Deliver tomorrow? | Yes | No | Call me")
        self.assertEqual(self.command(
            ANNA, "/list Shipping | How fast? | Express - Next day; Standard - 2 to 3 days")["status"], "ok")
        self.agent_line(ANNA, "[List: Shipping] How fast? | Express; Standard")
        sent = self.sim.wait_for_sent(3)
        location = callback_free(sent[0]["request"])
        self.assertEqual(location["type"], "location")
        self.assertEqual(location["location"], {"latitude": 52.520008, "longitude": 13.404954,
                                                "name": "Shop <Mitte>"})
        self.assertEqual(sent[1]["request"]["interactive"], {
            "type": "button", "body": {"text": "Deliver tomorrow?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "b1", "title": "Yes"}},
                                   {"type": "reply", "reply": {"id": "b2", "title": "No"}},
                                   {"type": "reply", "reply": {"id": "b3", "title": "Call me"}}]}})
        self.assertEqual(sent[2]["request"]["interactive"], {
            "type": "list", "body": {"text": "How fast?"},
            "action": {"button": "Shipping", "sections": [{"rows": [
                {"id": "r1", "title": "Express", "description": "Next day"},
                {"id": "r2", "title": "Standard", "description": "2 to 3 days"}]}]}})
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_limits_refused_locally(self):
        self.inbound("hi")
        before = self.refused(ANNA, "/location 91 10", "latitude")
        self.refused(ANNA, "/location 10 -181", "longitude")
        self.refused(ANNA, "/buttons Q | A | B | C | D", "at most 3")
        self.refused(ANNA, "/buttons Q | A title of twenty-one", "at most 20")
        self.refused(ANNA, "/buttons Q | Same | Same", "twice")
        rows = "; ".join("Row %d" % i for i in range(11))
        self.refused(ANNA, "/list Menu | Pick | " + rows, "at most 10 rows")
        self.refused(ANNA, "/list Menu | Pick | A row title over twenty-four", "Row 1")
        self.refused(ANNA, "/list A menu button over twenty | Pick | Row", "menu button")
        self.nothing_sent_since(before)

    def test_closed_window_refuses_commands(self):
        self.inbound("still there?", timestamp=int(time.time()) - 23 * 3600 - 1800)
        self.host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "3600"})
        self.host.wait_for({"event": "buddy", "name": ANNA, "status_id": "offline"})
        before = len(self.sim.sent())
        for line in ("/react \U0001F44D", "/buttons Q | Yes", "/reply ok", "/location 1 2"):
            answer = self.command(ANNA, line)
            self.assertEqual(answer["status"], "failed", line)
            self.assertIn("service window with this customer has closed", answer["error"])
        self.nothing_sent_since(before)

    def test_askphone(self):
        self.sim.inbound("hi, it is me", no_phone=True, user_id=BSUID, name="Sheena")
        self.host.wait_for({"event": "write", "conv": BSUID, "message": contains("hi, it is me")})
        self.assertEqual(self.command(BSUID, "/askphone")["status"], "ok")
        self.agent_line(BSUID, "[Phone number request] Please share your phone number with us.")
        request = callback_free(self.sim.wait_for_sent(1)[0]["request"])
        self.assertEqual(request, {
            "messaging_product": "whatsapp", "recipient_type": "individual", "recipient": BSUID,
            "type": "interactive", "interactive": {
                "type": "request_contact_info", "body": {"text": "Please share your phone number with us."},
                "action": {"name": "request_contact_info"}}})
        # a customer with a known number is not asked
        self.inbound("hello")
        before = self.refused(ANNA, "/askphone", "phone number is known already")
        self.nothing_sent_since(before)

    def test_command_waits_through_a_rate_limit(self):
        self.inbound("buttons please")
        self.sim.fault(path="/messages", status=400, code=130429, count=2)
        self.assertEqual(self.command(ANNA, "/buttons Pick | A | B")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("Queued")})
        self.host.wait_for({"event": "write", "message": contains("waiting messages have been sent")})
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["type"], "interactive")

    def test_queued_commands_survive_a_restart(self):
        self.inbound("anything new?")
        self.sim.fault(path="/messages", status=400, code=130429, count=-1)
        self.assertEqual(self.command(ANNA, "/buttons Still interested? | Yes | No")["status"], "ok")
        self.assertEqual(self.command(ANNA, "/location 48.137154 11.576124 Shop")["status"], "ok")
        self.host.wait_for({"event": "write", "conv": ANNA, "message": contains("waiting, retrying")})
        self.host.quit()
        self.hosts.remove(self.host)
        self.host.close()
        self.assertEqual(self.sim.sent(), [])
        self.sim.clear_faults()
        self.host = self.start_receiving_host()
        self.host.wait_for({"event": "write", "conv": "notices",
                            "message": contains("2 messages waiting from before are being sent")})
        sent = self.sim.wait_for_sent(2)
        self.assertEqual([s["type"] for s in sent], ["interactive", "location"])
        self.assertEqual(sent[0]["request"]["interactive"]["action"]["buttons"][1]["reply"]["title"], "No")
        self.assertEqual(sent[1]["request"]["location"]["name"], "Shop")
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 2)
        # the agent's lines come back as history
        self.host.quit()
        self.hosts.remove(self.host)
        self.host.close()
        self.host = self.start_receiving_host()
        self.host.send_im(ANNA, "one more")
        for fragment in ("[Buttons] Still interested? | Yes | No", "[Location] Shop (48.137154, 11.576124)"):
            line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("delayed"),
                                       "message": contains(fragment)})
            self.assertIn("send", line["flags"])

    def test_api_refusal_is_reported(self):
        self.inbound("hi")
        self.sim.fault(path="/messages", status=400, code=131009, count=1)
        self.assertEqual(self.command(ANNA, "/location 1 2")["status"], "ok")
        err = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                                  "message": contains("Not sent:")})
        self.assertIn("131009", err["message"])

    # ---- groups ---------------------------------------------------------------

    def group_message(self, text):
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                 "contacts": [{"profile": {"name": "Ben"}, "wa_id": BEN}],
                 "messages": [{"from": BEN, "group_id": GROUP, "id": "wamid.grp%d" % time.monotonic_ns(),
                               "timestamp": str(int(time.time())), "type": "text", "text": {"body": text}}]}
        body = {"object": "whatsapp_business_account",
                "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
        self.sim.webhook_raw(json.dumps(body))
        self.host.wait_for({"event": "write", "conv": GROUP, "conv_type": "chat", "message": contains(text)})

    def test_group_text(self):
        self.sim.config(groups=[GROUP])
        self.group_message("Who brings the cake?")
        self.host.chat_send(GROUP, "I do &amp; <b>the candles</b>")
        self.host.wait_for({"event": "write", "conv": GROUP, "conv_type": "chat", "flags": has("send"),
                            "message": contains("the candles")})
        request = callback_free(self.sim.wait_for_sent(1)[0]["request"])
        self.assertEqual(request, {
            "messaging_product": "whatsapp", "recipient_type": "group", "to": GROUP,
            "type": "text", "text": {"body": "I do & *the candles*"}})
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_group_text_survives_a_restart(self):
        self.sim.config(groups=[GROUP])
        self.group_message("Meeting at 5?")
        self.sim.fault(path="/messages", status=400, code=130429, count=-1)
        self.host.chat_send(GROUP, "yes, at 5")
        self.host.wait_for({"event": "write", "conv": GROUP, "message": contains("waiting, retrying")})
        self.host.quit()
        self.hosts.remove(self.host)
        self.host.close()
        self.assertEqual(self.sim.sent(), [])
        self.sim.clear_faults()
        self.host = self.start_receiving_host()
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(callback_free(sent[0]["request"]), {
            "messaging_product": "whatsapp", "recipient_type": "group", "to": GROUP,
            "type": "text", "text": {"body": "yes, at 5"}})
        # no buddy or IM conversation was made of the group's address
        time.sleep(0.5)
        convs = self.host.call({"cmd": "convs"})["convs"]
        self.assertEqual([c for c in convs if "group" in c["conv"]], [])
        self.host.call({"cmd": "blist"})
        self.assertEqual([b for b in self.host.events({"event": "buddy"}) if "group" in b["name"]], [])

    def test_group_refusals(self):
        self.group_message("Hello group")
        before = len(self.sim.sent())
        answer = self.command(GROUP, "/react \U0001F44D")
        self.assertEqual(answer["status"], "failed")
        self.assertIn("reactions cannot be sent in WhatsApp groups", answer["error"])
        answer = self.command(GROUP, "/buttons Q | A")
        self.assertEqual(answer["status"], "failed")
        self.assertIn("interactive messages cannot be sent in WhatsApp groups", answer["error"])
        self.nothing_sent_since(before)
        # a group the number is not in (the simulator refuses): said in the chat
        self.host.chat_send(GROUP, "anyone?")
        err = self.host.wait_for({"event": "write", "conv": GROUP, "flags": has("error"),
                                  "message": contains("Not sent:")})
        self.assertIn("131009", err["message"])

    def test_group_file(self):
        """/sendfile in a group chat uploads the file and sends it to the
        group (recipient_type group), shown in the chat as the agent's line."""
        self.sim.config(groups=[GROUP])
        self.group_message("Is there a photo of the cake?")
        folder = tempfile.mkdtemp(prefix="wabiz-group-file-")
        path = os.path.join(folder, "cake.jpg")
        with open(path, "wb") as f:
            f.write(bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * 2000 + b"\xff\xd9")
        self.assertEqual(self.command(GROUP, "/sendfile %s the cake" % path)["status"], "ok")
        request = callback_free(self.sim.wait_for_sent(1)[0]["request"])
        media_id = request.get("image", {}).get("id")
        self.assertEqual(request, {
            "messaging_product": "whatsapp", "recipient_type": "group", "to": GROUP,
            "type": "image", "image": {"id": media_id, "caption": "the cake"}})
        self.assertEqual([u["id"] for u in self.sim.uploads()], [media_id])
        self.host.wait_for({"event": "write", "conv": GROUP, "conv_type": "chat", "flags": has("send"),
                            "message": contains("[Image]")})
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)
        # no buddy or IM conversation was made of the group's address
        convs = self.host.call({"cmd": "convs"})["convs"]
        self.assertEqual([c for c in convs if "group" in c["conv"]], [])


if __name__ == "__main__":
    main()

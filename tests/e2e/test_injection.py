"""Customer input never becomes markup: a test per place where text from a
webhook (customers, group members, Meta's error texts, account events) is
shown by libpurple. Each payload carries tags, an entity and an attribute
quote; what libpurple receives must hold them escaped, as text.

(File transfers do not exist yet: when media land they add their own case
here.)"""

import json
import time

from harness import Receiving, contains, has, main

ANNA = "491701234567"
BEN = "491709876543"
HOSTILE = '<b>bold</b><img src="x" onerror="alert(1)"><a href="https://evil.example">click</a>&amp;'
# the same, as a person must see it: text, not markup
ESCAPED_MARKERS = ("&lt;b&gt;", "&lt;img", "&lt;a href=")


class Injection(Receiving):

    def setUp(self):
        super().setUp()
        self.host = self.start_receiving_host()
        self.waba = self.sim.info()["waba_id"]

    def change(self, field, value):
        value = dict(value)
        value.setdefault("messaging_product", "whatsapp")
        value.setdefault("metadata", {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid})
        body = {"object": "whatsapp_business_account",
                "entry": [{"id": self.waba, "changes": [{"field": field, "value": value}]}]}
        self.sim.webhook_raw(json.dumps(body))

    def assert_text_not_markup(self, html):
        """`html` (what libpurple got) shows HOSTILE as text: its tags are
        escaped, none of them is live."""
        for marker in ESCAPED_MARKERS:
            self.assertIn(marker, html)
        for live in ("<b>bold", "<img", "<a href=\"https://evil", "onerror=\"alert"):
            self.assertNotIn(live, html)

    def test_im_text(self):
        self.sim.inbound(HOSTILE, sender=ANNA, name="Anna")
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        self.assert_text_not_markup(line["message"])

    def test_profile_name_in_alias_tooltip_and_get_info(self):
        self.sim.inbound("hello", sender=ANNA, name=HOSTILE)
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        # an alias is plain text for libpurple (UIs escape it); the tooltip,
        # which is markup, gets it escaped
        buddy = self.host.wait_for({"event": "buddy", "name": ANNA, "alias": HOSTILE})
        self.assertEqual(buddy["alias"], HOSTILE)
        info = self.host.call({"cmd": "buddy_info", "who": ANNA})
        for pair in info["tooltip"]:
            self.assertNotIn("<img", pair.get("value") or "")
        self.assertNotIn("<img", info.get("status_text") or "")
        # Get Info: the same, as markup libpurple shows
        self.host.get_info(ANNA)
        shown = self.host.wait_for({"event": "userinfo", "who": ANNA})
        entries = {e["label"]: e["value"] for e in shown["entries"]}
        self.assertEqual(entries["WhatsApp number"], "+" + ANNA)
        self.assert_text_not_markup(entries["Profile name"])

    def test_system_line_from_message_errors(self):
        self.change("messages", {
            "contacts": [{"profile": {"name": "Anna"}, "wa_id": ANNA}],
            "messages": [{"from": ANNA, "id": "wamid.inj-errors", "timestamp": str(int(time.time())),
                          "type": "unsupported",
                          "errors": [{"code": 131051, "title": HOSTILE, "message": HOSTILE,
                                      "error_data": {"details": HOSTILE}}]}]})
        # an unsupported message's line carries Meta's words (title, message, details)
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"),
                                   "message": contains("does not pass on")})
        self.assert_text_not_markup(line["message"])

    def test_failure_reason_line(self):
        self.change("messages", {
            "statuses": [{"id": "wamid.inj-failed", "status": "failed", "timestamp": str(int(time.time())),
                          "recipient_id": ANNA,
                          "errors": [{"code": 131026, "title": HOSTILE, "message": HOSTILE,
                                      "error_data": {"details": HOSTILE}}]}]})
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                                   "message": contains("Not delivered")})
        self.assert_text_not_markup(line["message"])

    def test_group_chat_line_and_subject(self):
        group = "Y2FwaV9ncm91cDppbmplY3Rpb24ZD"
        self.change("messages", {
            "contacts": [{"profile": {"name": HOSTILE}, "wa_id": BEN}],
            "messages": [{"from": BEN, "group_id": group, "id": "wamid.inj-group",
                          "timestamp": str(int(time.time())), "type": "text", "text": {"body": HOSTILE}}]})
        line = self.host.wait_for({"event": "write", "conv": group, "conv_type": "chat", "who": BEN})
        self.assert_text_not_markup(line["message"])
        self.change("group_lifecycle_update", {
            "groups": [{"timestamp": str(int(time.time())), "group_id": group, "type": "group_create",
                        "subject": HOSTILE}]})
        event = self.host.wait_for({"event": "write", "conv": group, "message": contains("Subject")})
        self.assert_text_not_markup(event["message"])

    def test_sent_elsewhere_line(self):
        self.change("smb_message_echoes", {
            "message_echoes": [{"from": "15550783881", "to": ANNA, "id": "wamid.inj-echo",
                                "timestamp": str(int(time.time())), "type": "text", "text": {"body": HOSTILE}}]})
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("remote-send")})
        self.assert_text_not_markup(line["message"])

    def test_notices_from_account_events(self):
        self.change("account_update", {"event": HOSTILE, "phone_number": HOSTILE})
        line = self.host.wait_for({"event": "write", "conv": "notices", "message": contains("account_update")})
        self.assert_text_not_markup(line["message"])

    def test_sender_ids_that_are_not_ids(self):
        # a "from" that is neither a phone number nor a user id never names a
        # buddy or a conversation
        self.change("messages", {
            "contacts": [{"profile": {"name": "Mallory"}, "wa_id": HOSTILE}],
            "messages": [{"from": HOSTILE, "id": "wamid.inj-from", "timestamp": str(int(time.time())),
                          "type": "text", "text": {"body": "who am I"}}]})
        self.host.wait_for({"event": "write", "conv": "notices",
                            "message": contains("sender is not a valid WhatsApp number")})
        self.sim.inbound("after it", sender=ANNA, name="Anna")
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "after it"})
        for event in self.host.events():
            for key in ("conv", "who", "name", "title"):
                self.assertNotIn("<b>", str(event.get(key) or ""), event)


if __name__ == "__main__":
    main()

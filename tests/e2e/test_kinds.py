"""Inbound kinds beyond text, end to end: the simulator sends each as Meta
shapes it, through the receiver, into the plugin in wabiz-host; what lands in
the customer's conversation is what Pidgin and Finch show. Replies,
reactions, edits and deletions quote the stored message they refer to; ads
are told once; shared contacts become buddies with /addcontact; a new
business-scoped user ID moves the buddy and keeps the history; calls are
told, not answered."""

import json
import os

from harness import Receiving, contains, has, main, wait_until

LENA = "4915112345678"


def im_from(who, **extra):
    match = {"event": "write", "conv": who, "who": who, "flags": has("recv")}
    match.update(extra)
    return match


class Kinds(Receiving):

    def settle(self):
        """Every delivered event applied (and acknowledged) by the plugin."""
        def applied():
            status = self.receiver_status()
            return status is not None and all(a["pending"] == 0 for a in status["accounts"])
        wait_until(applied, timeout=30, what="every event applied")

    def export(self, host, who, name):
        path = os.path.join(self.user_dir, name)
        host.call({"cmd": "command", "conv": who, "text": "export " + path})
        host.wait_for({"event": "write", "conv": who, "message": contains("Exported everything")})
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        os.unlink(path)
        return data

    def test_reply_quotes_the_stored_message_and_keeps_the_order(self):
        host = self.start_receiving_host()
        self.sim.inbound("Where is my parcel?", sender=LENA, name="Lena Vogel")
        host.wait_for(im_from(LENA, message="Where is my parcel?"))
        host.send_im(LENA, "Your parcel ships today, expect it on Friday between 10 and 12 o'clock")
        wamid = self.sim.wait_for_sent(1)[0]["wamid"]
        self.settle()  # its "sent" status recorded the wamid
        # Meta batches: a reply (looked up in the store) and a plain text in
        # one change; the reply's line must not be overtaken
        first = self.sim.inbound("Great, thanks", sender=LENA, name="Lena Vogel",
                                 context={"from": self.sim.info()["display_phone_number"].lstrip("+").replace(" ", ""), "id": wamid})
        second = self.sim.inbound("And one more thing", sender=LENA, name="Lena Vogel")
        quoted = "(In reply to: \u201cYour parcel ships today, expect it on Friday between 10 and\u2026\u201d) "
        # two deliveries: each is shown (their order is the network's)
        host.wait_for(im_from(LENA, message=quoted + "Great, thanks"))
        host.wait_for(im_from(LENA, message="And one more thing"))
        body = json.loads(first["body"])
        body["entry"][0]["changes"][0]["value"]["messages"].append(
            json.loads(second["body"])["entry"][0]["changes"][0]["value"]["messages"][0])
        body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] += "-batched"
        body["entry"][0]["changes"][0]["value"]["messages"][1]["id"] += "-batched"
        self.sim.webhook_raw(json.dumps(body, separators=(",", ":")))
        host.wait_for(im_from(LENA, message=quoted + "Great, thanks"))
        host.wait_for(im_from(LENA, message="And one more thing"))
        self.settle()
        # one delivery: its order is kept
        lines = [e["message"] for e in host.events(im_from(LENA))]
        self.assertEqual(lines[-2:], [quoted + "Great, thanks", "And one more thing"])
        # a reply to a message this store never had
        self.sim.inbound("That one", sender=LENA, context={"from": LENA, "id": "wamid.never-seen"})
        host.wait_for(im_from(LENA, message="(In reply to an earlier message) That one"))

    def test_reaction_edit_and_deletion_quote_the_original_and_history_stays(self):
        host = self.start_receiving_host()
        original = self.sim.inbound("Order 1187, two pairs", sender=LENA, name="Lena Vogel")["id"]
        host.wait_for(im_from(LENA, message="Order 1187, two pairs"))
        quote = "\u201cOrder 1187, two pairs\u201d"
        self.sim.inbound_kind("reaction", sender=LENA, message_id=original, emoji="\U0001F44D")
        host.wait_for(im_from(LENA, message="reacted \U0001F44D to: " + quote))
        self.sim.inbound_kind("reaction", sender=LENA, message_id=original, emoji="")
        host.wait_for(im_from(LENA, message="removed the reaction to: " + quote))
        self.sim.inbound_kind("edit", sender=LENA, message_id=original, new_text="Order 1188, two pairs")
        host.wait_for(im_from(LENA, message="edited a message: Order 1188, two pairs (was: %s)" % quote))
        self.sim.inbound_kind("revoke", sender=LENA, message_id=original)
        host.wait_for(im_from(LENA, message="deleted a message: " + quote))
        self.sim.inbound_kind("revoke", sender=LENA, message_id="wamid.never-seen")
        host.wait_for(im_from(LENA, message="deleted a message"))
        self.settle()
        # append-only: the original is still there, the edit is a row of its own
        data = self.export(host, LENA, "lena.json")
        self.assertEqual([(m["type"], m["body"]) for m in data["messages"]],
                         [("text", "Order 1187, two pairs"), ("reaction", None), ("reaction", None),
                          ("edit", "Order 1188, two pairs"), ("revoke", None), ("revoke", None)])

    def test_ad_is_told_once_per_customer_and_ad(self):
        host = self.start_receiving_host()
        self.sim.inbound_kind("from_ad", sender=LENA, text="first", source_id="111")
        host.wait_for(im_from(LENA, message="(From an ad: Winter sale: 30% off, https://fb.me/sim-ad) first"))
        self.sim.inbound_kind("from_ad", sender=LENA, text="second", source_id="111")
        host.wait_for(im_from(LENA, message="second"))
        self.sim.inbound_kind("from_ad", sender=LENA, text="third", source_id="222", headline="Spring boots")
        host.wait_for(im_from(LENA, message="(From an ad: Spring boots, https://fb.me/sim-ad) third"))
        # another customer coming from the first ad is told it too
        self.sim.inbound_kind("from_ad", sender="4917698765432", text="me too", source_id="111")
        host.wait_for(im_from("4917698765432", message=contains("(From an ad: Winter sale")))

    def test_shared_contacts_and_addcontact(self):
        host = self.start_receiving_host()
        cards = [
            {"name": {"formatted_name": "Jonas Brandt"}, "org": {"company": "Brandt Logistik"},
             "phones": [{"phone": "+49 151 2223334", "wa_id": "491512223334"}],
             "emails": [{"email": "jonas@example.com"}]},
            {"name": {"first_name": "Front", "last_name": "Desk"}, "phones": [{"phone": "+49 30 1234567"}]},
            {"name": {"formatted_name": "Nobody"}, "emails": [{"email": "nobody@example.com"}]},
        ]
        self.sim.inbound_kind("contacts", sender=LENA, name="Lena Vogel", cards=cards)
        line = host.wait_for(im_from(LENA, message=contains("[Contact 1] Jonas Brandt")))["message"]
        self.assertIn("[Contact 1] Jonas Brandt (Brandt Logistik): +49 151 2223334, jonas@example.com<br>"
                      "[Contact 2] Front Desk: +49 30 1234567<br>[Contact 3] Nobody: nobody@example.com<br>"
                      "(/addcontact N adds contact N as a buddy)", line)
        self.assertEqual(host.command(LENA, "addcontact 1")["status"], "ok")
        host.wait_for({"event": "buddy", "name": "491512223334", "alias": "Jonas Brandt"})
        host.wait_for({"event": "write", "conv": LENA, "message": contains("Contact 1 is now the buddy +491512223334")})
        self.assertEqual(host.command(LENA, "addcontact 2")["status"], "ok")
        host.wait_for({"event": "buddy", "name": "49301234567", "alias": "Front Desk"})
        refused = host.command(LENA, "addcontact 3")
        self.assertEqual(refused["status"], "failed")
        self.assertIn("no phone number", refused["error"])
        refused = host.command(LENA, "addcontact 4")
        self.assertEqual(refused["status"], "failed")
        self.assertIn("No contact 4", refused["error"])
        # the numbers go on in this conversation
        self.sim.inbound_kind("contacts", sender=LENA, cards=cards[:1])
        host.wait_for(im_from(LENA, message=contains("[Contact 4] Jonas Brandt")))

    def test_new_user_id_moves_the_buddy_with_its_history(self):
        host = self.start_receiving_host()
        old, new = "DE.LenaOld0000000001", "DE.LenaNew0000000002"
        self.sim.inbound("before the change", user_id=old, no_phone=True, name="Lena Vogel", username="@lena")
        host.wait_for(im_from(old, message="before the change"))
        info = host.call({"cmd": "buddy_info", "who": old})
        self.assertIn({"label": "WhatsApp username", "value": "@lena"}, info["tooltip"])
        self.sim.inbound_kind("user_changed_user_id", user_id=old, no_phone=True, new_user_id=new)
        host.wait_for({"event": "write", "conv": new, "flags": has("system"),
                       "message": contains("user ID changed to " + new)})
        self.sim.inbound("after the change", user_id=new, no_phone=True, name="Lena Vogel")
        host.wait_for(im_from(new, message="after the change"))
        names = [b["name"] for b in host.blist()]
        self.assertIn(new, names)
        self.assertNotIn(old, names)
        # the username went with the buddy
        info = host.call({"cmd": "buddy_info", "who": new})
        self.assertIn({"label": "WhatsApp username", "value": "@lena"}, info["tooltip"])
        self.settle()
        data = self.export(host, new, "lena.json")
        self.assertEqual(data["customer"]["bsuid"], new)
        self.assertEqual([m["body"] for m in data["messages"] if m["type"] == "text"],
                         ["before the change", "after the change"])
        # after a restart, Get Info reads the username from the store
        host.quit()
        self.hosts.remove(host)
        host.close()
        again = self.start_receiving_host()
        again.get_info(new)
        shown = again.wait_for({"event": "userinfo", "who": new})
        self.assertEqual({e["label"]: e["value"] for e in shown["entries"]}.get("WhatsApp username"), "@lena")

    def test_calls_and_unknown_kinds_are_told(self):
        host = self.start_receiving_host()
        self.sim.call(sender=LENA, name="Lena Vogel")
        host.wait_for({"event": "write", "conv": LENA,
                       "message": contains("The customer is calling on WhatsApp. Calls are not answered here")})
        self.sim.call(sender=LENA, event="terminate", status="FAILED")
        host.wait_for({"event": "write", "conv": LENA, "message": contains("call ended (FAILED)")})
        self.sim.inbound_kind("call_permission_reply", sender=LENA, response="accept", permanent=True)
        host.wait_for(im_from(LENA, message=contains("allows calls from this business from now on")))
        self.sim.inbound(sender=LENA, type="poll_vote", poll_vote={"option": 2})
        host.wait_for(im_from(LENA, message="[A poll_vote message, not shown by this version]"))
        self.sim.inbound_kind("unsupported", sender=LENA)
        host.wait_for(im_from(LENA, message=contains("(Message type is currently not supported.)")))
        # none of it went to the notices
        self.assertEqual(host.events({"event": "write", "conv": "notices", "message": contains("calls")}), [])


if __name__ == "__main__":
    main()

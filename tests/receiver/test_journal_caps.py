"""test_journal_caps.py: what wabiz-receiver journals when deliveries are
replayed or pile up: a replayed signed delivery of any field is journalled
once, an account's pending events are capped in bytes (REGISTER's
max_pending_bytes), and the journal's disk keeps a floor of free space
(--min-free-disk). Past a bound the POST is answered 500 (Meta retries), the
subscriber gets a "full" NOTICE, and nothing of the refused delivery is
remembered, so its retry is taken once there is room.

Must not: fill the real disk to trip the floor (the floor is set above any
disk's size instead), or sleep where polling against a deadline works.

Usage: WABIZ_RECEIVER=path/to/wabiz-receiver python3 test_journal_caps.py [Class.test_name ...]
"""

import os
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    Account, Receiver, ReceiverCase, RxError, change, envelope, meta_json, post_webhook,
    text_message, values_of, webhook_body)

BINARY = ReceiverCase.binary


class JournalCapsTest(ReceiverCase):

    def start(self, **opts):
        rx = Receiver.start(BINARY, self.dir, **opts)
        self.receivers.append(rx)
        return rx

    def register(self, rx, account, **reg):
        c = rx.client()
        self.clients.append(c)
        answer = c.register(account.registration(**reg))
        c.subscribe(account.pnid)
        return c, answer["url"]

    def account_status(self, rx, pnid):
        return [a for a in rx.status()["accounts"] if a["account"] == pnid][0]

    def assert_no_event(self, client, within=0.3):
        client.poll(within)
        self.assertEqual(client.events, [], "no event should have been delivered")

    def test_replay_of_any_field_is_journalled_once(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        now = int(time.time())
        bodies = [
            meta_json(envelope([change(field="account_update", value={
                "phone_number": "15550783881", "event": "VERIFIED_ACCOUNT"})], entry_time=now)),
            meta_json(envelope([change(field="message_template_status_update", value={
                "event": "PAUSED", "message_template_id": 7, "message_template_name": "order",
                "message_template_language": "en"})], entry_time=now)),
            meta_json(envelope([change(field="group_lifecycle_update", value={
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": acct.pnid},
                "groups": [{"timestamp": str(now), "group_id": "g1", "type": "group_create"}]})],
                entry_time=now)),
            meta_json(envelope([change(field="smb_message_echoes", value={
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": acct.pnid},
                "message_echoes": [{"from": "15550783881", "to": "4917012345678", "id": "wamid.ECHO1",
                                    "timestamp": str(now), "type": "text", "text": {"body": "hi"}}]})],
                entry_time=now)),
        ]
        for body in bodies:
            self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        fields = [acct.open(e)["entry"][0]["changes"][0]["field"] for e in c.wait_events(len(bodies))]
        self.assertEqual(fields, ["account_update", "message_template_status_update",
                                  "group_lifecycle_update", "smb_message_echoes"])
        # the same signed bytes again (a replay, or Meta's retry): 200, nothing new
        for body in bodies:
            self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        self.assert_no_event(c, within=0.5)
        self.assertEqual(self.account_status(rx, acct.pnid)["duplicates"], len(bodies))
        # the same template event at another time is news
        again = bodies[1].replace(b'"time":%d' % now, b'"time":%d' % (now + 60))
        self.assertNotEqual(again, bodies[1])
        self.assertEqual(post_webhook(url, again, secret=acct.secret)[0], 200)
        self.assertEqual(acct.open(c.next_event())["entry"][0]["time"], now + 60)

    def test_pending_cap_refuses_until_acknowledged(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct, max_pending_bytes=3000)
        first = webhook_body(text="a" * 800)
        second = webhook_body(text="b" * 800)
        third = webhook_body(text="c" * 1500)
        self.assertEqual(post_webhook(url, first, secret=acct.secret)[0], 200)
        self.assertEqual(post_webhook(url, second, secret=acct.secret)[0], 200)
        events = c.wait_events(2)
        # over the cap: 500, so Meta retries, and the messenger is told why
        self.assertEqual(post_webhook(url, third, secret=acct.secret)[0], 500)
        notice = c.wait_notice("full")
        self.assertEqual(notice["account"], acct.pnid)
        self.assertIn("limit", notice["message"])
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 2)
        # collected: room again, and the retry is not taken for a duplicate
        c.ack(acct.pnid, events[1]["seq"])
        self.assertEqual(post_webhook(url, third, secret=acct.secret)[0], 200)
        body = values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"]
        self.assertEqual(body, "c" * 1500)

    def test_cap_survives_restart(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct, max_pending_bytes=2500)
        self.assertEqual(post_webhook(url, webhook_body(text="a" * 1500), secret=acct.secret)[0], 200)
        c.wait_events(1)
        c.close()
        self.assertEqual(rx.stop(), 0)
        # the saved registration keeps the cap; the events on disk count
        rx2 = self.start()
        c2 = rx2.client()
        self.clients.append(c2)
        c2.subscribe(acct.pnid)
        c2.wait_events(1)
        self.assertEqual(post_webhook(url, webhook_body(text="b" * 1500), secret=acct.secret)[0], 500)
        c2.wait_notice("full")

    def test_invalid_cap_refused(self):
        rx = self.start()
        acct = Account()
        c = rx.client()
        self.clients.append(c)
        for bad in (0, -5, "1024", 1.5):
            with self.assertRaises(RxError) as caught:
                c.register(acct.registration(max_pending_bytes=bad))
            self.assertEqual(caught.exception.code, "invalid")
            self.assertIn("max_pending_bytes", caught.exception.message)

    def test_free_disk_floor(self):
        # a floor above any disk's size: every delivery is refused
        rx = self.start(min_free_disk=2 ** 62)
        acct = Account()
        c, url = self.register(rx, acct)
        body = webhook_body(text="kept for later")
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 500)
        notice = c.wait_notice("full")
        self.assertEqual(notice["account"], acct.pnid)
        self.assertIn("free on the disk", notice["message"])
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 0)
        # space again: Meta's retry is stored (it was not remembered as seen)
        for client in self.clients:
            client.close()
        self.clients = []
        self.assertEqual(rx.stop(), 0)
        rx2 = self.start(min_free_disk=0)
        c2 = rx2.client()
        self.clients.append(c2)
        c2.subscribe(acct.pnid)
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        text = values_of(acct.open(c2.next_event()))[0]["messages"][0]["text"]["body"]
        self.assertEqual(text, "kept for later")

    def test_bad_floor_option(self):
        proc_args = Receiver.build_args(BINARY, self.dir, {"min_free_disk": -1})
        result = subprocess.run(proc_args, capture_output=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn(b"min-free-disk", result.stderr)


if __name__ == "__main__":
    unittest.main()

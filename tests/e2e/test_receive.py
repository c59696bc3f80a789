"""Receiving and chatting: webhooks from the simulator reach wabiz-receiver,
which journals them sealed; the plugin (in wabiz-host) opens them and shows
customers' messages, statuses, groups and notices as Pidgin would."""

import json
import os
import re
import signal
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from harness import (SRC, DEFAULT_APP_SECRET, RECEIVER_ARGS, VERIFY_TOKEN, Receiving, contains, has, main,
                     wait_until)

ANNA = "491701234567"
BEN = "491709876543"


def im_from(who, **extra):
    match = {"event": "write", "conv": who, "who": who, "flags": has("recv")}
    match.update(extra)
    return match


class Receive(Receiving):

    def test_setup_notice(self):
        host = self.start_receiving_host(options={"webhook_public_url": "https://biz.example/wh"})
        notice = host.events({"event": "write", "conv": "notices",
                              "message": contains("webhook receiver listens on")})[0]["message"]
        self.assertIn("https://biz.example/wh", notice)
        self.assertIn(VERIFY_TOKEN, notice)
        self.assertNotIn(DEFAULT_APP_SECRET, notice)
        status = self.receiver_status()
        self.assertIsNotNone(status)
        self.assertEqual([a["account"] for a in status["accounts"]], [self.sim.pnid])

    def test_inbound_text_once_though_duplicated_and_reordered(self):
        host = self.start_receiving_host()
        self.sim.webhook(duplicate=True)
        now = int(time.time())
        first = self.sim.inbound("first question", sender=ANNA, name="Anna Schmidt", timestamp=now - 60)
        second = self.sim.inbound("second question", sender=ANNA, name="Anna Schmidt", timestamp=now - 30)
        # the first delivery again, after the second: a late retry
        self.sim.webhook_raw(first["body"])
        self.wait_delivered(5)
        one = host.wait_for(im_from(ANNA, message="first question"))
        two = host.wait_for(im_from(ANNA, message="second question"))
        self.assertEqual(one["time"], now - 60)
        self.assertEqual(two["time"], now - 30)
        host.expect_none(im_from(ANNA), 1.0)
        self.assertNotEqual(first["id"], second["id"])
        buddy = host.wait_for({"event": "buddy", "name": ANNA, "server_alias": "Anna Schmidt"})
        self.assertEqual(buddy["group"], "WhatsApp Business")
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})

    def test_reply_round_trip_exact_json(self):
        host = self.start_receiving_host()
        self.sim.inbound("Do you ship to Munich?", sender=ANNA, name="Anna")
        host.wait_for(im_from(ANNA, message="Do you ship to Munich?"))
        host.send_im(ANNA, "Yes, <b>next day</b>.")
        sent = self.sim.wait_for_sent(1)
        request = dict(sent[-1]["request"])
        # the outbox id: random, below 2^53 (exact in JSON numbers)
        self.assertRegex(request.pop("biz_opaque_callback_data"), r"^wabiz:[1-9][0-9]{0,15}$")
        self.assertEqual(request, {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+" + ANNA,
            "type": "text",
            "text": {"body": "Yes, *next day*."},
        })
        host.expect_none({"event": "write", "flags": has("error")}, 1.0)
        # its statuses (sent, delivered) arrive and show nothing new
        host.expect_none({"event": "write", "flags": has("remote-send")}, 0.5)

    def test_messenger_closed_then_opened_gets_backlog_once_in_order(self):
        host = self.start_receiving_host()
        host.quit()
        self.hosts.remove(host)
        host.close()
        now = int(time.time())
        for i in range(50):
            self.sim.inbound("message %02d" % i, sender=BEN, name="Ben", timestamp=now - 100 + i)
        self.wait_delivered(50)
        again = self.start_receiving_host()
        again.wait_for({"event": "write", "conv": "notices",
                        "message": contains("50 webhook events arrived while this account was offline")})
        for i in range(50):
            again.wait_for(im_from(BEN, message="message %02d" % i))
        again.expect_none(im_from(BEN), 1.0)
        status = self.receiver_status()
        wait_pending = [a["pending"] for a in status["accounts"]]
        self.assertEqual(wait_pending, [0])

    def test_unsigned_and_wrongly_signed_posts_change_nothing(self):
        host = self.start_receiving_host()
        body = self.sim.inbound("real", sender=ANNA)["body"]
        host.wait_for(im_from(ANNA, message="real"))
        forged = body.replace("real", "forged")
        unsigned = self.sim.webhook_raw(forged, sign=False)
        wrong = self.sim.webhook_raw(forged, secret="not-the-app-secret")

        def answers():
            got = {d["delivery"]: d["status"] for d in self.sim.webhooks() if d.get("status")}
            return got if unsigned["delivery"] in got and wrong["delivery"] in got else None
        got = wait_until(answers, what="answers to the forged deliveries")
        self.assertEqual(got[unsigned["delivery"]], 401)
        self.assertEqual(got[wrong["delivery"]], 401)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("app secret")})
        host.expect_none(im_from(ANNA, message="forged"), 1.0)

    def test_window_closes_when_the_clock_moves(self):
        host = self.start_receiving_host()
        # a message from 23 h 30 min ago: open, under an hour left
        self.sim.inbound("still there?", sender=ANNA, timestamp=int(time.time()) - 23 * 3600 - 1800)
        host.wait_for(im_from(ANNA, message="still there?"))
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "away"})
        info = host.call({"cmd": "buddy_info", "who": ANNA})
        self.assertRegex(info["status_text"], r"^Service window open: (29|30) min left$")
        self.assertIn({"label": None, "value": info["status_text"]}, info["tooltip"])
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "3600"})
        # (the buddy's first event, when it was added, was offline too)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "offline", "show_offline": True})
        info = host.call({"cmd": "buddy_info", "who": ANNA})
        self.assertEqual(info["status_text"], "Service window closed: only approved templates can be sent")
        before = len(self.sim.sent())
        host.send_im(ANNA, "sorry for the wait")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                       "message": contains("service window with this customer has closed")})
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), before)
        # the customer writes again: the window reopens
        self.sim.inbound("hello again", sender=ANNA, timestamp=int(time.time()) + 3600)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})

    def test_window_follows_a_wall_clock_jump(self):
        """The wall clock jumps (a suspend and resume) without anyone
        telling the plugin: the window timer, which runs on the monotonic
        clock, still notices within its tick (60 s; 1 s here)."""
        host = self.start_receiving_host(env={"WABIZ_TEST_WINDOW_TICK_S": "1"})
        self.sim.inbound("still there?", sender=ANNA, timestamp=int(time.time()) - 23 * 3600 - 1800)
        host.wait_for(im_from(ANNA, message="still there?"))
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "away"})
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-jump", "arg": "3600"})
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "offline", "show_offline": True}, timeout=5)

    def test_timestamp_from_the_future_does_not_hold_the_window_open(self):
        host = self.start_receiving_host()
        # a year ahead (a wrong clock somewhere): it counts as now
        self.sim.inbound("from the future", sender=ANNA, timestamp=int(time.time()) + 365 * 86400)
        host.wait_for(im_from(ANNA, message="from the future"))
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})
        info = host.call({"cmd": "buddy_info", "who": ANNA})
        self.assertRegex(info["status_text"], r"^Service window open: (23 h 59|24 h 0) min left$")
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": str(24 * 3600 + 60)})
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "offline", "show_offline": True})

    def test_late_message_is_marked_delayed(self):
        """A message shown more than 5 minutes after its time stamp (it waited
        in the receiver, or Meta retried it) is backlog: DELAYED, which
        clients, logs and BitlBee mark. Time as the plugin's clock sees it."""
        host = self.start_receiving_host()
        now = int(time.time())
        self.sim.inbound("just now", sender=ANNA, timestamp=now)
        line = host.wait_for(im_from(ANNA, message="just now"))
        self.assertNotIn("delayed", line["flags"])
        self.sim.inbound("an hour ago", sender=ANNA, timestamp=now - 3600)
        line = host.wait_for(im_from(ANNA, message="an hour ago", flags=has("recv", "delayed")))
        self.assertEqual(line["time"], now - 3600)
        # the plugin's clock 10 minutes ahead: a message stamped now is late
        host.call({"cmd": "ipc", "plugin": "prpl-wabiz", "name": "clock-advance", "arg": "600"})
        self.sim.inbound("ten minutes late", sender=ANNA, timestamp=int(time.time()))
        host.wait_for(im_from(ANNA, message="ten minutes late", flags=has("recv", "delayed")))
        # late, but within Meta's retries: no date marker, no notice
        host.expect_none({"event": "write", "conv": "notices", "message": contains("older than")}, 0.5)

    def test_delivery_older_than_meta_retries_is_marked_with_its_date(self):
        """Timestamps are never used to drop a delivery (a wrong clock would
        lose real messages); one older than Meta's 7 days of retries is shown
        with its date, and the notices say once that old deliveries arrived."""
        host = self.start_receiving_host()
        sent = int(time.time()) - 40 * 86400
        date = time.strftime("%Y-%m-%d %H:%M", time.localtime(sent))
        self.sim.inbound("forty <b>days</b> old", sender=ANNA, timestamp=sent)
        line = host.wait_for(im_from(ANNA, message=contains("forty")))
        self.assertEqual(line["message"], "[delivered late: sent %s] forty &lt;b&gt;days&lt;/b&gt; old" % date)
        self.assertIn("delayed", line["flags"])
        self.assertEqual(line["time"], sent)
        notice = host.wait_for({"event": "write", "conv": "notices", "message": contains("older than")})
        self.assertIn(date, notice["message"])
        self.assertIn("clock", notice["message"])
        # another one (an echo of the business's own message too): marked, told once
        self.sim.inbound("thirty days old", sender=BEN, timestamp=sent + 10 * 86400)
        line = host.wait_for(im_from(BEN, message=contains("thirty days old")))
        self.assertTrue(line["message"].startswith("[delivered late: sent "))
        self.sim.webhook_raw(json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": self.sim.info()["waba_id"], "changes": [{"field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.sim.pnid},
                "message_echoes": [{"from": "15550001111", "to": BEN, "id": "wamid.oldecho",
                                    "timestamp": str(sent), "type": "text",
                                    "text": {"body": "our old answer"}}]}}]}]}))
        echo = host.wait_for({"event": "write", "conv": BEN, "flags": has("send", "remote-send", "delayed"),
                              "message": contains("our old answer")})
        self.assertTrue(echo["message"].startswith("[delivered late: sent %s]" % date))
        group = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"
        self.sim.webhook_raw(json.dumps({"object": "whatsapp_business_account", "entry": [{
            "id": self.sim.info()["waba_id"], "changes": [{"field": "group_lifecycle_update", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550001111", "phone_number_id": self.sim.pnid},
                "groups": [{"timestamp": str(sent), "group_id": group, "type": "group_create",
                            "subject": "Old <i>group</i>"}]}}]}]}))
        line = host.wait_for({"event": "write", "conv": group, "message": contains("The group was created")})
        self.assertTrue(line["message"].startswith("[delivered late: sent %s] The group was created." % date))
        self.assertIn("&lt;i&gt;group&lt;/i&gt;", line["message"])
        host.expect_none({"event": "write", "conv": "notices", "message": contains("older than")}, 1.0)

    def test_receiver_out_of_room_is_told_in_the_notices(self):
        """Below the receiver's free-disk floor (here above any disk's size)
        deliveries are answered 500, so Meta retries, and the notices say why."""
        host = self.start_receiving_host(env={"WABIZ_RECEIVER_ARGS": RECEIVER_ARGS + " --min-free-disk %d" % 2 ** 62})
        self.sim.inbound("waiting at Meta", sender=ANNA)
        notice = host.wait_for({"event": "write", "conv": "notices", "message": contains("free on the disk")})
        self.assertIn("Meta retries", notice["message"])
        wait_until(lambda: 500 in [d.get("status") for d in self.sim.webhooks()], timeout=30)
        host.expect_none(im_from(ANNA), 0.5)

    def test_failed_status_shows_its_reason(self):
        host = self.start_receiving_host()
        self.sim.config(auto_statuses=[])
        self.sim.inbound("hi", sender=ANNA)
        host.wait_for(im_from(ANNA, message="hi"))
        host.send_im(ANNA, "our offer")
        wamid = self.sim.wait_for_sent(1)[-1]["wamid"]
        self.sim.status(wamid, "failed", errors=[{
            "code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
            "message": "This message was not delivered to maintain healthy ecosystem engagement.",
            "error_data": {"details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."}}])
        line = host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                              "message": contains("Not delivered")})
        self.assertIn("131049", line["message"])
        # a late "sent" after "failed" changes nothing
        self.sim.status(wamid, "sent")
        host.expect_none({"event": "write", "conv": ANNA, "flags": has("remote-send")}, 1.0)

    def test_customer_markup_arrives_as_text(self):
        host = self.start_receiving_host()
        self.sim.inbound('<img id="1"> <b>not bold</b> & *bold*', sender=ANNA, name='<i>Eve</i>')
        line = host.wait_for(im_from(ANNA))
        self.assertNotIn("<img", line["message"])
        self.assertNotIn("<b>not", line["message"])
        self.assertIn("&lt;img id=", line["message"])
        self.assertIn("&lt;b&gt;not bold&lt;/b&gt;", line["message"])
        self.assertIn("&amp;", line["message"])
        self.assertIn("<b>bold</b>", line["message"])  # WhatsApp's own *bold*
        host.wait_for({"event": "buddy", "name": ANNA, "server_alias": "<i>Eve</i>"})

    def test_sent_elsewhere_and_echoes(self):
        host = self.start_receiving_host()
        pnid = self.sim.pnid
        waba = self.sim.info()["waba_id"]
        status = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
                "statuses": [{"id": "wamid.elsewhere1", "status": "sent", "timestamp": str(int(time.time())),
                              "recipient_id": BEN}]}}]}]}
        self.sim.webhook_raw(json.dumps(status))
        line = host.wait_for({"event": "write", "conv": BEN, "flags": has("send", "remote-send")})
        self.assertIn("another app", line["message"])
        echo = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
                "message_echoes": [{"from": "15550783881", "to": BEN, "id": "wamid.echo1",
                                    "timestamp": str(int(time.time())), "type": "text",
                                    "text": {"body": "sent from the phone <3"}}]}}]}]}
        self.sim.webhook_raw(json.dumps(echo))
        line = host.wait_for({"event": "write", "conv": BEN, "flags": has("send", "remote-send"),
                              "message": contains("sent from the phone")})
        self.assertIn("&lt;3", line["message"])
        host.expect_none({"event": "write", "flags": has("recv")}, 0.5)

    def test_group_messages_in_a_read_only_chat(self):
        host = self.start_receiving_host()
        pnid = self.sim.pnid
        waba = self.sim.info()["waba_id"]
        group = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"
        body = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
                "contacts": [{"profile": {"name": "Ben"}, "wa_id": BEN}],
                "messages": [{"from": BEN, "group_id": group, "id": "wamid.group1",
                              "timestamp": str(int(time.time())), "type": "text",
                              "text": {"body": "hello group"}}]}}]}]}
        self.sim.webhook_raw(json.dumps(body))
        line = host.wait_for({"event": "write", "conv": group, "conv_type": "chat", "who": BEN})
        self.assertEqual(line["message"], "hello group")
        host.call({"cmd": "command", "conv": group, "text": "say hi"}, expect_error=False)
        lifecycle = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "group_participants_update", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
                "groups": [{"timestamp": str(int(time.time())), "group_id": group, "type": "group_participants_update",
                            "removed_participants": [{"input": BEN, "wa_id": BEN}]}]}}]}]}
        self.sim.webhook_raw(json.dumps(lifecycle))
        host.wait_for({"event": "write", "conv": group, "message": contains("1 participant left")})
        # no IM conversation was opened for the group's member
        host.expect_none({"event": "write", "conv": BEN}, 0.5)

    def test_silence_warning_when_no_webhook_arrives(self):
        host = self.start_receiving_host(options={"webhook_silence_seconds": 1}, connect_sim=False)
        host.send_im(ANNA, "hello?")
        self.sim.wait_for_sent(1)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("no webhook")}, timeout=10)

    def test_bsuid_customer_linked_to_phone_later(self):
        host = self.start_receiving_host()
        bsuid = "DE.13491208655302741918"
        self.sim.inbound("no number yet", sender=ANNA, user_id=bsuid, no_phone=True, name="Username User")
        host.wait_for(im_from(bsuid, message="no number yet"))
        host.wait_for({"event": "buddy", "name": bsuid, "server_alias": "Username User"})
        # the same person, now with a phone number: one buddy, renamed
        self.sim.inbound("now with a number", sender=ANNA, user_id=bsuid, name="Username User")
        host.wait_for(im_from(ANNA, message="now with a number"))
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("system"),
                       "message": contains("now shares the phone number +" + ANNA)})
        names = [b["name"] for b in host.blist()]
        self.assertIn(ANNA, names)
        self.assertNotIn(bsuid, names)
        info = host.call({"cmd": "buddy_info", "who": ANNA})
        self.assertIn({"label": "WhatsApp user ID", "value": bsuid}, info["tooltip"])

    def test_receiver_exits_with_the_messenger_when_asked(self):
        host = self.start_receiving_host(options={"receiver_keep_running": False})
        self.assertIsNotNone(self.receiver_status())
        host.quit()
        wait_until(lambda: self.receiver_status() is None, timeout=20, what="the receiver to exit")

    def test_killed_receiver_is_restarted_and_nothing_is_lost(self):
        host = self.start_receiving_host()
        self.sim.inbound("before", sender=ANNA)
        host.wait_for(im_from(ANNA, message="before"))
        pid = self.receiver_status()["pid"]
        os.kill(pid, signal.SIGKILL)
        # Meta (the simulator) retries while the receiver is gone; the plugin
        # starts a new one on the same port, which takes the retry
        self.sim.inbound("during", sender=ANNA)
        host.wait_for(im_from(ANNA, message="during"), timeout=30)
        status = wait_until(self.receiver_status, what="a new receiver")
        self.assertNotEqual(status["pid"], pid)
        self.assertEqual(status["accounts"][0]["url"], self.webhook_url)
        self.sim.inbound("after", sender=ANNA)
        host.wait_for(im_from(ANNA, message="after"))
        host.expect_none(im_from(ANNA), 1.0)

    def test_receiver_stopped_by_its_confinement_is_reported(self):
        """When the receiver's confinement kills it (SIGSYS), its monitor
        leaves receiver/stopped-by-confinement (tests/receiver/test_confine.py
        checks that part); the plugin, once a new receiver is up, says so once
        and removes the file."""
        host = self.start_receiving_host()
        marker = os.path.join(self.receiver_dir, "stopped-by-confinement")
        pid = self.receiver_status()["pid"]
        with open(marker, "w") as f:
            f.write("pid %d\n" % pid)
        os.kill(pid, signal.SIGKILL)
        notice = host.wait_for({"event": "write", "conv": "notices",
                                "message": contains("stopped by its confinement")}, timeout=30)
        self.assertIn(os.path.join(self.receiver_dir, "receiver.log"), notice["message"])
        self.assertFalse(os.path.exists(marker))
        status = wait_until(self.receiver_status, what="a new receiver")
        self.assertNotEqual(status["pid"], pid)
        self.sim.inbound("after", sender=ANNA)
        host.wait_for(im_from(ANNA, message="after"))
        host.expect_none({"event": "write", "conv": "notices",
                          "message": contains("stopped by its confinement")}, 1.0)

    def test_tls_files_elsewhere_restart_the_receiver_and_it_is_reconnected(self):
        """With Landlock the receiver may read only the TLS directories it
        started with: a registration naming another one makes it restart
        itself wider; the plugin reconnects and registers again on its own."""
        tls = os.path.join(self.user_dir, "tls")
        os.makedirs(tls)
        cert, key = os.path.join(tls, "cert.pem"), os.path.join(tls, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
        host = self.start_host(
            options={"app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN, "webhook_port": 0,
                     "webhook_tls_cert": cert, "webhook_tls_key": key},
            # the header timeout runs from the connection's start, so it
            # includes the TLS handshake: slow under the sanitizers on a
            # loaded machine
            env={"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1",
                 "WABIZ_RECEIVER_ARGS": RECEIVER_ARGS.replace("--header-timeout 5", "--header-timeout 60")},
            user_dir=self.user_dir)
        notice = host.wait_for({"event": "write", "conv": "notices",
                                "message": contains("webhook receiver listens on https://")}, timeout=60)
        url = re.search(r"listens on (https://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"]).group(1)
        with open(os.path.join(self.receiver_dir, "receiver.log"), errors="replace") as f:
            log = f.read()
        if "Landlock ABI" in log:
            self.assertIn("restarting: the TLS files or UNIX socket of a registration are in " + tls, log)
            host.wait_for({"event": "write", "conv": "notices",
                           "message": contains("restarts to reach " + tls)})
        # the listener serves TLS: Meta's verification handshake
        query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.challenge": "4711",
                                        "hub.verify_token": VERIFY_TOKEN})
        context = ssl.create_default_context(cafile=cert)
        started = time.monotonic()
        with urllib.request.urlopen(url + "?" + query, context=context, timeout=60) as answer:
            self.assertEqual(answer.read(), b"4711")
        print("verification over TLS took %.1f s" % (time.monotonic() - started), file=sys.stderr)
        self.assertEqual([a["url"] for a in self.receiver_status()["accounts"]], [url])
        host.expect_none({"event": "write", "conv": "notices", "message": contains("refused this account")}, 1.0)

    def test_key_and_receiver_files_are_private(self):
        self.start_receiving_host()
        wabiz = os.path.join(self.user_dir, "wabiz")
        store_key = os.path.join(wabiz, "keys", self.sim.pnid + ".store-key")
        for path, mode in ((wabiz, 0o700), (os.path.join(wabiz, "keys"), 0o700), (store_key, 0o600),
                           (self.receiver_dir, 0o700), (os.path.join(self.receiver_dir, "rx.sock"), 0o600),
                           (os.path.join(self.receiver_dir, "journal.db"), 0o600)):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode, path)
        # the receiving key lives sealed in the store: no key file of its own
        self.assertEqual(os.listdir(os.path.join(wabiz, "keys")), [self.sim.pnid + ".store-key"])
        # the receiver holds no key of the plugin's
        with open(store_key, "rb") as f:
            secret = f.read()
        for name in os.listdir(self.receiver_dir):
            path = os.path.join(self.receiver_dir, name)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    self.assertNotIn(secret, f.read(), name)

    def test_old_receiving_key_file_moves_into_the_store(self):
        keys = os.path.join(self.user_dir, "wabiz", "keys")
        os.makedirs(keys, mode=0o700)
        legacy = os.path.join(keys, self.sim.pnid + ".key")
        with open(legacy, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(legacy, 0o600)
        host = self.start_receiving_host()
        self.sim.inbound("after the move", sender=ANNA)
        host.wait_for(im_from(ANNA, message="after the move"))
        self.assertFalse(os.path.exists(legacy))

    def deliver_folder(self, folder, prepare, options=None):
        """Each .json file of @folder, prepared by @prepare(name, body),
        delivered signed through the receiver in name order; returns the
        host and the names."""
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
        host = self.start_receiving_host(options=options)
        for name in names:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                body = json.load(f)
            prepare(name, body)
            self.sim.webhook_raw(json.dumps(body, separators=(",", ":")))
        return host, names

    def test_every_fixture_is_shown(self):
        """The project's own fixtures (tests/data/webhooks: every field and
        message shape the plugin handles), delivered signed through the
        receiver: each becomes the line a person would see, where they would
        see it. Routed to the simulator's number, with fresh time stamps and
        ids of their own."""
        lena, omar = "4915112345678", "4917698765432"
        group = "Rml4dHVyZUdyb3VwOjQ5MzAxMjM0NTY3MDoxMjAzNjMwMDAwMDAwMDAxZD"
        now = int(time.time())

        def prepare(name, body):
            for entry in body["entry"]:
                entry["id"] = self.sim.info()["waba_id"]
                for change in entry["changes"]:
                    value = change["value"]
                    if "metadata" in value:
                        value["metadata"]["phone_number_id"] = self.sim.pnid
                    for key in ("messages", "statuses", "message_echoes", "groups", "calls"):
                        for i, item in enumerate(value.get(key, [])):
                            if "timestamp" in item:
                                item["timestamp"] = str(now)
                            if key not in ("statuses", "calls") and "id" in item:
                                item["id"] = "wamid.fixture-%d-%s" % (i, name)

        # with the WABA id set, account events (which name no number) reach it
        host, names = self.deliver_folder(os.path.join(SRC, "tests", "data", "webhooks"), prepare,
                                          options={"waba_id": self.sim.info()["waba_id"]})
        expected = {
            "text.json": im_from(lena, message=contains("Is my order 1187 on its way?")),
            "text_reply.json": im_from(lena, message=contains("Yes, that one.")),
            "text_forwarded.json": im_from(lena, message=contains("(Forwarded many times) Look at this offer")),
            "text_from_ad.json": im_from(lena, message=contains("(From an ad: Winter sale: 30% off, https://fb.me/")),
            "text_product_inquiry.json": im_from(lena, message=contains("(About product boot-40-brown)")),
            "image.json": im_from(lena, message=contains("[Image] The scratch on the lid")),
            "sticker.json": im_from(lena, message=contains("[Sticker]")),
            "audio_voice.json": im_from(lena, message=contains("[Voice message]")),
            "video.json": im_from(lena, message=contains("[Video] How it rattles")),
            "document.json": im_from(lena, message=contains("[Document] Rechnung 1187.pdf My invoice")),
            "location.json": im_from(lena, message=contains(
                "[Location] Alexanderplatz, 10178 Berlin (52.520008, 13.404954) "
                "https://www.openstreetmap.org/?mlat=52.520008&amp;mlon=13.404954#map=16/52.520008/13.404954")),
            "contacts.json": im_from(lena, message=contains(
                "[Contact 1] Jonas Brandt (Brandt Logistik, Dispatch): +49 151 2223334, jonas@example.com")),
            "interactive_button_reply.json": im_from(lena, message=contains("[Reply] Reschedule")),
            "interactive_list_reply.json": im_from(lena, message=contains(
                "[Reply] Tuesday 10-12 (Delivery between 10 and 12)")),
            "interactive_nfm_reply.json": im_from(lena, message=contains(
                "[Form] Sent \u2014 size: 40; colour: brown; gift_wrap: yes")),
            "interactive_call_permission_reply.json": im_from(lena, message=contains(
                "[Calls] The customer allows calls from this business for now. Calls are not answered here.")),
            "button.json": im_from(lena, message=contains("[Reply] Stop promotions (payload: STOP_PROMOS)")),
            "order.json": im_from(lena, message=contains(
                "[Order] 2 products, 4 pieces: 1 \u00d7 boot-40-brown at 89.90 EUR; 3 \u00d7 sock-pack at 4.50 EUR; "
                "total 103.40 EUR")),
            "reaction.json": im_from(lena, message=contains("reacted \U0001F44D to")),
            "reaction_removed.json": im_from(lena, message=contains("removed a reaction to an earlier message")),
            "request_welcome.json": im_from(lena, message=contains("opened the chat for the first time")),
            "revoke.json": im_from(lena, message=contains("deleted a message")),
            "edit.json": im_from(lena, message=contains("edited a message: Order 1188, not 1187")),
            "unsupported.json": im_from(lena, message=contains(
                "does not pass on (poll)] Message type unknown (Message type is currently not supported.)")),
            "unknown_type.json": im_from(lena, message=contains("[A hologram message, not shown by this version]")),
            "calls.json": {"event": "write", "conv": lena, "message": contains("The customer is calling on WhatsApp")},
            "call_permission_update.json": {"event": "write", "conv": lena,
                                            "message": contains("may call them. Calls are not answered here.")},
            "system_changed_user_id.json": {"event": "write", "conv": lena, "flags": has("system"),
                                            "message": contains("user ID changed to DE.LenaNew0000000002")},
            "bsuid_only.json": im_from("DE.1349120865530274", message=contains("I only have a username")),
            "two_customers.json": im_from(omar, message=contains("Second customer, other words")),
            "group_message.json": {"event": "write", "conv": group,
                                   "message": contains("Can someone hold a parcel for me?")},
            "group_create.json": {"event": "write", "conv": group,
                                  "message": contains("The group was created. Subject: Mitte store pickups")},
            "group_participants_remove.json": {"event": "write", "conv": group,
                                               "message": contains("2 participants left")},
            "group_settings_update.json": {"event": "write", "conv": group, "message": contains("settings changed")},
            "smb_message_echoes.json": {"event": "write", "conv": lena, "flags": has("send"),
                                        "message": contains("Sent from the phone: we open at 9")},
            "status_failed.json": {"event": "write", "conv": lena, "message": contains("24 hours")},
            "account_update.json": {"event": "write", "conv": "notices",
                                    "message": contains("ACCOUNT_RESTRICTION")},
            "message_template_status_update.json": {"event": "write", "conv": "notices",
                                                    "message": contains("parcel_out_for_delivery")},
            "phone_number_quality_update.json": {"event": "write", "conv": "notices",
                                                 "message": contains("FLAGGED")},
            "system_changed_number.json": {"event": "write", "conv": lena, "flags": has("system"),
                                           "message": contains("changed from 4915112345678 to 4915199999999")},
            "value_errors.json": {"event": "write", "conv": "notices", "message": contains("131000")},
            # sent, delivered, read of a message this plugin did not send:
            # recorded, shown as sent elsewhere once
            "statuses.json": {"event": "write", "conv": lena, "flags": has("send")},
        }
        self.assertEqual(sorted(expected), names)
        for name in names:
            host.wait_for(expected[name])

    def test_every_meta_example_is_shown(self):
        """Meta's 16 webhook examples (the meson option meta_examples; skipped
        when that folder is missing), delivered signed through the receiver:
        each one becomes a visible line. The examples reuse message ids across
        files; each gets its own here (deduplication has its own test)."""
        spec = os.path.join(os.environ.get("WABIZ_META_EXAMPLES", ""), "examples", "webhooks")
        if not os.path.isdir(spec):
            self.skipTest("Meta's webhook examples are not at %s (meson option meta_examples)" % spec)
        expected = {
            "text_message.json": "Does it come in another color?",
            "image_message.json": "[Image] Taj Mahal",
            "location_message.json": "[Location] Philz Coffee",
            "reaction_message.json": "reacted \U0001F44D to an earlier message",
            "order_message.json": "[Order] 2 products",
            "unsupported_message.json": "[A message of a kind WhatsApp does not pass on",
            "interactive_button_reply_message.json": "[Reply] Cancel",
            "interactive_list_reply_message.json": "[Reply] Priority Mail Express",
            "button_message.json": "[Reply] Unsubscribe",
            "contact_sharing_message.json": "[Contact 1] ",
            "text_message_from_click_to_whatsapp_ad.json": "(From an ad: ",
            "text_message_with_context_product_inquiry.json": "(About product di9ozbzfi4)",
        }
        group = "Y2FwaV9ncm91cDoxODA1NTU1MDE3MjoxMjAzNjMyMjI3NzE5NjMwNjcZD"

        def prepare(name, body):
            for entry in body["entry"]:
                for change in entry["changes"]:
                    for message in change["value"].get("messages", []):
                        message["id"] = "wamid.example-" + name

        host, names = self.deliver_folder(spec, prepare)
        self.assertEqual(len(names), 16)
        for name in names:
            if name in expected:
                host.wait_for(im_from("16505551234", message=contains(expected[name])))
            elif name == "system_message.json":
                host.wait_for({"event": "write", "conv": "16505551234", "flags": has("system"),
                               "message": contains("changed from 16505551234 to 12195555358")})
                host.wait_for({"event": "write", "conv": "12195555358", "flags": has("system"),
                               "message": contains("new number +12195555358")})
            elif name == "group_create_message.json":
                # (Meta's removal example says "group_create" too: match what only this one has)
                host.wait_for({"event": "write", "conv": group,
                               "message": contains("The group was created. Subject: your-group-subject")})
            elif name == "group_remove_participants.json":
                host.wait_for({"event": "write", "conv": group, "message": contains("2 participants left")})
            elif name == "group_settings_update.json":
                host.wait_for({"event": "write", "conv": group, "message": contains("settings changed")})
            else:
                self.fail("no expectation for " + name)

    def test_notices_are_rate_limited(self):
        waba = self.sim.info()["waba_id"]
        host = self.start_receiving_host(options={"waba_id": waba})

        def template_event(i):
            return json.dumps({"object": "whatsapp_business_account", "entry": [{
                "id": waba, "time": int(time.time()), "changes": [{
                    "field": "message_template_status_update",
                    "value": {"event": "APPROVED", "message_template_id": 1000 + i,
                              "message_template_name": "order_update_%d" % i,
                              "message_template_language": "en"}}]}]})
        # the same event twice: shown once
        self.sim.webhook_raw(template_event(0))
        self.sim.webhook_raw(template_event(0))
        host.wait_for({"event": "write", "conv": "notices", "message": contains("order_update_0")})
        for i in range(1, 30):
            self.sim.webhook_raw(template_event(i))
        # at most 20 lines a minute: the set-up notice, order_update_0 and 18 more
        shown = [host.wait_for({"event": "write", "conv": "notices", "message": contains("order_update_")})
                 for _ in range(18)]
        self.assertEqual(len({line["message"] for line in shown}), 18)
        host.expect_none({"event": "write", "conv": "notices"}, 1.5)

    def test_receiving_off_without_app_secret(self):
        host = self.start_host()
        host.wait_for({"event": "write", "conv": "notices", "message": contains("Receiving is off")})


if __name__ == "__main__":
    main()

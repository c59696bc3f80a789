"""Sending text end to end: the exact JSON the simulator receives, splitting,
markup, refusals written in the conversation, and the outbox through outages."""

import json

from harness import Scenario, contains, has, main, wait_until

ANNA = "491701234567"


class Send(Scenario):

    def setUp(self):
        super().setUp()
        self.host = self.start_host()

    def sent(self, count):
        return self.sim.wait_for_sent(count)

    def test_exact_json_and_token(self):
        self.host.send_im("+49 170 1234567", "Hello <b>world</b> &amp; <i>friends</i>")
        echo = self.host.wait_for({"event": "write", "flags": has("send")})
        self.assertEqual(echo["conv"], ANNA)
        sent = self.sent(1)
        request = dict(sent[0]["request"])
        # the outbox id: random, below 2^53 (exact in JSON numbers)
        self.assertRegex(request.pop("biz_opaque_callback_data"), r"^wabiz:[1-9][0-9]{0,15}$")
        self.assertEqual(request, {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+491701234567",
            "type": "text",
            "text": {"body": "Hello *world* & _friends_"},
        })
        self.assertEqual(sent[0]["authorization"], "Bearer " + self.sim.token)
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_link_turns_on_preview(self):
        self.host.send_im(ANNA, 'see <a href="https://shop.example/o/1">https://shop.example/o/1</a>')
        req = self.sent(1)[0]["request"]
        self.assertEqual(req["text"], {"body": "see https://shop.example/o/1", "preview_url": True})

    def test_long_text_split_and_numbered(self):
        text = " ".join("word%04d" % i for i in range(1000))  # 8,999 characters
        self.host.send_im(ANNA, text)
        sent = self.sent(3)
        bodies = [s["request"]["text"]["body"] for s in sent]
        self.assertEqual(len(bodies), 3)
        for i, body in enumerate(bodies):
            self.assertTrue(body.startswith("(%d/3) " % (i + 1)), body[:10])
            self.assertLessEqual(len(body), 4096)
        rejoined = " ".join(b.split(" ", 1)[1] for b in bodies)
        self.assertEqual(rejoined, text)
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.5)

    def test_invalid_number_refused_locally(self):
        self.host.send_im("12ab", "hello")
        err = self.host.wait_for({"event": "write", "flags": has("error")})
        self.assertIn("is not a phone number", err["message"])
        self.assertIn("12ab", err["message"])
        self.assertEqual(self.sim.sent(), [])

    def test_national_number_needs_country_code(self):
        self.host.send_im("0170 1234567", "hello")
        err = self.host.wait_for({"event": "write", "flags": has("error")})
        self.assertIn("default country code", err["message"])
        self.host.set_option("default_country_code", "49")
        self.host.send_im("0170 1234567", "hello again")
        self.assertEqual(self.sent(1)[0]["request"]["to"], "+491701234567")

    def test_synchronous_error_shown(self):
        self.sim.fault(path="/messages", status=400, code=131009, count=1)
        self.host.send_im(ANNA, "first")
        err = self.host.wait_for({"event": "write", "flags": has("error")})
        self.assertEqual(err["conv"], ANNA)
        self.assertIn("Not sent:", err["message"])
        self.assertIn("not valid", err["message"])
        self.assertIn("131009", err["message"])
        # a refusal is final: the next message still goes
        self.host.send_im(ANNA, "second")
        self.assertEqual(self.sent(1)[0]["request"]["text"]["body"], "second")

    def test_api_text_is_escaped(self):
        body = json.dumps({"error": {"message": "(#100) bad", "code": 100, "type": "OAuthException",
                                     "error_data": {"details": '<img id="1"><b>x</b>'}}})
        self.sim.fault(path="/messages", status=400, body=body, content_type="application/json")
        self.host.send_im(ANNA, "hi")
        err = self.host.wait_for({"event": "write", "flags": has("error")})
        self.assertIn("&lt;img id=&quot;1&quot;&gt;&lt;b&gt;x&lt;/b&gt;", err["message"])
        self.assertNotIn("<img", err["message"])
        self.assertNotIn("<b>", err["message"])

    def test_rate_limit_queues_then_sends(self):
        self.sim.fault(path="/messages", status=400, code=130429, count=2)
        self.host.send_im(ANNA, "patience")
        queued = self.host.wait_for({"event": "write", "flags": has("system"),
                                     "message": contains("Queued")})
        self.assertIn("1 message waiting", queued["message"])
        self.host.wait_for({"event": "write", "message": contains("waiting messages have been sent")})
        sent = self.sent(1)
        self.assertEqual(len(sent), 1)
        self.assertEqual(sent[0]["request"]["text"]["body"], "patience")
        self.host.expect_none("disconnect", 0.3)

    def test_order_kept_through_rate_limits(self):
        self.sim.fault(path="/messages", status=400, code=131056, count=1)
        for i in range(5):
            self.host.send_im(ANNA, "m%d" % i)
        sent = self.sent(5)
        self.assertEqual([s["request"]["text"]["body"] for s in sent], ["m0", "m1", "m2", "m3", "m4"])

    def test_outage_stays_connected_and_never_duplicates(self):
        self.sim.fault(path="/messages", status=500, code=1, count=1)
        self.sim.fault(path="/messages", reset=True, count=1)
        self.host.send_im(ANNA, "maybe one")
        self.host.send_im(ANNA, "maybe two")
        self.host.send_im(ANNA, "surely three")
        first = self.host.wait_for({"event": "write", "flags": has("error")})
        second = self.host.wait_for({"event": "write", "flags": has("error")})
        for ev in (first, second):
            self.assertIn("may or may not have been sent", ev["message"])
        sent = self.sent(1)
        # the uncertain ones were not repeated; only the third was accepted
        self.assertEqual([s["request"]["text"]["body"] for s in sent], ["surely three"])
        posts = [r for r in self.sim.requests() if r["path"].endswith("/messages")]
        self.assertEqual(len(posts), 3)
        self.host.expect_none("disconnect", 0.3)

    def test_wa_id_follows_the_api(self):
        self.host.add_buddy("5511987654321", alias="Brazil customer")
        self.host.send_im("5511987654321", "ola")
        note = self.host.wait_for({"event": "write", "flags": has("system"),
                                   "message": contains("WhatsApp knows this customer as +551187654321")})
        self.assertEqual(note["conv"], "551187654321")
        self.assertEqual(self.sent(1)[0]["wa_id"], "551187654321")
        names = [b["name"] for b in self.host.blist() if b.get("event") == "buddy"]
        self.assertIn("551187654321", names)
        self.assertNotIn("5511987654321", names)
        # the next message goes to the number WhatsApp uses
        self.host.send_im("551187654321", "again")
        self.assertEqual(self.sent(2)[1]["request"]["to"], "+551187654321")

    def test_bsuid_recipient(self):
        self.host.send_im("US.13491208655302741918", "hello")
        req = self.sent(1)[0]["request"]
        self.assertEqual(req["recipient"], "US.13491208655302741918")
        self.assertNotIn("to", req)

    def test_in_flight_send_finishes_after_sign_off(self):
        self.host.close()
        self.host = self.start_host(debug=True)
        self.sim.fault(path="/messages", delay_ms=700, count=1)
        self.host.send_im(ANNA, "bye for now")
        self.host.send_im(ANNA, "queued behind it")
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 1 or None,
                   what="the send to be held by the simulator")
        self.host.disconnect()
        # the queued message never started: it waits in the store, and the
        # conversation says so at once
        waiting = self.host.wait_for({"event": "write", "flags": has("system"),
                                      "message": contains("1 message to this customer waits in the outbox")})
        self.assertEqual(waiting["conv"], ANNA)
        self.host.wait_for("signed-off")
        # the request in flight was not cut off by the sign-off: its answer arrived
        sent = self.sent(1)
        self.assertEqual(sent[0]["request"]["text"]["body"], "bye for now")
        wait_until(lambda: "accepted after sign-off" in self.host.stderr_text() or None,
                   what="the answer after sign-off")
        self.assertEqual(len(self.sim.sent()), 1)
        # signed in again: the waiting one goes out; the one answered after
        # sign-off is known as sent (not asked about, not sent again)
        self.host.connect()
        self.host.wait_for("signed-on")
        sent = self.sent(2)
        self.assertEqual([m["request"]["text"]["body"] for m in sent], ["bye for now", "queued behind it"])
        self.host.expect_none({"event": "request"}, 1.0)
        self.host.call({"cmd": "command", "conv": ANNA, "text": "resend"})
        self.host.wait_for({"event": "write", "message": contains("No message is waiting for a decision")})
        self.assertEqual(len(self.sim.sent()), 2)
        self.assertEqual(self.host.quit(), 0)

    def test_failure_after_sign_off_is_shown(self):
        self.sim.fault(path="/messages", delay_ms=700, code=131026, count=1)
        self.host.send_im(ANNA, "last words")
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 1 or None,
                   what="the send to be held by the simulator")
        self.host.disconnect()
        self.host.wait_for("signed-off")
        err = self.host.wait_for({"event": "write", "flags": has("error"),
                                  "message": contains("Not sent:")})
        self.assertEqual(err["conv"], ANNA)
        self.assertIn("131026", err["message"])

    def test_token_refused_while_signed_in(self):
        self.sim.fault(path="/messages", status=401, code=190, delay_ms=300, count=-1)
        self.host.send_im(ANNA, "one")
        self.host.send_im(ANNA, "two")
        ev = self.host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "AUTHENTICATION_FAILED")
        self.assertIn("access token was refused", ev["description"])
        kept = self.host.wait_for({"event": "write", "flags": has("system"),
                                   "message": contains("2 messages to this customer wait in the outbox")})
        self.assertEqual(kept["conv"], ANNA)
        self.assertEqual(self.sim.sent(), [])
        # a new token (here: the API accepts it again): nothing queued was lost
        self.sim.clear_faults()
        self.host.call({"cmd": "enable"})
        self.host.wait_for("signed-on")
        sent = self.sent(2)
        self.assertEqual([m["request"]["text"]["body"] for m in sent], ["one", "two"])

    def test_plaintext_log_off(self):
        self.host.send_im(ANNA, "private")
        self.host.wait_for({"event": "write", "flags": has("send")})
        convs = self.host.convs()
        mine = [c for c in convs if c.get("conv") == ANNA]
        self.assertTrue(mine, convs)
        self.assertFalse(mine[0]["logging"])


if __name__ == "__main__":
    main()

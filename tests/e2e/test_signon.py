"""Sign-on end to end: what the agent sees for good and bad settings, and that
outages at sign-on reconnect by themselves."""

from harness import Scenario, contains, main, refusing_port


class SignOn(Scenario):

    def test_ok(self):
        host = self.start_host(wait_signed_on=False)
        progress = host.wait_for({"event": "progress", "text": contains("Contacting")})
        self.assertEqual(progress["count"], 4)
        on = host.wait_for("signed-on")
        self.assertEqual(on["display_name"], "Jaspers Market (+1 555-078-3881)")
        reqs = [r for r in self.sim.requests() if r["path"].endswith("/" + self.sim.pnid)]
        self.assertEqual(len(reqs), 1)
        self.assertEqual(reqs[0]["method"], "GET")
        self.assertTrue(reqs[0]["authorization"])
        self.assertIn("fields=display_phone_number,verified_name,quality_rating", reqs[0]["query"])
        self.assertTrue(reqs[0]["user_agent"].startswith("purple-wabiz/"))
        host.expect_none("disconnect", 0.5)
        # each step of the sign-in is shown once, in order
        steps = [(e["step"], e["text"]) for e in host.events("progress")]
        self.assertEqual([step for step, _ in steps], [0, 1, 2, 3], steps)

    def test_bad_token(self):
        host = self.start_host(password="WRONG-TOKEN", wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "AUTHENTICATION_FAILED")
        self.assertTrue(ev["fatal"])
        self.assertIn("access token was refused", ev["description"])
        self.assertIn("190", ev["description"])
        host.expect_none("reconnect-scheduled", 1.0)
        host.expect_none("signed-on", 0.1)

    def test_unknown_phone_number_id(self):
        host = self.start_host(account="999999999", wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "INVALID_SETTINGS")
        self.assertIn("999999999", ev["description"])
        self.assertIn("phone number ID", ev["description"])
        host.expect_none("reconnect-scheduled", 1.0)

    def test_no_permission(self):
        host = self.start_host(password=self.sim.token_no_permission, wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "INVALID_SETTINGS")
        self.assertIn("whatsapp_business_management", ev["description"])
        self.assertIn("permission", ev["description"])

    def test_api_down_then_up(self):
        self.sim.fault(status=503, count=-1, body="<html>Service Unavailable</html>",
                       content_type="text/html")
        host = self.start_host(wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "NETWORK_ERROR")
        self.assertFalse(ev["fatal"])
        host.wait_for("reconnect-scheduled")
        # a second failed attempt, then the API comes back
        host.wait_for("disconnect")
        self.sim.clear_faults()
        host.wait_for("signed-on", timeout=30)

    def test_proxy_page_401_is_not_a_refused_token(self):
        # a login page from something in front of the API (no Graph error):
        # not the token's fault, so the account reconnects by itself
        self.sim.fault(status=401, count=1, content_type="text/html",
                       body="<html><body><h1>401 Authorization Required</h1></body></html>")
        host = self.start_host(wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "NETWORK_ERROR")
        self.assertFalse(ev["fatal"])
        self.assertIn("not the WhatsApp API", ev["description"])
        self.assertIn("HTTP 401", ev["description"])
        self.assertNotIn("token was refused", ev["description"])
        host.wait_for("reconnect-scheduled")
        host.wait_for("signed-on", timeout=30)

    def test_rate_limited_at_sign_on(self):
        self.sim.fault(status=400, code=130429, count=1)
        host = self.start_host(wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "NETWORK_ERROR")
        host.wait_for("signed-on", timeout=30)

    def test_unreachable(self):
        sock, port = refusing_port()
        self.addCleanup(sock.close)
        host = self.start_host(options={"api_base_url": "http://127.0.0.1:%d/v25.0" % port},
                               wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "NETWORK_ERROR")
        self.assertIn("Cannot reach", ev["description"])
        host.wait_for("reconnect-scheduled")

    def test_invalid_settings(self):
        host = self.start_host(account="+1 555 0100", wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "INVALID_SETTINGS")
        self.assertIn("phone number ID", ev["description"])

    def test_plain_http_refused(self):
        host = self.start_host(options={"api_base_url": "http://graph.example.com/v25.0"},
                               wait_signed_on=False)
        ev = host.wait_for("disconnect")
        self.assertEqual(ev["reason_name"], "INVALID_SETTINGS")
        self.assertIn("https", ev["description"])
        self.assertEqual(self.sim.requests(), [])


if __name__ == "__main__":
    main()

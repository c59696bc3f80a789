"""test_receiver.py: wabiz-receiver end to end: real HTTP on a port the
receiver picked (port 0), the real UNIX socket, sealed events opened with
libsodium. Each test starts its own receiver on a fresh temporary --dir and
asserts both the HTTP answer and what was (or was not) journalled and
delivered.

Must not: pick a free port and bind it later (the receiver binds port 0 and
answers the port), skip when a tool is missing (openssl is a Debian base
package: its absence is a failure), or wait by sleeping where polling against
a deadline works.

Usage: WABIZ_RECEIVER=path/to/wabiz-receiver python3 test_receiver.py [Class.test_name ...]
"""

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    DEFAULT_TIMEOUT, TIMEOUT_FACTOR, Account, Client, Receiver, ReceiverCase, RxError, change, envelope,
    http_request, make_cert, meta_json, new_wamid, post_webhook, run_cli, sign, sign_sha1, status_item,
    text_message, tls_client_context, values_of, verify_get, wait_until, webhook_body)

BINARY = ReceiverCase.binary

PNID_A = "106540352242922"
PNID_B = "106540352242933"
WABA_A = "102290129340398"
WABA_B = "102290129340399"


def kill_quietly(pid):
    """Kills a daemon a failed test left running (nothing if it is gone)."""
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def raw_http(port, head, body=b"", read_timeout=5.0):
    """Sends ``head`` (and ``body``) on a fresh socket; returns what comes back
    until the server closes or ``read_timeout`` passes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    try:
        s.sendall(head + body)
        data = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def status_line(data):
    return data.split(b"\r\n", 1)[0].decode("latin-1")


class ReceiverTest(ReceiverCase):
    maxDiff = None


    # ---- helpers ------------------------------------------------------

    def start(self, **opts):
        rx = Receiver.start(BINARY, self.dir, **opts)
        self.receivers.append(rx)
        return rx

    def client(self, rx, hello=True):
        c = rx.client(hello=hello)
        self.clients.append(c)
        return c

    def register(self, rx, account, **reg):
        """A client with @account registered and subscribed; (client, url)."""
        c = self.client(rx)
        answer = c.register(account.registration(**reg))
        c.subscribe(account.pnid)
        return c, answer["url"]

    def account_status(self, rx, pnid):
        for account in rx.status()["accounts"]:
            if account["account"] == pnid:
                return account
        self.fail("account %s not in STATUS" % pnid)

    def assert_no_event(self, client, within=0.3):
        client.poll(within)
        self.assertEqual(client.events, [], "no event should have been delivered")

    # ---- signatures ---------------------------------------------------

    def test_signature_meta_escaping(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        msg = text_message("Hola quiero un caf\u00e9")
        msg["type"] = "image"
        msg["image"] = {"caption": "caf\u00e9", "mime_type": "image/jpeg",
                        "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"}
        body = meta_json(envelope([change(acct.pnid, messages=[msg])]))
        self.assertIn(b"caf\\u00e9", body)
        self.assertIn(b"image\\/jpeg", body)
        status, _, _ = post_webhook(url, body, secret=acct.secret)
        self.assertEqual(status, 200)
        value = values_of(acct.open(c.next_event()))[0]
        self.assertEqual(value["messages"][0]["image"]["caption"], "caf\u00e9")
        self.assertEqual(value["messages"][0]["image"]["mime_type"], "image/jpeg")
        # the same body signed over a re-serialised form does not verify
        resigned = sign(json.dumps(json.loads(body), separators=(",", ":"), ensure_ascii=False))
        status, _, _ = post_webhook(url, body, signature=resigned)
        self.assertEqual(status, 401)
        self.assert_no_event(c)

    def test_signature_non_ascii(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        text = "Gr\u00fc\u00dfe aus K\u00f6ln \U0001f44b \u0645\u0631\u062d\u0628\u0627"
        body = json.dumps(envelope([change(acct.pnid, messages=[text_message(text)])]),
                          ensure_ascii=False).encode("utf-8")
        status, _, _ = post_webhook(url, body, secret=acct.secret)
        self.assertEqual(status, 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], text)

    def test_wrong_secret(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        status, _, _ = post_webhook(url, webhook_body(), secret="not-the-secret")
        self.assertEqual(status, 401)
        notice = c.wait_notice("signature")
        self.assertEqual(notice["account"], acct.pnid)
        self.assertNotIn(acct.secret, json.dumps(notice))
        self.assert_no_event(c)
        # rate-limited: a second refusal within the minute sends no second notice
        self.assertEqual(post_webhook(url, webhook_body(), secret="other")[0], 401)
        c.poll(0.3)
        self.assertEqual(len([n for n in c.notices if n["code"] == "signature"]), 1)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 0)
        self.assertNotIn(acct.secret, rx.log())

    def test_missing_signature(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        self.assertEqual(post_webhook(url, webhook_body(), signature=False)[0], 401)
        self.assertEqual(post_webhook(url, webhook_body(), signature="")[0], 401)
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 0)

    def test_sha1_only(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        body = webhook_body()
        # the legacy header alone is not enough
        status, _, _ = post_webhook(url, body, signature=False,
                                    headers={"X-Hub-Signature": sign_sha1(body, acct.secret)})
        self.assertEqual(status, 401)
        # nor a sha1 value in the sha256 header
        self.assertEqual(post_webhook(url, body, signature=sign_sha1(body, acct.secret))[0], 401)
        self.assert_no_event(c)

    def test_routing_two_apps_one_path(self):
        rx = self.start()
        a = Account(PNID_A, WABA_A, secret="secret-of-app-a")
        b = Account(PNID_B, WABA_A, secret="secret-of-app-b")
        ca, url = self.register(rx, a)
        port = rx.status()["listeners"][0]["port"]
        cb, url_b = self.register(rx, b, port=port)
        self.assertEqual(url, url_b)
        self.assertEqual(len(rx.status()["listeners"]), 1)
        # signed by app A but naming B's phone number id: never reaches B
        status, _, _ = post_webhook(url, webhook_body(PNID_B, WABA_A, "for b, signed by a"),
                                    secret=a.secret)
        self.assertEqual(status, 200)
        self.assert_no_event(cb)
        self.assert_no_event(ca)
        self.assertEqual(self.account_status(rx, PNID_A)["unclaimed"], 1)
        self.assertEqual(self.account_status(rx, PNID_B)["unclaimed"], 0)
        self.assertEqual(self.account_status(rx, PNID_B)["pending"], 0)
        # each app's own deliveries reach its own account only
        self.assertEqual(post_webhook(url, webhook_body(PNID_B, WABA_A, "to b"), secret=b.secret)[0], 200)
        self.assertEqual(post_webhook(url, webhook_body(PNID_A, WABA_A, "to a"), secret=a.secret)[0], 200)
        self.assertEqual(values_of(b.open(cb.next_event()))[0]["messages"][0]["text"]["body"], "to b")
        self.assertEqual(values_of(a.open(ca.next_event()))[0]["messages"][0]["text"]["body"], "to a")
        self.assert_no_event(ca)
        self.assert_no_event(cb)

    def test_same_secret_routes_by_phone_number_id(self):
        rx = self.start()
        a = Account(PNID_A, WABA_A, secret="shared")
        b = Account(PNID_B, WABA_A, secret="shared")
        ca, url = self.register(rx, a)
        port = rx.status()["listeners"][0]["port"]
        cb, _ = self.register(rx, b, port=port)
        body = meta_json(envelope([change(PNID_A, messages=[text_message("one")]),
                                   change(PNID_B, messages=[text_message("two")])]))
        self.assertEqual(post_webhook(url, body, secret="shared")[0], 200)
        self.assertEqual(values_of(a.open(ca.next_event()))[0]["messages"][0]["text"]["body"], "one")
        self.assertEqual(values_of(b.open(cb.next_event()))[0]["messages"][0]["text"]["body"], "two")
        self.assert_no_event(ca)
        self.assert_no_event(cb)

    def test_waba_id_check(self):
        rx = self.start()
        acct = Account(PNID_A, WABA_A)
        c, url = self.register(rx, acct)
        # right number, wrong WABA: not this account's
        self.assertEqual(post_webhook(url, webhook_body(PNID_A, WABA_B), secret=acct.secret)[0], 200)
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, PNID_A)["unclaimed"], 1)
        # a template update (no metadata) belongs to the account naming its WABA
        template = {"event": "APPROVED", "message_template_id": 1689556908129835,
                    "message_template_name": "abandoned_cart", "message_template_language": "en",
                    "reason": "NONE"}
        body = meta_json(envelope([change(field="message_template_status_update", value=template)],
                                  WABA_A, entry_time=1751247548))
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        env = acct.open(c.next_event())
        self.assertEqual(env["entry"][0]["id"], WABA_A)
        self.assertEqual(env["entry"][0]["time"], 1751247548)
        self.assertEqual(env["entry"][0]["changes"][0]["field"], "message_template_status_update")
        self.assertEqual(values_of(env)[0]["message_template_name"], "abandoned_cart")
        body = meta_json(envelope([change(field="message_template_status_update", value=template)],
                                  WABA_B, entry_time=1751247548))
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, PNID_A)["unclaimed"], 2)
        # without a WABA id on the account, only phone number ids route
        c.close()
        noswaba = Account(PNID_B, "")
        c2, url2 = self.register(rx, noswaba, port=0)
        self.assertEqual(post_webhook(url2, webhook_body(PNID_B, WABA_B), secret=noswaba.secret)[0], 200)
        self.assertEqual(len(values_of(noswaba.open(c2.next_event()))[0]["messages"]), 1)
        self.assertEqual(post_webhook(url2, body, secret=noswaba.secret)[0], 200)
        self.assert_no_event(c2)

    def test_unclaimed_number(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        status, _, _ = post_webhook(url, webhook_body("999999999999999"), secret=acct.secret)
        self.assertEqual(status, 200)
        notice = c.wait_notice("unclaimed")
        self.assertEqual(notice["account"], acct.pnid)
        self.assert_no_event(c)
        st = self.account_status(rx, acct.pnid)
        self.assertEqual((st["unclaimed"], st["pending"], st["received"]), (1, 0, 0))

    # ---- limits on bodies ---------------------------------------------

    def test_depth_limits(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        for depth in (100, 100000):
            body = b'{"object":"whatsapp_business_account","entry":' + b"[" * depth + b"]" * depth + b"}"
            status, _, _ = post_webhook(url, body, secret=acct.secret)
            self.assertEqual(status, 400, "depth %d" % depth)
            self.assertTrue(rx.alive())
        self.assert_no_event(c)
        self.assertEqual(post_webhook(url, webhook_body(), secret=acct.secret)[0], 200)
        c.next_event()

    def test_content_length_over_cap(self):
        rx = self.start(max_body=65536)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        # the answer comes before a single byte of the body is sent
        head = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"X-Hub-Signature-256: sha256=00\r\nContent-Length: 65537\r\n\r\n")
        start = time.monotonic()
        answer = raw_http(port, head, read_timeout=3 * TIMEOUT_FACTOR)
        self.assertEqual(status_line(answer), "HTTP/1.1 413 Payload Too Large")
        self.assertIn(b"\r\nConnection: close\r\n", answer)
        # answered and closed at once, not after a timeout
        self.assertLess(time.monotonic() - start, 1.5 * TIMEOUT_FACTOR)
        # a client that sends the whole body still reads the 413
        body = webhook_body(text="x" * 65536)
        self.assertGreater(len(body), 65536)
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 413)
        # exactly at the cap is fine
        small = webhook_body(text="y" * 100)
        pad = 65536 - len(small)
        at_cap = webhook_body(text="y" * (100 + pad))
        self.assertEqual(len(at_cap), 65536)
        self.assertEqual(post_webhook(url, at_cap, secret=acct.secret)[0], 200)
        self.assertEqual(len(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"]), 100 + pad)
        self.assert_no_event(c)

    def test_default_cap_3mib(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        small = webhook_body(text="")
        cap = 3 * 1024 * 1024
        at_cap = webhook_body(text="z" * (cap - len(small)))
        self.assertEqual(len(at_cap), cap)
        over = webhook_body(text="z" * (cap - len(small) + 1))
        self.assertEqual(len(over), cap + 1)
        self.assertEqual(post_webhook(url, over, secret=acct.secret)[0], 413)
        self.assert_no_event(c)
        self.assertEqual(post_webhook(url, at_cap, secret=acct.secret)[0], 200)
        event = c.next_event()
        self.assertEqual(len(values_of(acct.open(event))[0]["messages"][0]["text"]["body"]), cap - len(small))

    def test_chunked_over_cap(self):
        rx = self.start(max_body=65536)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * TIMEOUT_FACTOR)
        try:
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
                      b"X-Hub-Signature-256: sha256=00\r\n\r\n")
            # chunks past the cap, and no last chunk: the receiver must not
            # wait for the end of the body to answer
            chunk = b"a" * 8192
            for _ in range(65536 // 8192 + 3):
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            s.settimeout(5 * TIMEOUT_FACTOR)
            answer = b""
            while b"\r\n\r\n" not in answer:
                more = s.recv(65536)
                if not more:
                    break
                answer += more
            # the receiver ends the connection right after its answer
            s.settimeout(2 * TIMEOUT_FACTOR)
            start = time.monotonic()
            closed = False
            try:
                while True:
                    more = s.recv(65536)
                    if not more:
                        closed = True
                        break
                    answer += more
            except ConnectionResetError:
                closed = True
            except socket.timeout:
                pass
            self.assertTrue(closed, "the connection stayed open after the 413")
            self.assertLess(time.monotonic() - start, 1.5 * TIMEOUT_FACTOR)
        finally:
            s.close()
        self.assertEqual(status_line(answer), "HTTP/1.1 413 Payload Too Large")
        self.assertTrue(answer.endswith(b"\r\n\r\nrequest body too large\r\n"), answer)
        # a chunked body under the cap works
        body = webhook_body(text="chunky")

        def chunks():
            for i in range(0, len(body), 50):
                yield body[i:i + 50]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5 * TIMEOUT_FACTOR)
        conn.request("POST", "/webhook", body=chunks(), encode_chunked=True,
                     headers={"X-Hub-Signature-256": sign(body, acct.secret),
                              "Transfer-Encoding": "chunked"})
        self.assertEqual(conn.getresponse().status, 200)
        conn.close()
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "chunky")
        self.assert_no_event(c)

    def test_malformed_json(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        for body in (b'{"object":"whatsapp_business_account","entry":[', b"not json at all",
                     b'{"object":"page","entry":[]}', b'{"object":"whatsapp_business_account"}',
                     b"[1,2,3]"):
            self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 400, body)
        self.assert_no_event(c)
        self.assertTrue(rx.alive())

    # ---- dedupe -------------------------------------------------------

    def test_dedupe_spread_over_the_journal(self):
        # a delivery whose ids land all over a large dedupe index changes
        # many pages in its savepoint: SQLite's statement journal then spills
        # to a temporary file, which the confinement refused in /var/tmp (a
        # 500 for that delivery: "unable to open database file")
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        for _ in range(30):
            body = meta_json(envelope([change(acct.pnid, messages=[text_message("x") for _ in range(200)])]))
            self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        body = meta_json(envelope([change(acct.pnid, messages=[text_message("y") for _ in range(400)])]))
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200, rx.log())
        self.assertNotIn("could not be stored", rx.log())

    def test_dedupe(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        wamid = new_wamid()
        body = webhook_body(text="once", wamid=wamid)
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        events = [c.next_event()]
        self.assert_no_event(c)
        self.assertEqual(values_of(acct.open(events[0]))[0]["messages"][0]["id"], wamid)
        sent = new_wamid()

        def status_body(state):
            return meta_json(envelope([change(acct.pnid, statuses=[status_item(sent, state)])]))
        self.assertEqual(post_webhook(url, status_body("delivered"), secret=acct.secret)[0], 200)
        self.assertEqual(post_webhook(url, status_body("delivered"), secret=acct.secret)[0], 200)
        self.assertEqual(post_webhook(url, status_body("read"), secret=acct.secret)[0], 200)
        got = [values_of(acct.open(c.next_event()))[0]["statuses"][0]["status"] for _ in range(2)]
        self.assertEqual(got, ["delivered", "read"])
        self.assert_no_event(c)
        # one body mixing a seen and a new message keeps only the new one
        fresh = text_message("new")
        body = meta_json(envelope([change(acct.pnid, messages=[text_message("once", wamid), fresh])]))
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        messages = values_of(acct.open(c.next_event()))[0]["messages"]
        self.assertEqual([m["id"] for m in messages], [fresh["id"]])
        st = self.account_status(rx, acct.pnid)
        self.assertEqual((st["received"], st["duplicates"]), (4, 2))

    # ---- GET handshake, routes, methods ---------------------------------

    def test_get_handshake(self):
        rx = self.start()
        acct = Account(verify_token="tok-\u00e9 &=+")
        c, url = self.register(rx, acct)
        status, body, headers = verify_get(url, challenge="1158201444", token=acct.verify_token)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"1158201444")
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        self.assertEqual(verify_get(url, token="wrong")[0], 403)
        self.assertEqual(verify_get(url, token=None)[0], 403)
        self.assertEqual(verify_get(url, mode="unsubscribe", token=acct.verify_token)[0], 403)
        self.assertEqual(verify_get(url, mode=None, token=acct.verify_token)[0], 403)
        self.assertEqual(verify_get(url, challenge=None, token=acct.verify_token)[0], 403)
        self.assert_no_event(c)

    def test_get_handshake_any_account_on_path(self):
        rx = self.start()
        a = Account(PNID_A, verify_token="token-a")
        b = Account(PNID_B, verify_token="token-b", secret="other")
        _, url = self.register(rx, a)
        port = rx.status()["listeners"][0]["port"]
        self.register(rx, b, port=port)
        self.assertEqual(verify_get(url, token="token-a")[0], 200)
        self.assertEqual(verify_get(url, token="token-b")[0], 200)
        self.assertEqual(verify_get(url, token="token-c")[0], 403)
        # an account without a verify token never matches an empty one
        c = Account("555", verify_token="", secret="x")
        self.register(rx, c, port=port, path="/other")
        self.assertEqual(verify_get(url.replace("/webhook", "/other"), token="")[0], 403)

    def test_other_path_404_and_put_405(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        base = url.rsplit("/", 1)[0]
        body = webhook_body()
        self.assertEqual(post_webhook(base + "/other", body, secret=acct.secret)[0], 404)
        self.assertEqual(post_webhook(base + "/", body, secret=acct.secret)[0], 404)
        self.assertEqual(post_webhook(url + "/sub", body, secret=acct.secret)[0], 404)
        status, _, headers = http_request(url, "PUT", body, {"X-Hub-Signature-256": sign(body, acct.secret)})
        self.assertEqual(status, 405)
        self.assertEqual(headers.get("allow"), "GET, POST")
        self.assertEqual(http_request(url, "DELETE")[0], 405)
        self.assert_no_event(c)

    # ---- storage and durability ---------------------------------------

    def test_storage_failure(self):
        rx = self.start(max_pages=8)
        acct = Account()
        c, url = self.register(rx, acct)
        status, _, _ = post_webhook(url, webhook_body(text="x" * 60000), secret=acct.secret)
        self.assertEqual(status, 500)
        notice = c.wait_notice("storage")
        self.assertEqual(notice["account"], acct.pnid)
        self.assert_no_event(c)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 0)
        # nothing of the failed delivery was recorded: its retry is not a duplicate
        self.assertEqual(post_webhook(url, webhook_body(text="small"), secret=acct.secret)[0], 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "small")

    def test_commit_before_200(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        url = c.register(acct.registration())["url"]
        c.close()
        body = webhook_body(text="durable")
        self.assertEqual(post_webhook(url, body, secret=acct.secret)[0], 200)
        rx.kill9()
        self.assertTrue(os.path.exists(rx.sock_path), "kill -9 leaves the socket behind")
        rx2 = self.start()
        c2 = self.client(rx2)
        self.assertEqual(c2.subscribe(acct.pnid)["pending"], 1)
        self.assertEqual(values_of(acct.open(c2.next_event()))[0]["messages"][0]["text"]["body"], "durable")

    def test_registrations_persist(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        answer = c.register(acct.registration(port=0))
        url, port = answer["url"], answer["port"]
        self.assertNotEqual(port, 0)
        # registering again with port 0 keeps the port
        self.assertEqual(c.register(acct.registration(port=0))["port"], port)
        c.close()
        self.assertEqual(rx.stop(), 0)
        rx2 = self.start()
        st = rx2.status()
        self.assertEqual(st["clients"], 1)  # this STATUS request alone
        self.assertEqual([(a["account"], a["url"]) for a in st["accounts"]], [(acct.pnid, url)])
        self.assertEqual(st["listeners"][0]["port"], port)
        # with no client connected, deliveries are accepted and kept
        self.assertEqual(post_webhook(url, webhook_body(text="while away"), secret=acct.secret)[0], 200)
        c2 = self.client(rx2)
        self.assertEqual(c2.subscribe(acct.pnid)["pending"], 1)
        self.assertEqual(values_of(acct.open(c2.next_event()))[0]["messages"][0]["text"]["body"], "while away")
        self.assertEqual(c2.register(acct.registration(port=0))["port"], port)

    def test_ack_deletes_and_unacked_resent(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        for text in ("one", "two", "three"):
            self.assertEqual(post_webhook(url, webhook_body(text=text), secret=acct.secret)[0], 200)
        events = c.wait_events(3)
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(seqs))
        self.assertEqual(c.ack(acct.pnid, seqs[1]), {"account": acct.pnid, "seq": seqs[1]})
        c.close()
        c2 = self.client(rx)
        self.assertEqual(c2.subscribe(acct.pnid)["pending"], 1)
        again = c2.next_event()
        self.assertEqual(again["seq"], seqs[2])
        self.assertEqual(values_of(acct.open(again))[0]["messages"][0]["text"]["body"], "three")
        self.assert_no_event(c2)
        c2.ack(acct.pnid, seqs[2])
        c2.close()
        c3 = self.client(rx)
        self.assertEqual(c3.subscribe(acct.pnid)["pending"], 0)
        self.assert_no_event(c3)

    def test_at_most_64_unacked(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        url = c.register(acct.registration())["url"]
        changes = [change(acct.pnid, messages=[text_message("m%d" % i)]) for i in range(70)]
        self.assertEqual(post_webhook(url, meta_json(envelope(changes)), secret=acct.secret)[0], 200)
        self.assertEqual(c.subscribe(acct.pnid)["pending"], 70)
        first = c.wait_events(64)
        self.assert_no_event(c, 0.5)
        c.ack(acct.pnid, first[9]["seq"])
        rest = c.wait_events(6)
        self.assert_no_event(c)
        texts = [values_of(acct.open(e))[0]["messages"][0]["text"]["body"] for e in first + rest]
        self.assertEqual(texts, ["m%d" % i for i in range(70)])

    # ---- the protocol ---------------------------------------------------

    def test_protocol_errors(self):
        rx = self.start()
        acct = Account()
        # wrong version: ERR version, then closed
        c = self.client(rx, hello=False)
        c.send("HELLO", {"proto": 2, "client": "future"})
        lines = c.expect_closed()
        self.assertEqual([(v, p["code"]) for v, p in lines], [("ERR", "version")])
        # a request before HELLO
        c = self.client(rx, hello=False)
        c.send("STATUS")
        self.assertEqual([(v, p["code"]) for v, p in c.expect_closed()], [("ERR", "hello")])
        # syntax: lower-case verb, bad JSON, CRLF
        for raw in ("status\n", "STATUS {not json}\n", "STATUS\r\n", "STATUS []\n"):
            c = self.client(rx)
            c.send_raw(raw)
            self.assertEqual([(v, p["code"]) for v, p in c.expect_closed()], [("ERR", "syntax")], raw)
        # unknown verb: ERR unknown, the connection stays usable
        c = self.client(rx)
        with self.assertRaises(RxError) as err:
            c.request("FROBNICATE")
        self.assertEqual(err.exception.code, "unknown")
        self.assertIn("version", c.status())
        # invalid and not-registered
        with self.assertRaises(RxError) as err:
            c.register({k: v for k, v in acct.registration().items() if k != "app_secret"})
        self.assertEqual(err.exception.code, "invalid")
        with self.assertRaises(RxError) as err:
            c.register(acct.registration(public_key="c2hvcnQ="))
        self.assertEqual(err.exception.code, "invalid")
        with self.assertRaises(RxError) as err:
            c.subscribe(acct.pnid)
        self.assertEqual(err.exception.code, "not-registered")
        # busy: a second subscriber of the same account
        c.register(acct.registration())
        c.subscribe(acct.pnid)
        other = self.client(rx)
        with self.assertRaises(RxError) as err:
            other.subscribe(acct.pnid)
        self.assertEqual(err.exception.code, "busy")
        with self.assertRaises(RxError) as err:
            other.ack(acct.pnid, 1)
        self.assertEqual(err.exception.code, "busy")
        # once the first goes, the second may subscribe
        c.close()
        wait_until(lambda: self._subscribe_ok(other, acct.pnid), what="subscription freed")
        # pipelined requests are answered in order
        pipelined = self.client(rx)
        pipelined.send_raw("STATUS\nFROBNICATE\nSTATUS\n")
        self.assertIn("pid", pipelined.answer())
        with self.assertRaises(RxError):
            pipelined.answer()
        self.assertIn("pid", pipelined.answer())
        self.assertTrue(rx.alive())

    def test_line_too_long(self):
        rx = self.start()
        c = self.client(rx)
        try:
            c.send_raw(b"STATUS " + b"x" * (8 * 1024 * 1024 + 16))
        except (BrokenPipeError, ConnectionResetError):
            pass
        lines = c.expect_closed()
        self.assertEqual([(v, p["code"]) for v, p in lines], [("ERR", "syntax")])
        self.assertIn("pid", rx.status())

    def test_slow_client_does_not_block(self):
        rx = self.start()
        acct = Account()
        slow = self.client(rx)
        url = slow.register(acct.registration())["url"]
        slow.subscribe(acct.pnid)
        # the slow client stops reading; about 10 MB of events queue up for it
        texts = ["%02d" % i + "s" * 500000 for i in range(20)]
        for text in texts:
            t0 = time.monotonic()
            self.assertEqual(post_webhook(url, webhook_body(text=text), secret=acct.secret)[0], 200)
            self.assertLess(time.monotonic() - t0, 2 * TIMEOUT_FACTOR)
        t0 = time.monotonic()
        st = rx.status()
        self.assertLess(time.monotonic() - t0, 1 * TIMEOUT_FACTOR)
        self.assertEqual(self.account_status(rx, acct.pnid)["pending"], 20)
        # once it reads, everything arrives, in order
        events = slow.wait_events(20, timeout=20 * TIMEOUT_FACTOR)
        got = [values_of(acct.open(e))[0]["messages"][0]["text"]["body"][:2] for e in events]
        self.assertEqual(got, ["%02d" % i for i in range(20)])
        self.assertIn("pid", st)

    def _subscribe_ok(self, client, pnid):
        try:
            client.subscribe(pnid)
            return True
        except RxError as e:
            if e.code != "busy":
                raise
            return False

    def test_unregister(self):
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        self.assertEqual(post_webhook(url, webhook_body(), secret=acct.secret)[0], 200)
        c.next_event()
        self.assertEqual(c.unregister(acct.pnid), {"account": acct.pnid})
        self.assertEqual(rx.status()["listeners"], [])
        with self.assertRaises((ConnectionError, OSError)):
            post_webhook(url, webhook_body(), secret=acct.secret, timeout=2)
        with self.assertRaises(RxError) as err:
            c.subscribe(acct.pnid)
        self.assertEqual(err.exception.code, "not-registered")
        c.register(acct.registration())
        self.assertEqual(c.subscribe(acct.pnid)["pending"], 0)

    def test_peer_of_another_user_refused(self):
        if os.getuid() != 0:
            self.skipTest("needs root to connect as another user")
        rx = self.start()
        # open the filesystem guards for this test only, to reach the uid check
        os.chmod(self.tmp, 0o711)
        os.chmod(self.dir, 0o711)
        os.chmod(rx.sock_path, 0o666)
        script = ("import os,socket,sys\n"
                  "os.setgid(65534); os.setuid(65534)\n"
                  "s=socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
                  "try: s.sendall(b'HELLO {\"proto\":1}\\nSTATUS\\n')\n"
                  "except (BrokenPipeError, ConnectionResetError): pass\n"
                  "d=b''\n"
                  "while True:\n"
                  "  try: c=s.recv(65536)\n"
                  "  except ConnectionResetError: break\n"
                  "  if not c: break\n"
                  "  d+=c\n"
                  "sys.stdout.write(d.decode())\n")
        out = subprocess.run([sys.executable, "-c", script, rx.sock_path], capture_output=True,
                             timeout=DEFAULT_TIMEOUT)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.decode().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("ERR "), lines)
        self.assertEqual(json.loads(lines[0][4:])["code"], "peer")

    # ---- the command line ---------------------------------------------

    def test_cli_daemon_log_is_rotated(self):
        """Past 1 MiB the daemon's log moves to receiver.log.1 (one kept):
        it never takes more than about 2 MiB."""
        os.makedirs(self.dir, mode=0o700)
        log = os.path.join(self.dir, "receiver.log")
        old_lines = b"an old line\n" * (1024 * 1024 // 12 + 1)
        with open(log, "wb") as f:
            f.write(old_lines)
        code, out, err = run_cli(BINARY, self.dir, "--daemon")
        self.assertEqual(code, 0, err)
        with Client(os.path.join(self.dir, "rx.sock")) as c:
            pid = c.status()["pid"]
        self.addCleanup(kill_quietly, pid)
        code, out, err = run_cli(BINARY, self.dir, "--stop")
        self.assertEqual(code, 0, err)
        with open(log + ".1", "rb") as f:
            self.assertTrue(f.read().startswith(old_lines))
        with open(log, "rb") as f:
            new = f.read()
        self.assertNotIn(b"an old line", new)
        self.assertIn(b" wabiz-receiver[%d]: " % pid, new)  # what it logged since
        for path in (log, log + ".1"):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_cli_daemon_status_stop(self):
        code, out, err = run_cli(BINARY, self.dir, "--daemon", "--header-timeout", "5")
        self.assertEqual(code, 0, err)
        # ready when --daemon returns: the socket answers at once
        with Client(os.path.join(self.dir, "rx.sock")) as c:
            pid = c.status()["pid"]
        self.addCleanup(kill_quietly, pid)  # if an assertion below fails
        self.assertIn("started (pid %d)" % pid, out)
        code, out, err = run_cli(BINARY, self.dir, "--status")
        self.assertEqual(code, 0, err)
        st = json.loads(out)
        self.assertEqual(st["pid"], pid)
        self.assertEqual(st["version"], "0.1.0")
        # a second receiver on the same directory refuses to start
        code, out, err = run_cli(BINARY, self.dir)
        self.assertEqual(code, 1)
        self.assertIn("already running (pid %d)" % pid, err)
        code, out, err = run_cli(BINARY, self.dir, "--daemon")
        self.assertEqual(code, 1)
        self.assertIn("already running (pid %d)" % pid, err)
        log = os.path.join(self.dir, "receiver.log")
        self.assertEqual(stat.S_IMODE(os.stat(log).st_mode), 0o600)
        code, out, err = run_cli(BINARY, self.dir, "--stop")
        self.assertEqual(code, 0, err)
        self.assertIn("stopped (pid %d)" % pid, out)
        self.assertRaises(ProcessLookupError, os.kill, pid, 0)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "rx.sock")))
        code, out, err = run_cli(BINARY, self.dir, "--status")
        self.assertEqual(code, 1)
        self.assertIn("not running", err)
        code, out, err = run_cli(BINARY, self.dir, "--stop")
        self.assertEqual(code, 1)
        self.assertIn("not running", err)
        with open(log) as f:
            text = f.read()
        self.assertIn("ready", text)
        self.assertIn("stopped", text)

    def test_cli_daemon_reports_failure(self):
        os.makedirs(self.dir, mode=0o700)
        with open(os.path.join(self.dir, "rx.sock"), "w") as f:
            f.write("not a socket")
        code, out, err = run_cli(BINARY, self.dir, "--daemon")
        self.assertEqual(code, 1)
        self.assertIn("is not a socket", err)

    def test_stale_socket_removed(self):
        rx = self.start()
        rx.kill9()
        self.assertTrue(os.path.exists(rx.sock_path))
        rx2 = self.start()
        self.assertIn("pid", rx2.status())

    def test_cli_errors(self):
        long_dir = os.path.join(self.tmp, "d" * 120)
        code, out, err = run_cli(BINARY, long_dir)
        self.assertEqual(code, 2)
        self.assertIn("UNIX sockets allow at most", err)
        self.assertFalse(os.path.exists(long_dir))
        code, out, err = run_cli(BINARY, self.dir, "--max-connections", "0")
        self.assertEqual(code, 2)
        code, _, err = run_cli(BINARY, self.dir, "--bogus")
        self.assertEqual(code, 2)
        done = subprocess.run([BINARY, "--version"], capture_output=True, text=True)
        self.assertEqual((done.returncode, done.stdout), (0, "wabiz-receiver 0.1.0\n"))

    def test_keep_running_false_exits(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        c.register(acct.registration(keep_running=False))
        c.subscribe(acct.pnid)
        # a --status client coming and going is no messenger
        self.assertIn("pid", rx.status())
        time.sleep(0.2)
        self.assertTrue(rx.alive())
        c.close()
        self.assertEqual(rx.wait_exit(), 0)
        self.assertFalse(os.path.exists(rx.sock_path))

    def test_stop_request(self):
        rx = self.start()
        c = self.client(rx)
        self.assertEqual(c.request("STOP"), {})
        self.assertEqual(rx.wait_exit(), 0)

    # ---- connections --------------------------------------------------

    def test_connection_limit(self):
        """Full: the connection that has had the longest time to send its
        request makes room for the new one, which is served."""
        rx = self.start(max_connections=4, header_timeout=30, idle_timeout=60, rate_grace=60)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        idle = []
        for _ in range(4):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5 * TIMEOUT_FACTOR))
            wait_until(lambda: rx.status()["http"]["connections"] == len(idle),
                       what="the connection to be accepted")
        try:
            start = time.monotonic()
            self.assertEqual(post_webhook(url, webhook_body(text="after"), secret=acct.secret)[0], 200)
            self.assertLess(time.monotonic() - start, 2 * TIMEOUT_FACTOR)
            # the oldest was dropped, the others are still open
            idle[0].settimeout(5 * TIMEOUT_FACTOR)
            try:
                self.assertEqual(idle[0].recv(1), b"")
            except ConnectionResetError:
                pass
            for s in idle[1:]:
                s.settimeout(0.2)
                with self.assertRaises(socket.timeout):
                    s.recv(1)
        finally:
            for s in idle:
                s.close()
        http_status = rx.status()["http"]
        self.assertEqual(http_status["dropped_for_new"], 1)
        self.assertEqual(http_status["refused"], 0)
        c.poll(0.3)
        texts = [values_of(acct.open(e))[0]["messages"][0]["text"]["body"] for e in c.events]
        self.assertIn("after", texts)

    def _try_post_ok(self, url, acct):
        try:
            return post_webhook(url, webhook_body(text="after"), secret=acct.secret, timeout=2)[0] == 200
        except (ConnectionError, http.client.HTTPException, OSError):
            return False

    def test_header_timeout(self):
        rx = self.start(header_timeout=1)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        slow = socket.create_connection(("127.0.0.1", port), timeout=10 * TIMEOUT_FACTOR)
        try:
            start = time.monotonic()
            slow.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
            # a normal request meanwhile is answered promptly
            t0 = time.monotonic()
            self.assertEqual(post_webhook(url, webhook_body(text="prompt"), secret=acct.secret)[0], 200)
            self.assertLess(time.monotonic() - t0, 0.5 * TIMEOUT_FACTOR)
            try:
                data = slow.recv(65536)
            except ConnectionResetError:
                data = b""
            elapsed = time.monotonic() - start
            self.assertNotIn(b"200", data)
            self.assertGreater(elapsed, 0.8)
            self.assertLess(elapsed, 3.0 * TIMEOUT_FACTOR)
        finally:
            slow.close()
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "prompt")

    def test_idle_timeout(self):
        rx = self.start(header_timeout=30, idle_timeout=1)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * TIMEOUT_FACTOR)
        try:
            start = time.monotonic()
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            elapsed = time.monotonic() - start
            self.assertEqual(data, b"")
            self.assertGreater(elapsed, 0.8)
            self.assertLess(elapsed, 3.0 * TIMEOUT_FACTOR)
        finally:
            s.close()
        # a request that keeps moving is not cut by the idle deadline
        self.assertEqual(post_webhook(url, webhook_body(), secret=acct.secret)[0], 200)
        c.next_event()

    def test_connections_are_released(self):
        """Every way a connection can end gives its slot back."""
        rx = self.start(max_connections=4, max_body=65536, header_timeout=1)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        base = url.rsplit("/", 1)[0]
        for i in range(6):
            self.assertEqual(post_webhook(url, webhook_body(text="ok %d" % i), secret=acct.secret)[0], 200)
            self.assertEqual(post_webhook(url, webhook_body(), secret="wrong")[0], 401)
            self.assertEqual(post_webhook(base + "/nope", webhook_body(), secret=acct.secret)[0], 404)
            self.assertEqual(verify_get(url, token=acct.verify_token)[0], 200)
            self.assertEqual(post_webhook(url, b"{", secret=acct.secret)[0], 400)
            head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
            self.assertEqual(status_line(raw_http(port, head, read_timeout=5 * TIMEOUT_FACTOR)),
                             "HTTP/1.1 413 Payload Too Large")
            # a client that connects and leaves, and one that sends garbage
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            raw_http(port, b"\x16\x03\x01garbage\r\n\r\n", read_timeout=5 * TIMEOUT_FACTOR)
        # one cut off by the header deadline
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * TIMEOUT_FACTOR)
        s.sendall(b"GET / HTTP/1.1\r\n")
        try:
            self.assertEqual(s.recv(100), b"")
        except ConnectionResetError:
            pass
        s.close()
        self.assertEqual(len(c.wait_events(6)), 6)
        # all four slots are free again: four connections open at once all work
        wait_until(lambda: self._concurrent_posts(port, acct, 4) == [200] * 4,
                   what="four concurrent connections to be served")
        c.wait_events(4)

    def _concurrent_posts(self, port, acct, n):
        socks = []
        statuses = []
        try:
            for _ in range(n):
                socks.append(socket.create_connection(("127.0.0.1", port), timeout=5 * TIMEOUT_FACTOR))
            time.sleep(0.1)
            for s in socks:
                body = webhook_body(text="together")
                request = (b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                           b"X-Hub-Signature-256: %s\r\n\r\n" % (len(body), sign(body, acct.secret).encode()))
                try:
                    s.sendall(request + body)
                except OSError:
                    pass
            for s in socks:
                data = b""
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
                statuses.append(int(status_line(data).split()[1]) if data else 0)
        finally:
            for s in socks:
                s.close()
        return statuses

    def test_body_timeout(self):
        rx = self.start(body_timeout=1)
        acct = Account()
        c, url = self.register(rx, acct)
        port = int(url.split(":")[2].split("/")[0])
        body = webhook_body()
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * TIMEOUT_FACTOR)
        try:
            start = time.monotonic()
            s.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                      b"X-Hub-Signature-256: %s\r\n\r\n" % (len(body), sign(body, acct.secret).encode())
                      + body[:10])
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            elapsed = time.monotonic() - start
            self.assertNotIn(b"200", data)
            self.assertGreater(elapsed, 0.8)
            self.assertLess(elapsed, 3.0 * TIMEOUT_FACTOR)
        finally:
            s.close()
        self.assert_no_event(c)

    # ---- binds and TLS ------------------------------------------------

    def test_public_bind_needs_tls(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        with self.assertRaises(RxError) as err:
            c.register(acct.registration(bind="0.0.0.0"))
        self.assertEqual(err.exception.code, "tls")
        with self.assertRaises(RxError) as err:
            c.register(acct.registration(bind="::"))
        self.assertEqual(err.exception.code, "tls")
        self.assertEqual(rx.status()["listeners"], [])
        # explicitly allowed
        answer = c.register(acct.registration(bind="0.0.0.0", allow_public_http=True))
        self.assertTrue(answer["url"].startswith("http://0.0.0.0:"))
        self.assertEqual(post_webhook("http://127.0.0.1:%d/webhook" % answer["port"], webhook_body(),
                                      secret=acct.secret)[0], 200)
        # bad bind addresses
        with self.assertRaises(RxError) as err:
            c.register(acct.registration(bind="localhost"))
        self.assertEqual(err.exception.code, "invalid")

    def _make_cert(self):
        return make_cert(self.tmp)

    def test_tls_listener(self):
        cert, key = self._make_cert()
        # a generous header deadline: under AddressSanitizer with full
        # unwinding the first handshake alone takes seconds
        rx = self.start(header_timeout=int(30 * TIMEOUT_FACTOR))
        acct = Account()
        c = self.client(rx)
        answer = c.register(acct.registration(tls_cert=cert, tls_key=key))
        url = answer["url"]
        self.assertTrue(url.startswith("https://127.0.0.1:"), url)
        c.subscribe(acct.pnid)
        self.assertEqual(rx.status()["listeners"][0]["tls"], True)
        context = tls_client_context(cert)
        status, _, _ = post_webhook(url, webhook_body(text="over tls"), secret=acct.secret, context=context)
        self.assertEqual(status, 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "over tls")
        status, body, _ = verify_get(url, token=acct.verify_token, context=context)
        self.assertEqual((status, body), (200, b"1158201444"))
        # plain HTTP on the TLS port gets no answer
        with self.assertRaises((ConnectionError, http.client.HTTPException, OSError)):
            post_webhook(url.replace("https:", "http:"), webhook_body(), secret=acct.secret, timeout=3)
        # a public bind is fine with TLS
        other = Account(PNID_B, secret="b")
        answer = c.register(other.registration(bind="0.0.0.0", tls_cert=cert, tls_key=key))
        self.assertTrue(answer["url"].startswith("https://0.0.0.0:"))
        # the same port with other TLS settings is refused clearly
        third = Account("777", secret="c")
        with self.assertRaises(RxError) as err:
            c.register(third.registration(port=answer["port"], bind="0.0.0.0", allow_public_http=True))
        self.assertEqual(err.exception.code, "bind")
        self.assertIn("TLS", err.exception.message)
        # an unreadable certificate
        with self.assertRaises(RxError) as err:
            c.register(third.registration(tls_cert=cert + ".missing", tls_key=key))
        self.assertEqual(err.exception.code, "tls")
        self.assert_no_event(c)

    def test_tls_handshake_deadline(self):
        """A client that never starts the TLS handshake is cut at the header
        deadline (no TLS work happens, so the timing holds under sanitizers)."""
        cert, key = self._make_cert()
        header_timeout = int(2 * TIMEOUT_FACTOR)
        rx = self.start(header_timeout=header_timeout)
        acct = Account()
        c = self.client(rx)
        port = c.register(acct.registration(tls_cert=cert, tls_key=key))["port"]
        s = socket.create_connection(("127.0.0.1", port), timeout=10 * TIMEOUT_FACTOR)
        try:
            start = time.monotonic()
            try:
                self.assertEqual(s.recv(100), b"")
            except ConnectionResetError:
                pass
            self.assertGreater(time.monotonic() - start, header_timeout - 0.2)
            self.assertLess(time.monotonic() - start, header_timeout + 2 * TIMEOUT_FACTOR)
        finally:
            s.close()

    # ---- files on disk ------------------------------------------------

    def test_file_modes(self):
        os.makedirs(self.dir, mode=0o755)
        os.chmod(self.dir, 0o755)
        rx = self.start()
        acct = Account()
        c, url = self.register(rx, acct)
        self.assertEqual(post_webhook(url, webhook_body(), secret=acct.secret)[0], 200)
        c.next_event()
        self.assertEqual(stat.S_IMODE(os.stat(self.dir).st_mode), 0o700)
        self.assertTrue(stat.S_ISSOCK(os.stat(rx.sock_path).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(rx.sock_path).st_mode), 0o600)
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            if name.startswith("journal"):
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, name)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "journal.db")))
        # the log never holds the secret, the body or the numbers
        log = rx.log()
        for secret in (acct.secret, acct.verify_token, "4917012345678", "wamid."):
            self.assertNotIn(secret, log)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:], verbosity=2)

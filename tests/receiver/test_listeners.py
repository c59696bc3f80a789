"""test_listeners.py: wabiz-receiver's webhook listeners that cannot be opened
and the UNIX socket listener.

A port another process holds first (here: the test itself, standing in for
another local user) is never left unsaid and never swapped for another port:
REGISTER is accepted with "listening": false and "port_taken": true, STATUS
says so, the receiver tries the port again every --listen-retry seconds and
sends LISTEN to the subscriber when it listens. The same after a restart with
saved registrations. "bind": "unix:PATH" serves webhooks on a UNIX socket of
mode 0660 and the account's group, for a reverse proxy.

Must not: pick a free port and bind it later (ports come from the receiver's
port 0, or from a socket the test holds), or wait by sleeping where polling
against a deadline works.

Usage: WABIZ_RECEIVER=path/to/wabiz-receiver python3 test_listeners.py [Class.test_name ...]
"""

import grp
import os
import socket
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    DEFAULT_TIMEOUT, Account, Receiver, ReceiverCase, RxError, post_webhook, sign, socket_group, squat,
    unix_request, values_of, verify_get, wait_until, webhook_body)

BINARY = ReceiverCase.binary
RETRY = "1"


class ListenerTest(ReceiverCase):
    maxDiff = None

    def start(self, **opts):
        opts.setdefault("listen_retry", RETRY)
        rx = Receiver.start(BINARY, self.dir, **opts)
        self.receivers.append(rx)
        return rx

    def client(self, rx):
        c = rx.client()
        self.clients.append(c)
        return c

    def squat(self, port=0):
        sock = squat(port)
        self.addCleanup(sock.close)
        return sock

    def account_status(self, rx, pnid):
        return [a for a in rx.status()["accounts"] if a["account"] == pnid][0]

    def assert_delivers(self, client, acct, url, text):
        status, _, _ = post_webhook(url, webhook_body(acct.pnid, acct.waba_id, text), secret=acct.secret)
        self.assertEqual(status, 200)
        self.assertEqual(values_of(acct.open(client.next_event()))[0]["messages"][0]["text"]["body"], text)

    # ---- a port someone else holds --------------------------------------

    def test_squatted_port_at_register_is_told_and_retried(self):
        squatter = self.squat()
        port = squatter.getsockname()[1]
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        answer = c.register(acct.registration(port=port))
        # accepted, not listening, and on the port asked for: never another
        self.assertFalse(answer["listening"])
        self.assertTrue(answer["port_taken"])
        self.assertIn("127.0.0.1 port %d" % port, answer["listen_error"])
        self.assertEqual(answer["url"], "http://127.0.0.1:%d/webhook" % port)
        self.assertEqual(answer["port"], port)
        sub = c.subscribe(acct.pnid)
        self.assertFalse(sub["listening"])
        st = self.account_status(rx, acct.pnid)
        self.assertIsNone(st["url"])
        self.assertFalse(st["listening"])
        self.assertTrue(st["port_taken"])
        self.assertEqual(rx.status()["listeners"], [])
        # still taken after a few tries: no LISTEN "listening", no other port
        c.poll(2.5)
        self.assertEqual([l for l in c.listens if l["listening"]], [])
        # the squatter goes: the next try listens and the subscriber is told
        squatter.close()
        told = c.wait_listen(True, timeout=DEFAULT_TIMEOUT * 2)
        self.assertEqual(told, {"account": acct.pnid, "url": "http://127.0.0.1:%d/webhook" % port,
                                "listening": True})
        self.assertTrue(self.account_status(rx, acct.pnid)["listening"])
        self.assert_delivers(c, acct, told["url"], "after the squatter left")

    def test_squatted_port_after_restart_is_told(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        port = c.register(acct.registration(port=0))["port"]
        # the port asked for explicitly from now on (as the account option would)
        self.assertEqual(c.register(acct.registration(port=port))["port"], port)
        c.close()
        self.assertEqual(rx.stop(), 0)
        squatter = self.squat(port)
        rx2 = self.start()
        self.assertTrue(rx2.alive())
        st = self.account_status(rx2, acct.pnid)
        self.assertFalse(st["listening"])
        self.assertTrue(st["port_taken"])
        self.assertIn("port %d" % port, st["listen_error"])
        self.assertIn("not listening", rx2.log())
        # the plugin connecting again learns it from REGISTER and SUBSCRIBE
        c2 = self.client(rx2)
        answer = c2.register(acct.registration(port=port))
        self.assertFalse(answer["listening"])
        self.assertTrue(answer["port_taken"])
        self.assertFalse(c2.subscribe(acct.pnid)["listening"])
        squatter.close()
        told = c2.wait_listen(True, timeout=DEFAULT_TIMEOUT * 2)
        self.assertEqual(told["url"], "http://127.0.0.1:%d/webhook" % port)
        self.assert_delivers(c2, acct, told["url"], "listening again")

    def test_listener_lost_to_a_squatter_between_restarts_then_regained_without_client(self):
        """Saved registrations alone: the receiver keeps running without the
        listener, tries again, and listens once the port is free."""
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        port = c.register(acct.registration(port=0))["port"]
        c.register(acct.registration(port=port))
        c.close()
        rx.stop()
        squatter = self.squat(port)
        rx2 = self.start()
        self.assertFalse(self.account_status(rx2, acct.pnid)["listening"])
        squatter.close()
        wait_until(lambda: self.account_status(rx2, acct.pnid)["listening"], DEFAULT_TIMEOUT * 2,
                   interval=0.2, what="the listener to be opened again")
        url = self.account_status(rx2, acct.pnid)["url"]
        self.assertEqual(url, "http://127.0.0.1:%d/webhook" % port)
        self.assertEqual(post_webhook(url, webhook_body(text="kept"), secret=acct.secret)[0], 200)

    def test_wrong_settings_are_still_refused(self):
        rx = self.start()
        a, b = Account(), Account(pnid="106540352242933")
        c = self.client(rx)
        port = c.register(a.registration(port=0))["port"]
        cert = os.path.join(self.tmp, "missing.pem")
        with self.assertRaises(RxError) as cm:
            c.register(b.registration(port=port, tls_cert=cert, tls_key=cert))
        self.assertEqual(cm.exception.code, "bind")
        self.assertIn("same TLS certificate", cm.exception.message)
        with self.assertRaises(RxError) as cm:
            c.register(b.registration(port=0, tls_cert=cert, tls_key=cert))
        self.assertEqual(cm.exception.code, "tls")
        self.assertNotIn(b.pnid, [x["account"] for x in rx.status()["accounts"]])

    # ---- the UNIX socket listener ---------------------------------------

    def socket_dir(self, mode=0o750):
        path = os.path.join(self.tmp, "run")
        os.mkdir(path)
        os.chmod(path, mode)
        return path

    def test_unix_socket_delivery_mode_and_group(self):
        group = socket_group()
        sock_path = os.path.join(self.socket_dir(), "hook.sock")
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        answer = c.register(acct.registration(bind="unix:" + sock_path, socket_group=group))
        self.assertTrue(answer["listening"])
        self.assertEqual(answer["url"], "http://unix:%s:/webhook" % sock_path)
        c.subscribe(acct.pnid)
        st = os.lstat(sock_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam(group).gr_gid)
        self.assertEqual(st.st_uid, os.getuid())
        body = webhook_body(acct.pnid, acct.waba_id, "through the proxy's socket")
        status, _ = unix_request(sock_path, "POST", "/webhook", body,
                                 {"Content-Type": "application/json",
                                  "X-Hub-Signature-256": sign(body, acct.secret)})
        self.assertEqual(status, 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"],
                         "through the proxy's socket")
        # the handshake and a wrong signature too
        status, data = unix_request(sock_path, "GET", "/webhook?hub.mode=subscribe&hub.challenge=77"
                                    "&hub.verify_token=" + acct.verify_token)
        self.assertEqual((status, data), (200, b"77"))
        status, _ = unix_request(sock_path, "POST", "/webhook", body,
                                 {"X-Hub-Signature-256": sign(body, "wrong")})
        self.assertEqual(status, 401)
        listeners = rx.status()["listeners"]
        self.assertEqual([(x["bind"], x["paths"]) for x in listeners], [("unix:" + sock_path, ["/webhook"])])
        # the socket goes with the receiver, and comes back at the next start
        c.close()
        self.assertEqual(rx.stop(), 0)
        self.assertFalse(os.path.lexists(sock_path))
        rx2 = self.start()
        self.assertTrue(self.account_status(rx2, acct.pnid)["listening"])
        self.assertEqual(stat.S_IMODE(os.lstat(sock_path).st_mode), 0o660)

    def test_unix_socket_shared_by_accounts_and_switched_to(self):
        """An account moving from a TCP port to a socket another account already
        listens on shares it (the old port plays no part); a different group is refused."""
        sock_path = os.path.join(self.socket_dir(), "hook.sock")
        bind = "unix:" + sock_path
        rx = self.start()
        a, b = Account(), Account(pnid="106540352242933")
        c = self.client(rx)
        self.assertTrue(c.register(a.registration(bind=bind, socket_group=socket_group()))["listening"])
        self.assertNotEqual(c.register(b.registration(port=0))["port"], 0)
        answer = c.register(b.registration(bind=bind, socket_group=socket_group()))
        self.assertTrue(answer["listening"], answer)
        self.assertEqual(answer["url"], "http://unix:%s:/webhook" % sock_path)
        self.assertEqual([x["bind"] for x in rx.status()["listeners"]], [bind])
        with self.assertRaises(RxError) as cm:
            c.register(b.registration(bind=bind, socket_group="0"))
        self.assertIn("must give the same group", cm.exception.message)

    def test_unix_socket_without_group_is_private(self):
        sock_path = os.path.join(self.socket_dir(0o700), "hook.sock")
        rx = self.start()
        c = self.client(rx)
        self.assertTrue(c.register(Account().registration(bind="unix:" + sock_path))["listening"])
        self.assertEqual(stat.S_IMODE(os.lstat(sock_path).st_mode), 0o600)

    def test_unix_socket_directory_others_can_write_is_refused(self):
        run = self.socket_dir(0o777)
        rx = self.start()
        c = self.client(rx)
        acct = Account()
        with self.assertRaises(RxError) as cm:
            c.register(acct.registration(bind="unix:" + os.path.join(run, "hook.sock"),
                                         socket_group=socket_group()))
        self.assertEqual(cm.exception.code, "bind")
        self.assertIn("writable by other users and has no sticky bit", cm.exception.message)
        self.assertFalse(os.path.lexists(os.path.join(run, "hook.sock")))
        # with the sticky bit (like /tmp) nobody else can replace it
        os.chmod(run, 0o1777)
        self.assertTrue(c.register(acct.registration(bind="unix:" + os.path.join(run, "hook.sock"),
                                                     socket_group=socket_group()))["listening"])

    def test_unix_socket_bad_settings_are_refused(self):
        run = self.socket_dir()
        rx = self.start()
        c = self.client(rx)
        acct = Account()
        cases = [
            ({"bind": "unix:relative/hook.sock"}, "absolute"),
            ({"bind": "unix:" + run + "/../x.sock"}, ". or .."),
            ({"bind": "unix:/" + "x" * 120}, "at most"),
            ({"bind": "unix:" + run + "/hook.sock", "socket_group": "no-such-group-wabiz"}, "does not exist"),
            ({"bind": "unix:" + run + "/hook.sock", "socket_group": "a b"}, "group name or number"),
        ]
        for extra, message in cases:
            with self.subTest(extra=extra):
                with self.assertRaises(RxError) as cm:
                    c.register(acct.registration(**extra))
                self.assertIn(cm.exception.code, ("invalid", "bind"))
                self.assertIn(message, cm.exception.message)
        # a file that is not a socket is left alone
        with open(os.path.join(run, "file"), "w") as f:
            f.write("keep")
        with self.assertRaises(RxError) as cm:
            c.register(acct.registration(bind="unix:" + os.path.join(run, "file")))
        self.assertIn("not a socket", cm.exception.message)
        with open(os.path.join(run, "file")) as f:
            self.assertEqual(f.read(), "keep")

    def test_unix_socket_held_by_another_process_is_told_and_retried(self):
        run = self.socket_dir()
        sock_path = os.path.join(run, "hook.sock")
        holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(sock_path)
        holder.listen(1)
        rx = self.start()
        c = self.client(rx)
        acct = Account()
        answer = c.register(acct.registration(bind="unix:" + sock_path))
        self.assertFalse(answer["listening"])
        self.assertTrue(answer["port_taken"])
        self.assertIn("another process already listens", answer["listen_error"])
        c.subscribe(acct.pnid)
        # the holder goes, leaving its socket file behind: stale, replaced
        holder.close()
        c.wait_listen(True, timeout=DEFAULT_TIMEOUT * 2)
        body = webhook_body(acct.pnid, acct.waba_id, "stale socket replaced")
        status, _ = unix_request(sock_path, "POST", "/webhook", body,
                                 {"X-Hub-Signature-256": sign(body, acct.secret)})
        self.assertEqual(status, 200)
        c.next_event()

    def test_verify_get_on_tcp_still_works(self):
        rx = self.start()
        acct = Account()
        c = self.client(rx)
        url = c.register(acct.registration(port=0))["url"]
        self.assertEqual(verify_get(url, token=acct.verify_token, challenge="5")[:2], (200, b"5"))


if __name__ == "__main__":
    unittest.main(verbosity=2)

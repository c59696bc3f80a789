"""test_connections.py: wabiz-receiver's HTTP side under pressure and over
time: slow clients from many addresses next to a real delivery, the limits
that keep memory bounded, the GET verification handshake's answer, and TLS
certificates renewed while the receiver runs.

Must not: pick a free port and bind it later, sleep for correctness where
polling against a deadline works, or assert tight timings without the
sanitizer factor (RXCTL_TIMEOUT_FACTOR / HOSTCTL_TIMEOUT_FACTOR).

Usage: WABIZ_RECEIVER=path/to/wabiz-receiver python3 test_connections.py [Class.test_name ...]
"""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    TIMEOUT_FACTOR, Account, Receiver, ReceiverCase, verify_get, wait_until)

BINARY = ReceiverCase.binary


class ConnectionsTest(ReceiverCase):
    maxDiff = None

    def start(self, **opts):
        rx = Receiver.start(BINARY, self.dir, **opts)
        self.receivers.append(rx)
        return rx

    def register(self, rx, account, **reg):
        """A client with @account registered and subscribed; (client, answer)."""
        c = rx.client()
        self.clients.append(c)
        answer = c.register(account.registration(**reg))
        c.subscribe(account.pnid)
        return c, answer

    # ---- the GET verification handshake ---------------------------------

    def test_challenge_only_plain_tokens_echoed(self):
        rx = self.start()
        acct = Account()
        _, answer = self.register(rx, acct)
        url = answer["url"]
        plain = ["1158201444", "abc-XYZ_09.", "x" * 128]
        for challenge in plain:
            status, body, headers = verify_get(url, challenge=challenge, token=acct.verify_token)
            self.assertEqual((status, body), (200, challenge.encode()), challenge)
            self.assertEqual(headers.get("content-type"), "text/plain", challenge)
            self.assertEqual(headers.get("x-content-type-options"), "nosniff", challenge)
        for challenge in ("<script>alert(1)</script>", "x" * 129, "a b", "a/b", "a+b", "ä",
                          "1158201444\r\nX-Evil: 1"):
            status, body, headers = verify_get(url, challenge=challenge, token=acct.verify_token)
            self.assertEqual(status, 400, challenge)
            self.assertNotIn(challenge.encode("utf-8"), body, challenge)
            self.assertNotIn(b"<", body)
            self.assertEqual(headers.get("x-content-type-options"), "nosniff", challenge)
        # a wrong token learns nothing about the challenge's form: 403 either way
        for challenge in ("1158201444", "<script>"):
            self.assertEqual(verify_get(url, challenge=challenge, token="wrong")[0], 403)

    # ---- TLS certificates renewed while running --------------------------

    def _make_cert(self, name):
        openssl = shutil.which("openssl")
        if openssl is None:
            self.fail("the openssl command is needed for the TLS test (apt-get install openssl)")
        cert = os.path.join(self.tmp, name + "-cert.pem")
        key = os.path.join(self.tmp, name + "-key.pem")
        done = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                               "-out", cert, "-days", "2", "-subj", "/CN=" + name,
                               "-addext", "subjectAltName=IP:127.0.0.1"],
                              capture_output=True, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return cert, key

    @staticmethod
    def _der(cert):
        with open(cert) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    @staticmethod
    def _install(src, dst):
        """Replaces @dst with a copy of @src the way certbot and most tools
        do it: a new file renamed over the old one."""
        tmp = dst + ".new"
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)

    def _served_cert(self, port):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with socket.create_connection(("127.0.0.1", port), timeout=30 * TIMEOUT_FACTOR) as s:
            with context.wrap_socket(s) as tls:
                return tls.getpeercert(binary_form=True)

    def _tls_receiver(self):
        a = self._make_cert("cert-a")
        b = self._make_cert("cert-b")
        live_cert = os.path.join(self.tmp, "live-cert.pem")
        live_key = os.path.join(self.tmp, "live-key.pem")
        self._install(a[0], live_cert)
        self._install(a[1], live_key)
        # handshakes under AddressSanitizer take seconds
        rx = self.start(header_timeout=int(30 * TIMEOUT_FACTOR))
        acct = Account()
        _, answer = self.register(rx, acct, tls_cert=live_cert, tls_key=live_key)
        port = answer["port"]
        self.assertEqual(self._served_cert(port), self._der(a[0]))
        return rx, port, a, b, (live_cert, live_key)

    def test_tls_reload_on_sighup(self):
        rx, port, a, b, live = self._tls_receiver()
        self._install(b[0], live[0])
        self._install(b[1], live[1])
        rx.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: self._served_cert(port) == self._der(b[0]), 10 * TIMEOUT_FACTOR,
                   interval=0.1, what="certificate B after SIGHUP")
        self.assertTrue(rx.alive())
        # a broken file keeps the certificate in use, and says so
        with open(live[0], "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
        rx.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "cannot reload the TLS certificate" in rx.log(), 10 * TIMEOUT_FACTOR,
                   what="the failed reload to be logged")
        self.assertEqual(self._served_cert(port), self._der(b[0]))
        self.assertTrue(rx.alive())

    def test_tls_reload_when_files_change(self):
        rx, port, a, b, live = self._tls_receiver()
        self._install(b[1], live[1])
        self._install(b[0], live[0])
        # no signal: the next connection sees the renewed files
        self.assertEqual(self._served_cert(port), self._der(b[0]))
        # written in place (same inode) works too
        shutil.copyfile(a[1], live[1])
        shutil.copyfile(a[0], live[0])
        self.assertEqual(self._served_cert(port), self._der(a[0]))
        # a broken new file keeps the old certificate, logged once
        with open(live[1], "w") as f:
            f.write("garbage\n")
        self.assertEqual(self._served_cert(port), self._der(a[0]))
        self.assertEqual(self._served_cert(port), self._der(a[0]))
        self.assertEqual(rx.log().count("cannot reload the TLS certificate"), 1, rx.log())
        # repaired: used again
        self._install(b[1], live[1])
        self._install(b[0], live[0])
        self.assertEqual(self._served_cert(port), self._der(b[0]))


if __name__ == "__main__":
    unittest.main()

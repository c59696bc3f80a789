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
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    TIMEOUT_FACTOR, Account, Receiver, ReceiverCase, post_webhook, run_cli, sign, values_of,
    verify_get, wait_until, webhook_body)

BINARY = ReceiverCase.binary
SANITIZED = os.environ.get("WABIZ_SANITIZED") == "1"  # meson test --setup asan
WRAPPED = bool(os.environ.get("RXCTL_WRAPPER"))       # e.g. valgrind: its own memory
KIB = 1024
MIB = 1024 * 1024


def slow_head(length):
    """A POST head announcing ``length`` body bytes (never sent in full)."""
    return (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"X-Hub-Signature-256: sha256=" + b"0" * 64 + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


def connect_from(source, port, timeout=5.0):
    """A connection to the receiver from the loopback address ``source``."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((source, 0))
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def closed_within(sock, timeout):
    """True when the receiver closes ``sock`` within ``timeout`` seconds
    (whatever it answers first is read and dropped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return False
        try:
            if sock.recv(65536) == b"":
                return True
        except OSError:
            return True


def vm_hwm(pid):
    """The process's peak resident set (VmHWM) in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM for pid %d" % pid)


class Dribblers:
    """Slow clients: ``per_address`` connections from each of ``addresses``,
    each sending a POST head that announces ``length`` bytes, then (every
    other connection) a burst of ``burst`` body bytes, then one byte every
    ``interval`` seconds. A connection the receiver closes (or refuses) is
    opened again after ``reconnect`` seconds. Runs in a thread until stop()."""

    def __init__(self, port, addresses, per_address, length, burst, interval=0.25, reconnect=0.5):
        self.port = port
        self.length = length
        self.burst = burst
        self.interval = interval
        self.reconnect = reconnect
        self.slots = [{"source": a, "n": i, "sock": None, "next": 0.0, "pending": b"", "drip": 0.0}
                      for a in addresses for i in range(per_address)]
        self.connects = 0
        self.closed = 0
        self.failure = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self.done.set()
        self.thread.join(30)
        for slot in self.slots:
            if slot["sock"] is not None:
                slot["sock"].close()
                slot["sock"] = None

    def _open(self, slot, now):
        s = connect_from(slot["source"], self.port)
        s.setblocking(False)
        slot["sock"] = s
        slot["pending"] = slow_head(self.length) + (b"x" * self.burst if slot["n"] % 2 == 0 else b"")
        slot["drip"] = now + self.interval
        self.connects += 1

    def _drop(self, slot, now):
        slot["sock"].close()
        slot["sock"] = None
        slot["next"] = now + self.reconnect
        self.closed += 1

    def _step(self, slot, now):
        s = slot["sock"]
        try:
            if s.recv(65536) == b"":
                self._drop(slot, now)
                return
        except BlockingIOError:
            pass
        except OSError:
            self._drop(slot, now)
            return
        try:
            if slot["pending"]:
                sent = s.send(slot["pending"])
                slot["pending"] = slot["pending"][sent:]
            elif now >= slot["drip"]:
                s.send(b"x")
                slot["drip"] = now + self.interval
        except BlockingIOError:
            pass
        except OSError:
            self._drop(slot, now)

    def _run(self):
        try:
            while not self.done.is_set():
                now = time.monotonic()
                for slot in self.slots:
                    if slot["sock"] is not None:
                        self._step(slot, now)
                    elif now >= slot["next"]:
                        try:
                            self._open(slot, now)
                        except OSError:
                            slot["next"] = now + self.reconnect
                self.done.wait(0.05)
        except Exception as e:  # reported by the test
            self.failure = e


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

    # ---- slow clients ---------------------------------------------------

    def test_slow_clients_do_not_lock_out_meta(self):
        """100 slow uploads from 10 addresses (127.0.0.2 to 127.0.0.11, which
        count as remote: only 127.0.0.1 and ::1 are exempt from the per-address
        cap) against 16 slots: every real delivery from 127.0.0.1 still gets
        its 200 within 5 s, and the bodies held never pass --max-body-memory."""
        limits = dict(max_connections=16, max_per_address=4, min_rate=2048, rate_grace=2,
                      max_body=256 * KIB, max_body_memory=1 * MIB)
        rx = self.start(**limits)
        acct = Account()
        c, answer = self.register(rx, acct)
        url, port = answer["url"], answer["port"]
        sources = ["127.0.0.%d" % n for n in range(2, 12)]
        with Dribblers(port, sources, 10, length=250 * KIB, burst=128 * KIB, reconnect=1.0) as slow:
            # the slow clients hold the slots
            wait_until(lambda: slow.connects >= 40 and rx.status()["http"]["connections"] >= 14,
                       30 * TIMEOUT_FACTOR, interval=0.2, what="the slow clients to fill the receiver")
            for i in range(5):
                start = time.monotonic()
                status, _, _ = post_webhook(url, webhook_body(text="real %d" % i), secret=acct.secret,
                                            timeout=5 * TIMEOUT_FACTOR)
                elapsed = time.monotonic() - start
                self.assertEqual(status, 200)
                self.assertLess(elapsed, 5 * TIMEOUT_FACTOR)
                time.sleep(0.3)  # pacing: deliveries spread over the attack
            self.assertIsNone(slow.failure)
            self.assertGreater(slow.connects, 100)
        texts = [values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"] for _ in range(5)]
        self.assertEqual(texts, ["real %d" % i for i in range(5)])
        http = rx.status()["http"]
        # a body is counted as libsoup reads it, in blocks of at most 64 KiB
        self.assertLessEqual(http["body_bytes_peak"], limits["max_body_memory"] + 64 * KIB, http)
        # each limit did its part: addresses over their cap refused, the
        # slowest and oldest dropped for newer ones and for memory
        self.assertGreater(http["refused_per_address"], 0, http)
        self.assertGreater(http["dropped_for_new"], 0, http)
        self.assertGreater(http["dropped_for_memory"], 0, http)

    def test_per_address_cap(self):
        rx = self.start(max_per_address=2, header_timeout=60, idle_timeout=60, rate_grace=60)
        acct = Account()
        _, answer = self.register(rx, acct)
        port = answer["port"]
        held = []
        try:
            for _ in range(2):
                held.append(connect_from("127.0.0.2", port))
                wait_until(lambda: rx.status()["http"]["connections"] == len(held),
                           what="the connection to be accepted")
            third = connect_from("127.0.0.2", port)
            held.append(third)
            self.assertTrue(closed_within(third, 5 * TIMEOUT_FACTOR), "a third connection from 127.0.0.2 was kept")
            # another address, and the exempt 127.0.0.1, are not affected
            for source in ("127.0.0.3", "127.0.0.3", "127.0.0.1", "127.0.0.1", "127.0.0.1"):
                held.append(connect_from(source, port))
            wait_until(lambda: rx.status()["http"]["connections"] == 7, what="seven connections")
            for s in held[:2] + held[3:]:
                self.assertFalse(closed_within(s, 0.1))
            self.assertEqual(rx.status()["http"]["refused_per_address"], 1)
            # a slot given back can be taken again
            held[0].close()
            wait_until(lambda: rx.status()["http"]["connections"] == 6, what="the slot to come back")
            again = connect_from("127.0.0.2", port)
            held.append(again)
            wait_until(lambda: rx.status()["http"]["connections"] == 7, what="the address to be served again")
            self.assertFalse(closed_within(again, 0.3))
        finally:
            for s in held:
                s.close()

    def test_min_rate(self):
        """A body trickling in below --min-rate is cut once --rate-grace has
        passed, long before the body and idle deadlines; a request sent at
        a fair rate for longer than the grace is served."""
        rx = self.start(min_rate=1000, rate_grace=1, body_timeout=60, idle_timeout=60,
                        header_timeout=60)
        acct = Account()
        c, answer = self.register(rx, acct)
        port = answer["port"]
        s = connect_from("127.0.0.1", port)
        try:
            start = time.monotonic()
            s.sendall(slow_head(100000) + b"x" * 10)
            cut = False
            while time.monotonic() - start < 20 * TIMEOUT_FACTOR:
                if closed_within(s, 0.2):
                    cut = True
                    break
                try:
                    s.sendall(b"x")
                except OSError:
                    cut = True
                    break
            elapsed = time.monotonic() - start
            self.assertTrue(cut, "the trickling upload was never cut")
            self.assertGreater(elapsed, 0.8)
            self.assertLess(elapsed, 10 * TIMEOUT_FACTOR)
        finally:
            s.close()
        self.assertEqual(rx.status()["http"]["dropped_too_slow"], 1)
        # 2 s for 20 KB at about 10 KB/s: above the rate, past the grace
        body = webhook_body(text="x" * 20000)
        s = connect_from("127.0.0.1", port)
        try:
            head = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n"
                    b"X-Hub-Signature-256: %s\r\n\r\n" % (len(body), sign(body, acct.secret).encode()))
            s.sendall(head)
            for i in range(0, len(body), 1000):
                s.sendall(body[i:i + 1000])
                time.sleep(0.1)
            s.settimeout(10 * TIMEOUT_FACTOR)
            data = b""
            while b"\r\n\r\n" not in data:  # the connection is kept alive
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
        finally:
            s.close()
        self.assertEqual(len(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"]), 20000)

    def test_body_memory_bounded(self):
        """64 uploads of 1 MiB each that then stall: without a bound the
        receiver would hold 64 MiB of unfinished bodies; it holds at most
        --max-body-memory (dropping the slowest holders), and a delivery is
        still served."""
        cap = 4 * MIB
        rx = self.start(max_connections=80, max_body_memory=cap, rate_grace=60, body_timeout=60,
                        idle_timeout=60)
        acct = Account()
        c, answer = self.register(rx, acct)
        url, port = answer["url"], answer["port"]
        before = vm_hwm(rx.proc.pid)
        socks = []
        try:
            for _ in range(64):
                s = connect_from("127.0.0.1", port)
                socks.append(s)
                try:
                    s.sendall(slow_head(2 * MIB) + b"x" * MIB)
                except OSError:
                    pass  # dropped while sending: that is the bound at work
            # until it dropped most (or, unbounded, held more than the bound)
            def settled():
                http = rx.status()["http"]
                return http["dropped_for_memory"] >= 50 or http["body_bytes_peak"] > cap + 64 * KIB
            wait_until(settled, 30 * TIMEOUT_FACTOR, interval=0.2, what="the uploads to be read")
            self.assertEqual(post_webhook(url, webhook_body(text="still"), secret=acct.secret)[0], 200)
            http = rx.status()["http"]
            self.assertLessEqual(http["body_bytes_peak"], cap + 64 * KIB, http)
            self.assertLessEqual(http["body_bytes"], cap, http)
            if not SANITIZED and not WRAPPED:
                grown = vm_hwm(rx.proc.pid) - before
                sys.stderr.write("VmHWM grew by %d KiB\n" % (grown // 1024))
                self.assertLess(grown, 24 * MIB, "VmHWM grew by %d bytes" % grown)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "still")

    def test_limit_options_checked(self):
        for args, what in ((["--max-per-address", "-1"], "--max-per-address"),
                           (["--min-rate", "-5"], "--min-rate"),
                           (["--rate-grace", "0"], "--rate-grace"),
                           (["--max-body", "1000", "--max-body-memory", "999"], "--max-body-memory")):
            code, _, err = run_cli(BINARY, self.dir, *args)
            self.assertEqual(code, 2, args)
            self.assertIn(what + " must be between", err)
        code, out, _ = run_cli(BINARY, self.dir, "--help")
        self.assertEqual(code, 0)
        for option in ("--max-per-address", "--min-rate", "--rate-grace", "--max-body-memory"):
            self.assertIn(option, out)

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

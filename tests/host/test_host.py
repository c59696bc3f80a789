"""Tests of wabiz-host itself, against libpurple's own IRC plugin (prpl-irc)
and a fake IRC server on a loopback port (fakeirc.py).

They check that the host reports what libpurple does (connection errors,
reconnects, conversation writes, requests, notifications, buddies) and that
its commands act like a Pidgin user.  Every wait has a deadline; nothing
sleeps for correctness.

Run one test:  WABIZ_HOST=build/tests/host/wabiz-host \\
    PURPLE_PLUGIN_DIR=$(pkg-config --variable=plugindir purple) \\
    python3 tests/host/test_host.py HostTest.test_boot
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fakeirc import FakeIrcServer  # noqa: E402
from hostctl import CommandError, Host, contains, has  # noqa: E402

HOST = os.environ.get("WABIZ_HOST")
PLUGIN_DIR = os.environ.get("PURPLE_PLUGIN_DIR")
# Where the build put prpl-hosttest (libhosttest.so): next to the host.
HOSTTEST_DIR = os.environ.get("HOSTTEST_PLUGIN_DIR") or (os.path.dirname(HOST) if HOST else None)
ACCOUNT = "tester@127.0.0.1"


def closed_port_socket():
    """A socket bound to a loopback port that does not listen: connecting to
    the port is refused, and no other process can take the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class HostTestCase(unittest.TestCase):
    def setUp(self):
        if not HOST:
            self.fail("WABIZ_HOST is not set")

    def server(self, **kwargs):
        srv = FakeIrcServer(**kwargs)
        self.addCleanup(srv.stop)
        return srv

    def start(self, port, account=ACCOUNT, reconnect_delay_ms=100, **kwargs):
        options = {"port": port}
        options.update(kwargs.pop("options", {}))
        host = Host()
        self.addCleanup(host.close)
        host.start(binary=HOST, plugin_dir=PLUGIN_DIR, protocol="prpl-irc", account=account,
                   options=options, reconnect_delay_ms=reconnect_delay_ms, **kwargs)
        return host

    def start_ht(self, options=None, **kwargs):
        """A host on prpl-hosttest (the test plugin built next to the host)."""
        host = Host()
        self.addCleanup(host.close)
        host.start(binary=HOST, plugin_dir=HOSTTEST_DIR, protocol="prpl-hosttest",
                   account="agent", options=options or {}, reconnect_delay_ms=50, **kwargs)
        return host

    def finish(self, host):
        """Quits the host and checks it exited cleanly, printed only JSON and
        caused no GLib criticals (a g_return_if_fail in libpurple)."""
        self.assertEqual(host.quit(), 0, host.stderr_text()[-4000:])
        self.assertEqual(host.invalid_lines(), [])
        self.assertNotIn("CRITICAL", host.stderr_text())


class HostTest(HostTestCase):
    def test_boot(self):
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        user_dir = tempfile.mkdtemp(prefix="wabiz-host-test-")
        self.addCleanup(shutil.rmtree, user_dir, True)

        host = self.start(sock.getsockname()[1], no_enable=True, user_dir=user_dir)
        ready = host.events("ready")[0]
        self.assertEqual(ready["protocol"], "prpl-irc")
        self.assertTrue(ready["libpurple"].startswith("2.14"), ready)
        self.assertEqual(ready["user_dir"], user_dir)
        added = host.wait_for("account-added")
        self.assertEqual((added["username"], added["protocol"], added["existing"]),
                         (ACCOUNT, "prpl-irc", False))
        # --no-enable: the account must not try to connect.
        host.expect_none("connecting", 0.5)

        self.assertEqual(host.ping(42)["id"], 42)
        self.assertEqual(host.ping({"any": ["json"]})["id"], {"any": ["json"]})

        err = host.call({"cmd": "frobnicate"}, expect_error=True)
        self.assertIn("unknown command", err["message"])
        host.send_raw("{not json")
        self.assertIn("invalid JSON", host.wait_for("error")["message"])
        host.send_raw('{"cmd":"ping","x":%s%s}' % ("[" * 100, "]" * 100))
        self.assertIn("deeper", host.wait_for("error")["message"])
        host.send_raw("[1,2]")
        self.assertIn("JSON object", host.wait_for("error")["message"])
        host.send_raw("   ")
        host.expect_none("error", 0.3)

        self.assertEqual(host.convs(), [])
        self.assertIn("integer", host.call({"cmd": "set_option", "key": "port", "value": "abc"},
                                           expect_error=True)["message"])
        self.assertIn("unknown option 'nosuch'",
                      host.call({"cmd": "set_option", "key": "nosuch", "value": 1},
                                expect_error=True)["message"])
        self.assertIn("true or false",
                      host.call({"cmd": "set_option", "key": "ssl", "value": "maybe"},
                                expect_error=True)["message"])
        host.set_option("port", 6697)
        host.set_option("ssl", True)
        host.set_option("encoding", "UTF-8")

        host.set_status("away", "gone fishing")
        status = host.wait_for({"event": "account-status", "status_id": "away"})
        self.assertEqual(status["message"], "gone fishing")
        self.assertIn("no status", host.call({"cmd": "status", "id": "nosuch"},
                                             expect_error=True)["message"])
        self.assertIn("not enabled", host.call({"cmd": "connect"}, expect_error=True)["message"])
        self.assertIn("not connected",
                      host.call({"cmd": "send", "to": "x", "text": "y"},
                                expect_error=True)["message"])
        self.finish(host)

        # The same user dir again: libpurple saved the account and options.
        again = self.start(sock.getsockname()[1], no_enable=True, user_dir=user_dir,
                           options={"port": 6697})
        self.assertTrue(again.wait_for("account-added")["existing"])
        self.finish(again)
        with open(os.path.join(user_dir, "accounts.xml"), encoding="utf-8") as f:
            saved = f.read()
        self.assertIn("<name>%s</name>" % ACCOUNT, saved)
        self.assertIn("6697", saved)

    def test_bad_options(self):
        cases = [
            (["--option", "nosuch=1"], "unknown option 'nosuch'"),
            (["--option", "port=abc"], "needs an integer"),
            (["--option", "port"], "KEY=VALUE"),
            (["--protocol", "prpl-nonexistent"], "'prpl-nonexistent' not found"),
            (["--reconnect-delay-ms", "-5"], "must not be negative"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                user_dir = tempfile.mkdtemp(prefix="wabiz-host-test-")
                self.addCleanup(shutil.rmtree, user_dir, True)
                proc = subprocess.run(
                    [HOST, "--user-dir", user_dir, "--plugin-dir", PLUGIN_DIR,
                     "--protocol", "prpl-irc", "--account", ACCOUNT] + args,
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                self.assertIn(message, proc.stderr)
        proc = subprocess.run([HOST, "--protocol", "prpl-irc"], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("--account is required", proc.stderr)

    def test_network_error_reconnects(self):
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        host = self.start(sock.getsockname()[1], reconnect_delay_ms=200)

        first = host.wait_for("disconnect")
        self.assertEqual((first["reason"], first["reason_name"], first["fatal"]),
                         (0, "NETWORK_ERROR", False))
        self.assertIn("Connection refused", first["description"])
        sched = host.wait_for("reconnect-scheduled")
        self.assertEqual((sched["delay_ms"], sched["attempt"]), (200, 1))
        # The host reconnects by itself, fails again and doubles the delay.
        host.wait_for("connecting")
        host.wait_for("connecting")
        self.assertEqual(host.wait_for("disconnect")["reason_name"], "NETWORK_ERROR")
        sched = host.wait_for("reconnect-scheduled")
        self.assertEqual((sched["delay_ms"], sched["attempt"]), (400, 2))
        host.expect_none("account-disabled", 0)

        # Now the port listens: the next automatic reconnect signs on.
        srv = FakeIrcServer(sock=sock)
        self.addCleanup(srv.stop)
        self.assertEqual(host.wait_for("signed-on")["display_name"], "tester")
        self.finish(host)

    def test_reconnect_backoff_caps(self):
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        host = self.start(sock.getsockname()[1], reconnect_delay_ms=10)
        delays = [host.wait_for("reconnect-scheduled")["delay_ms"] for _ in range(8)]
        # Doubling from the base, capped at 30 times the base.
        self.assertEqual(delays, [10, 20, 40, 80, 160, 300, 300, 300])
        host.disable()
        host.wait_for("account-disabled")
        self.finish(host)

    def test_zero_delay_reconnects(self):
        # With no delay the reconnect timer fires before libpurple has torn
        # the failed connection down; the host must still reconnect.
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        host = self.start(sock.getsockname()[1], reconnect_delay_ms=0)
        for _ in range(6):
            host.wait_for("connecting")
        self.assertEqual({e["delay_ms"] for e in host.events("reconnect-scheduled")}, {0})
        self.finish(host)

    def test_reconnect_after_sign_on_resets_backoff(self):
        srv = self.server()
        host = self.start(srv.port, reconnect_delay_ms=150)
        host.wait_for("signed-on")
        for round_ in range(2):
            srv.close_client()
            gone = host.wait_for("disconnect")
            self.assertEqual((gone["reason_name"], gone["fatal"]), ("NETWORK_ERROR", False))
            sched = host.wait_for("reconnect-scheduled")
            # Reset by the sign-on in between: the base delay again.
            self.assertEqual((sched["delay_ms"], sched["attempt"]), (150, 1), round_)
            host.wait_for("signed-on")
        self.assertEqual(srv.connection_count, 3)
        self.finish(host)

    def test_fatal_error_disables(self):
        srv = self.server(reject_nicks={"bad"})
        host = self.start(srv.port, account="bad@127.0.0.1", reconnect_delay_ms=50)
        host.wait_for("connecting")
        gone = host.wait_for("disconnect")
        self.assertEqual((gone["reason"], gone["reason_name"], gone["fatal"]),
                         (7, "INVALID_SETTINGS", True))
        host.wait_for("account-disabled")
        # Fatal: no reconnect (one would come after 50 ms).
        host.expect_none("reconnect-scheduled", 1.0)
        host.expect_none("connecting", 0)
        self.assertEqual(srv.connection_count, 1)
        # The user enables the account again: it connects (and fails) again.
        host.enable()
        host.wait_for("account-enabled")
        host.wait_for("connecting")
        self.assertTrue(host.wait_for("disconnect")["fatal"])
        self.assertEqual(srv.connection_count, 2)
        self.finish(host)

    def test_signon_and_messages(self):
        srv = self.server()
        host = self.start(srv.port)
        self.assertEqual(host.wait_for("signed-on")["display_name"], "tester")

        srv.send(':alice!a@h PRIVMSG tester :hello <b>&amp; "x"')
        created = host.wait_for("conv-created")
        self.assertEqual((created["conv"], created["type"], created["logging"]),
                         ("alice", "im", True))
        got = host.wait_for({"event": "write", "conv": "alice"})
        self.assertEqual(got["flags"], ["recv"])
        self.assertEqual((got["who"], got["conv_type"]), ("alice", "im"))
        # What libpurple shows is HTML: the customer's markup arrives escaped.
        self.assertEqual(got["message"], "hello &lt;b&gt;&amp;amp; &quot;x&quot;")
        self.assertIsInstance(got["time"], int)

        html = 'hi <b>there</b> &amp; you'
        self.assertEqual(host.send_im("alice", html)["conv"], "alice")
        echo = host.wait_for({"event": "write", "flags": has("send")})
        self.assertEqual(echo["message"], html)
        self.assertNotIn("recv", echo["flags"])
        self.assertEqual(echo["conv"], "alice")
        # prpl-irc turns the HTML into plain text on the wire.
        srv.wait_line(lambda line: line == "PRIVMSG alice :hi there & you")

        convs = host.convs()
        self.assertEqual([(c["conv"], c["conv_type"]) for c in convs], [("alice", "im")])
        host.disconnect()
        host.wait_for("signed-off")
        err = host.call({"cmd": "send", "to": "alice", "text": "late"}, expect_error=True)
        self.assertIn("not connected", err["message"])
        host.expect_none({"event": "write", "message": "late"}, 0.2)
        # An explicit disconnect is not an error: no reconnect follows.
        host.expect_none("reconnect-scheduled", 0.5)
        self.finish(host)

    def test_commands(self):
        srv = self.server()
        host = self.start(srv.port)
        host.wait_for("signed-on")
        self.assertEqual(host.command("alice", "/nick newnick")["status"], "ok")
        srv.wait_line(lambda line: line.startswith("NICK") and "newnick" in line)
        self.assertEqual(host.command("alice", "/nosuchcommand")["status"], "not-found")
        # Without the leading slash too (as Pidgin passes it).
        self.assertEqual(host.command("alice", "me waves")["status"], "ok")
        srv.wait_line(lambda line: line.startswith("PRIVMSG alice :\x01ACTION waves"))
        self.assertIn("alice", [c["conv"] for c in host.convs()])
        host.close_conv("alice")
        self.assertEqual(host.wait_for("conv-destroyed")["conv"], "alice")
        self.assertNotIn("alice", [c["conv"] for c in host.convs()])
        host.call({"cmd": "close_conv", "conv": "alice"}, expect_error=True)
        self.finish(host)

    def test_request_chat_invite(self):
        srv = self.server()
        host = self.start(srv.port)
        host.wait_for("signed-on")

        srv.send(":alice!a@h INVITE tester :#room")
        req = host.wait_for("request")
        self.assertEqual((req["kind"], req["who"], req["actions"]),
                         ("action", "alice", ["_Accept", "_Cancel"]))
        self.assertIn("#room", req["secondary"])
        self.assertIn("no action 5", host.answer(req["id"], action=5,
                                                 expect_error=True)["message"])
        host.answer(req["id"], action=0)
        self.assertEqual(host.wait_for("request-closed")["id"], req["id"])
        srv.wait_line(lambda line: line == "JOIN #room")
        chat = host.wait_for("conv-created")
        self.assertEqual((chat["conv"], chat["type"]), ("#room", "chat"))
        self.assertEqual(host.wait_for("chat-topic")["topic"], "Welcome <here> & now")
        names = [u["name"] for u in host.wait_for("chat-add-users")["users"]]
        self.assertEqual(sorted(names), ["alice", "bob", "tester"])
        topic_line = host.wait_for({"event": "write", "conv": "#room", "flags": has("system")})
        self.assertIn("Welcome &lt;here&gt; &amp; now", topic_line["message"])
        self.assertIn("no request", host.answer(req["id"], expect_error=True)["message"])

        # Cancel: the plugin must not join.
        srv.send(":alice!a@h INVITE tester :#other")
        req = host.wait_for("request")
        host.answer(req["id"], action=1)
        host.wait_for({"event": "request-closed", "id": req["id"]})
        host.get_info("zed")  # a barrier: its WHOIS follows any JOIN on the wire
        srv.wait_line(lambda line: line == "WHOIS zed")
        self.assertNotIn("JOIN #other", [line for _, line in srv.lines()])
        self.finish(host)

    def test_get_info(self):
        srv = self.server()
        host = self.start(srv.port)
        host.wait_for("signed-on")
        host.get_info("alice")
        srv.wait_line(lambda line: line == "WHOIS alice")
        info = host.wait_for("userinfo")
        self.assertEqual(info["who"], "alice")
        entries = {e["label"]: e["value"] for e in info["entries"]}
        self.assertEqual(entries["Nick"], "alice")
        self.assertEqual(entries["Real name"], "Real &lt;Name&gt; alice")
        host.close_notify(info["id"])
        self.assertEqual(host.wait_for("notify-closed")["id"], info["id"])
        host.call({"cmd": "close_notify", "id": info["id"]}, expect_error=True)
        self.finish(host)

    def test_notify_error(self):
        srv = self.server(reject_nicks={"bad"})
        host = self.start(srv.port)
        host.wait_for("signed-on")
        host.command("tester", "/nick bad")
        note = host.wait_for({"event": "notify", "kind": "message"})
        self.assertEqual((note["type"], note["title"]), ("error", "Invalid nickname"))
        self.assertIn("rejected", note["secondary"])
        # Connected: a bad nick is no reason to disconnect.
        host.expect_none("disconnect", 0.3)
        self.finish(host)

    def test_buddy_list(self):
        srv = self.server(online={"alice"})
        host = self.start(srv.port)
        host.wait_for("signed-on")
        host.add_buddy("alice", alias="Alice A", group="Customers")
        first = host.wait_for({"event": "buddy", "name": "alice"})
        self.assertEqual((first["alias"], first["group"]), ("Alice A", "Customers"))
        srv.wait_line(lambda line: line.startswith("ISON") and "alice" in line)
        online = host.wait_for({"event": "buddy", "name": "alice", "online": True})
        self.assertTrue(online["available"])
        self.assertEqual(online["status_id"], "available")
        self.assertFalse(online["show_offline"])
        host.call({"cmd": "add_buddy", "who": "alice"}, expect_error=True)

        listed = host.blist()
        self.assertEqual([(b["name"], b["online"]) for b in listed], [("alice", True)])
        # Reported on change only: no two updates in a row are the same.
        keys = [k for k in online if k not in ("_t",)]
        seen = [tuple(str(e.get(k)) for k in keys)
                for e in host.events({"event": "buddy", "name": "alice"})
                if e not in listed]
        self.assertTrue(all(a != b for a, b in zip(seen, seen[1:])), seen)

        host.remove_buddy("alice")
        self.assertEqual(host.wait_for("buddy-removed")["name"], "alice")
        self.assertEqual(host.blist(), [])
        self.finish(host)

    def test_cycle(self):
        srv = self.server()
        host = self.start(srv.port)
        host.wait_for("signed-on")
        done = host.cycle(5, timeout_ms=10000)
        self.assertEqual(done["count"], 5)
        self.assertEqual([host.wait_for("cycle")["done"] for _ in range(5)], [1, 2, 3, 4, 5])
        # One connection from boot, then one per cycle, each closed again.
        self.assertEqual(srv.connection_count, 6)
        for conn in range(6):
            srv.wait_closed(conn)
        self.assertEqual(len(host.events("signed-on")), 6)

        # A cycle that cannot sign on fails with the disconnect reason.
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        host.set_option("port", sock.getsockname()[1])
        with self.assertRaises(CommandError) as failed:
            host.cycle(2, timeout_ms=10000)
        self.assertIn("NETWORK_ERROR", failed.exception.event["message"])
        self.finish(host)

    def test_eof_quits(self):
        srv = self.server()
        host = self.start(srv.port)
        host.wait_for("signed-on")
        host.close_stdin()
        self.assertEqual(host.wait_exit(), 0)
        host.wait_for("signed-off")
        srv.wait_line(lambda line: line.startswith("QUIT"))
        self.assertEqual(host.invalid_lines(), [])

    def test_gap_meter(self):
        sock = closed_port_socket()
        self.addCleanup(sock.close)
        host = self.start(sock.getsockname()[1], no_enable=True)
        meter = host.gap_meter("start")
        self.assertEqual((meter["running"], meter["interval_ms"], meter["max_gap_us"], meter["p99_gap_us"]),
                         (True, 5, 0, 0))
        host.call({"cmd": "stall", "ms": 80}, timeout=60)
        # two hundred ticks or more after the stall: it is the largest
        # interval, and one in a hundred at most, so not the 99th percentile
        deadline = time.monotonic() + 120
        while host.gap_meter("read")["ticks"] < 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        meter = host.gap_meter("read")
        self.assertGreaterEqual(meter["max_gap_us"], 80000, meter)
        self.assertGreaterEqual(meter["p99_gap_us"], 4000, meter)
        self.assertLess(meter["p99_gap_us"], meter["max_gap_us"], meter)
        # asleep: the loop was held, but not by work
        self.assertLess(meter["gap_cpu_us"], 40000, meter)
        meter = host.gap_meter("reset")
        host.call({"cmd": "stall", "ms": 80, "busy": True}, timeout=60)
        deadline = time.monotonic() + 120
        while host.gap_meter("read")["ticks"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        meter = host.gap_meter("read")
        self.assertGreaterEqual(meter["max_gap_us"], 80000, meter)
        self.assertGreaterEqual(meter["gap_cpu_us"], 80000, meter)
        self.assertGreaterEqual(meter["max_cpu_us"], 80000, meter)
        self.assertLessEqual(meter["gap_cpu_us"] + meter["gap_wait_us"], meter["max_gap_us"] + 5000, meter)
        err = host.call({"cmd": "stall", "ms": 10001}, expect_error=True)
        self.assertIn("0 to 10000", err["message"])
        meter = host.gap_meter("reset")
        self.assertEqual((meter["max_gap_us"], meter["p99_gap_us"], meter["ticks"]), (0, 0, 0))
        self.assertFalse(host.gap_meter("stop")["running"])
        self.assertEqual(host.quit(timeout=60), 0)


class PluginTest(HostTestCase):
    """Requests, notifications and writes, driven through prpl-hosttest."""

    def said(self, host, text):
        """Waits for the system line the test plugin writes for an answer."""
        return host.wait_for({"event": "write", "message": text, "flags": has("system")})

    def request(self, host, command):
        self.assertEqual(host.command("cust", command)["status"], "ok")
        return host.wait_for("request")

    def test_input_choice_action(self):
        host = self.start_ht()
        host.wait_for("signed-on")
        req = self.request(host, "/htinput")
        self.assertEqual((req["kind"], req["default"], req["actions"], req["conv"], req["who"]),
                         ("input", "default name", ["OK", "Cancel"], "cust", "who"))
        host.answer(req["id"], value="Ann <x>")
        self.assertEqual(host.wait_for("request-closed")["id"], req["id"])
        self.said(host, "input ok: Ann &lt;x&gt;")
        req = self.request(host, "/htinput")
        host.answer(req["id"])
        self.said(host, "input ok: default name")
        req = self.request(host, "/htinput")
        host.answer(req["id"], action=1)
        self.said(host, "input cancel")
        host.answer(req["id"], expect_error=True)

        req = self.request(host, "/htchoice")
        self.assertEqual([c["value"] for c in req["choices"]], [10, 20, 30])
        self.assertEqual(req["default"], 20)
        self.assertIn("no choice", host.answer(req["id"], choice=31, expect_error=True)["message"])
        host.answer(req["id"], choice=30)
        self.said(host, "choice ok: 30")
        req = self.request(host, "/htchoice")
        host.answer(req["id"])
        self.said(host, "choice ok: 20")

        req = self.request(host, "/htaction")
        self.assertEqual((req["actions"], req["default"]), (["First", "Second", "Nothing"], 1))
        host.answer(req["id"], action=0)
        self.said(host, "action: 0")
        req = self.request(host, "/htaction")
        host.answer(req["id"])
        self.said(host, "action: 1")
        req = self.request(host, "/htaction")
        host.answer(req["id"], action=2)  # an action without a callback
        host.wait_for({"event": "request-closed", "id": req["id"]})
        host.expect_none({"event": "write", "message": contains("action:")}, 0.2)
        self.finish(host)

    def test_fields(self):
        host = self.start_ht()
        host.wait_for("signed-on")
        req = self.request(host, "/htfields")
        fields = {f["id"]: f for f in req["fields"]}
        self.assertEqual(list(fields), ["name", "age", "vip", "lang", "tags", "hint", "acct"])
        self.assertEqual((fields["name"]["type"], fields["name"]["required"]), ("string", True))
        self.assertEqual((fields["age"]["value"], fields["lang"]["choices"]),
                         (30, ["English", "Deutsch"]))
        self.assertEqual((fields["tags"]["choices"], fields["tags"]["value"]),
                         (["new", "paid", "late"], []))
        self.assertEqual((fields["hint"]["type"], fields["acct"]["value"]), ("label", "agent"))
        self.assertEqual(req["actions"], ["Save", "Cancel"])

        def refused(values, why):
            err = host.answer(req["id"], fields=values, expect_error=True)
            self.assertIn(why, err["message"])

        refused({}, "required")
        refused({"name": ""}, "required")
        refused({"name": "Ann", "age": "41"}, "cannot take")
        refused({"name": "Ann", "nosuch": 1}, "no field 'nosuch'")
        refused({"name": "Ann", "hint": "x"}, "cannot be set")
        refused({"name": "Ann", "lang": 2}, "no such choice")
        refused({"name": "Ann", "tags": ["nope"]}, "no item 'nope'")
        refused({"name": "Ann", "acct": "nobody"}, "no account")
        host.expect_none("request-closed", 0)
        host.expect_none({"event": "write", "message": contains("fields")}, 0.1)
        host.answer(req["id"], fields={"name": "Ann", "age": 41, "vip": True, "lang": "Deutsch",
                                       "tags": ["new", "late"], "acct": "agent"})
        self.said(host, "fields ok: name=Ann age=41 vip=1 lang=1 tags=new,late acct=agent")
        host.wait_for({"event": "request-closed", "id": req["id"]})

        req = self.request(host, "/htfields")
        host.answer(req["id"], action=1)
        self.said(host, "fields cancel")
        self.finish(host)

    def test_file_folder(self):
        host = self.start_ht()
        host.wait_for("signed-on")
        req = self.request(host, "/htfile")
        self.assertEqual((req["kind"], req["default"], req["savedialog"]),
                         ("file", "/tmp/default.txt", True))
        self.assertIn("needs \"file\"", host.answer(req["id"], expect_error=True)["message"])
        host.answer(req["id"], file="/tmp/out.bin")
        self.said(host, "file ok: /tmp/out.bin")
        req = self.request(host, "/htfolder")
        self.assertEqual((req["kind"], req["default"]), ("folder", "/tmp"))
        host.answer(req["id"], action=1)
        self.said(host, "file cancel")
        self.finish(host)

    def test_notifications(self):
        host = self.start_ht()
        host.wait_for("signed-on")
        host.command("cust", "/htnotify")
        note = host.wait_for({"event": "notify", "kind": "formatted"})
        self.assertEqual((note["title"], note["text"]), ("Formatted", "<b>body</b>"))
        host.close_notify(note["id"])
        host.wait_for({"event": "notify-closed", "id": note["id"]})
        self.said(host, "notify closed")  # the plugin's close callback ran

        host.command("cust", "/htmessage")
        warn = host.wait_for({"event": "notify", "kind": "message"})
        self.assertEqual((warn["type"], warn["primary"]), ("warning", "Careful"))

        host.command("cust", "/htsearch")
        found = host.wait_for("searchresults")
        self.assertEqual(found["columns"], ["Name", "Phone"])
        self.assertEqual(found["rows"], [["Ann", "+1555"], ["Bob", "+1666"]])
        self.assertEqual([b["label"] for b in found["buttons"]], ["Pick"])
        host.call({"cmd": "search_button", "id": found["id"], "button": 0, "row": 1})
        self.said(host, "picked: Bob")
        host.call({"cmd": "search_button", "id": found["id"], "button": 3, "row": 0},
                  expect_error=True)
        host.call({"cmd": "search_button", "id": warn["id"], "button": 0, "row": 0},
                  expect_error=True)

        host.get_info("cust")
        info = host.wait_for("userinfo")
        self.assertEqual([(e["type"], e["label"], e["value"]) for e in info["entries"]],
                         [("pair", "Name", "&lt;Ann &amp; Co&gt;"),
                          ("section-break", None, None),
                          ("section-header", "Notes", None),
                          ("pair", "Phone", "cust")])
        # Still shown at quit: the connection closes them (its handle).
        self.finish(host)
        closed = {e["id"] for e in host.events("notify-closed")}
        self.assertTrue({warn["id"], found["id"], info["id"]} <= closed, closed)

    def test_writes_and_logging(self):
        host = self.start_ht()
        self.assertEqual(host.wait_for("signed-on")["display_name"], "Host Test")
        host.command("cust", "/htremote <b>from the phone</b>")
        remote = host.wait_for({"event": "write", "conv": "cust"})
        self.assertEqual(remote["flags"], ["send", "remote-send"])
        self.assertEqual(remote["message"], "<b>from the phone</b>")
        self.assertTrue(remote["logging"])

        host.command("cust", "/htnolog")
        self.assertFalse(host.wait_for("conv-logging")["logging"])
        self.assertEqual([(c["conv"], c["logging"]) for c in host.convs()], [("cust", False)])
        host.send_im("cust", "hello")
        echo = host.wait_for({"event": "write", "flags": has("send")})
        self.assertEqual((echo["message"], echo["logging"]), ("hello", False))

        host.send_im("cust", "this will fail")
        failed = host.wait_for({"event": "write", "flags": has("error")})
        self.assertIn("Unable to send", failed["message"])
        host.expect_none({"event": "write", "message": "this will fail"}, 0.2)
        self.finish(host)

    def test_second_account(self):
        host = self.start_ht()
        first = host.wait_for("signed-on")
        self.assertEqual(first["account"], "agent")
        host.add_account("desk2", options={"display": "Desk 2"})
        added = host.wait_for({"event": "account-added", "username": "desk2"})
        self.assertFalse(added["existing"])
        self.assertEqual(host.wait_for({"event": "signed-on", "account": "desk2"})["display_name"],
                         "Desk 2")
        # a command names its account; events say whose they are
        host.command("cust", "/htremote for desk two", account="desk2")
        write = host.wait_for({"event": "write", "conv": "cust"})
        self.assertEqual((write["account"], write["message"]), ("desk2", "for desk two"))
        host.command("cust", "/htremote for the agent")
        write = host.wait_for({"event": "write", "conv": "cust"})
        self.assertEqual((write["account"], write["message"]), ("agent", "for the agent"))
        # a bad option or account name is refused and adds nothing
        self.assertIn("mode", host.call({"cmd": "add_account", "username": "desk3",
                                         "options": {"mode": "zz"}}, expect_error=True)["message"])
        self.assertIn("names no account", host.call({"cmd": "convs", "account": "desk3"},
                                                    expect_error=True)["message"])
        # only the named account goes offline
        self.assertTrue(host.call({"cmd": "disconnect", "account": "desk2"})["was_connected"])
        self.assertEqual(host.wait_for("signed-off")["account"], "desk2")
        host.expect_none("reconnect-scheduled", 0.3)
        host.send_im("cust", "still here")
        self.assertEqual(host.wait_for({"event": "write", "flags": has("send")})["account"], "agent")
        self.finish(host)

    def test_options_and_fatal_reason(self):
        host = self.start_ht(options={"mode": "b", "flag": "yes", "display": "Desk 1",
                                      "fail_reason": 0})
        gone = host.wait_for("disconnect")
        self.assertEqual((gone["reason_name"], gone["fatal"], gone["description"]),
                         ("NETWORK_ERROR", False, "asked to fail"))
        host.wait_for("reconnect-scheduled")
        self.assertIn("no item", host.call({"cmd": "set_option", "key": "mode", "value": "c"},
                                           expect_error=True)["message"])
        host.set_option("fail_reason", -1)
        self.assertEqual(host.wait_for("signed-on")["display_name"], "Desk 1")

        host.command("cust", "/htfatal")
        gone = host.wait_for({"event": "disconnect", "fatal": True})
        self.assertEqual((gone["reason"], gone["reason_name"], gone["description"]),
                         (2, "AUTHENTICATION_FAILED", "token refused"))
        host.wait_for("account-disabled")
        host.expect_none("reconnect-scheduled", 0.5)
        self.finish(host)

    def test_cycle_and_status(self):
        host = self.start_ht()
        host.wait_for("signed-on")
        self.assertEqual(host.cycle(20, timeout_ms=10000)["count"], 20)
        self.assertEqual(len(host.events("cycle")), 20)
        host.consume_all()
        host.set_status("offline")
        host.expect_none("connecting", 0.2)
        host.set_status("away", "at lunch")
        host.wait_for("signed-on")
        away = host.wait_for({"event": "account-status", "status_id": "away"})
        self.assertEqual(away["message"], "at lunch")
        host.disable()
        host.wait_for("signed-off")
        host.enable()
        host.wait_for("signed-on")
        self.finish(host)


    def test_slow_dispatch(self):
        turns = os.path.join(tempfile.mkdtemp(prefix="wabiz-host-turns-"), "turns")
        self.addCleanup(shutil.rmtree, os.path.dirname(turns), True)
        host = self.start_ht(env={"WABIZ_HOST_SLOW_MS": "30", "WABIZ_SLOW_TURNS": turns})
        host.wait_for("signed-on", timeout=60)
        host.command("cust", "/htslow 5")
        host.command("cust", "/htslow 60")
        slow = host.wait_for("slow-dispatch", timeout=60)
        # the turn of the loop that ran it is logged as it ends: "<wall ms> <CPU ms>"
        def logged():
            if not os.path.exists(turns):
                return []
            with open(turns) as f:
                return [tuple(float(x) for x in line.split()) for line in f if line.endswith("\n")]
        deadline = time.monotonic() + 30
        while not any(wall >= 60 and cpu < wall for wall, cpu in logged()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertTrue(any(wall >= 60 and cpu < wall for wall, cpu in logged()), logged())
        self.assertEqual(slow["kind"], "timeout")
        self.assertTrue(slow["module"].endswith("libhosttest.so"), slow)
        self.assertGreaterEqual(slow["wall_us"], 60000, slow)
        self.assertLess(slow["cpu_us"], slow["wall_us"], slow)  # asleep
        out = subprocess.run(["addr2line", "-f", "-e", slow["module"], slow["offset"]],
                             capture_output=True, text=True)
        if out.returncode == 0 and "??" not in out.stdout:
            self.assertEqual(out.stdout.splitlines()[0], "ht_slow_fired", out.stdout)
        host.expect_none("slow-dispatch", 0.5)  # the 5 ms one is not reported
        self.finish(host)

        host = self.start_ht()  # off without the variable
        host.wait_for("signed-on", timeout=60)
        host.command("cust", "/htslow 60")
        host.expect_none("slow-dispatch", 1.0)
        self.finish(host)


class ValgrindTest(HostTestCase):
    """A short session under valgrind: no invalid access, no definite leak
    outside the suppressions (valgrind.supp)."""

    def test_short_session(self):
        valgrind = shutil.which("valgrind")
        if valgrind is None:
            self.skipTest("valgrind is not installed")
        supp = os.environ.get("WABIZ_HOST_SUPP",
                              os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "valgrind.supp"))
        wrapper = [valgrind, "--error-exitcode=99", "--leak-check=full",
                   "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
                   "--suppressions=" + supp, "--num-callers=30"]
        env = {"G_SLICE": "always-malloc"}

        # prpl-hosttest: every request and notification kind.
        host = self.start_ht(env=env, wrapper=wrapper, timeout=120)
        host.wait_for("signed-on", timeout=60)
        for command, answer in (("/htinput", {"value": "x"}), ("/htchoice", {"choice": 10}),
                                ("/htaction", {"action": 0}), ("/htfile", {"file": "/f"}),
                                ("/htfolder", {"action": 1}),
                                ("/htfields", {"fields": {"name": "n", "tags": "paid"}})):
            host.command("cust", command, timeout=60)
            host.answer(host.wait_for("request", timeout=60)["id"], timeout=60, **answer)
        for command in ("/htnotify", "/htsearch", "/htfields", "/htinput"):
            host.command("cust", command, timeout=60)  # left open: quit closes them
        host.get_info("cust")
        host.send_im("cust", "hi <b>x</b>", timeout=60)
        host.cycle(3, timeout_ms=30000, timeout=180)
        self.assertEqual(host.quit(timeout=120), 0, host.stderr_text()[-8000:])

        # prpl-irc against the fake server.
        srv = self.server(online={"alice"})
        host = self.start(srv.port, env=env, wrapper=wrapper, timeout=120)
        host.wait_for("signed-on", timeout=60)
        srv.send(":alice!a@h PRIVMSG tester :hi <there>")
        host.wait_for({"event": "write", "flags": has("recv")}, timeout=60)
        host.send_im("alice", "hello <i>you</i>", timeout=60)
        srv.wait_line(lambda line: line.startswith("PRIVMSG alice"), timeout=60)
        host.add_buddy("alice")
        host.get_info("alice")
        host.wait_for("userinfo", timeout=60)
        srv.send(":alice!a@h INVITE tester :#room")
        host.answer(host.wait_for("request", timeout=60)["id"], action=0, timeout=60)
        host.wait_for("chat-add-users", timeout=60)
        host.cycle(3, timeout_ms=30000, timeout=180)
        host.consume_all()
        host.connect()
        host.wait_for("signed-on", timeout=60)
        srv.wait_connections(5)
        srv.send(":alice!a@h INVITE tester :#left")
        host.wait_for({"event": "request", "kind": "action"}, timeout=60)
        # Left pending on purpose: shutdown must free it.
        code = host.quit(timeout=120)
        self.assertEqual(code, 0, host.stderr_text()[-8000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)

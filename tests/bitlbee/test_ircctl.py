"""ircctl's own tests, against tests/host/fakeirc.py (no BitlBee needed): line
parsing, registration, PING answered, wait_for / expect_none semantics, and a
hang-up reported at once with the conversation."""

import os
import socket
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WABIZ_SRC", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))
sys.path.insert(0, HERE)

from fakeirc import FakeIrcServer  # noqa: E402
from ircctl import DccOffer, Irc, IrcError, dcc_get, dcc_offer, parse_line  # noqa: E402


class ParseLine(unittest.TestCase):

    def test_prefix_command_params_and_trailing(self):
        line = parse_line(":_4917612345678!4917612345678@wabiz PRIVMSG agent :hi there : colon")
        self.assertEqual(line.prefix, "_4917612345678!4917612345678@wabiz")
        self.assertEqual(line.source, "_4917612345678")
        self.assertEqual(line.command, "PRIVMSG")
        self.assertEqual(line.params, ["agent", "hi there : colon"])
        self.assertEqual(line.target, "agent")
        self.assertEqual(line.text, "hi there : colon")

    def test_server_numeric_without_user_part(self):
        line = parse_line(":localhost 366 agent &bitlbee :End of /NAMES list")
        self.assertEqual(line.source, "localhost")
        self.assertEqual(line.command, "366")
        self.assertEqual(line.params, ["agent", "&bitlbee", "End of /NAMES list"])

    def test_no_prefix_and_empty_trailing(self):
        line = parse_line("PING :")
        self.assertEqual((line.source, line.command, line.params), ("", "PING", [""]))
        line = parse_line("ping token")
        self.assertEqual((line.command, line.params, line.text), ("PING", ["token"], "token"))


class Dcc(unittest.TestCase):

    def test_offer_parsed_numeric_and_dotted_quoted_name(self):
        line = parse_line(":_49170!u@h PRIVMSG agent :\x01DCC SEND report.pdf 2130706433 5000 123\x01")
        self.assertEqual(dcc_offer(line), DccOffer("report.pdf", "127.0.0.1", 5000, 123))
        self.assertEqual(dcc_offer('\x01DCC SEND "my file.txt" 10.0.0.2 6000 7\x01'),
                         DccOffer("my file.txt", "10.0.0.2", 6000, 7))
        self.assertIsNone(dcc_offer("DCC SEND report.pdf 2130706433 5000 123"))
        self.assertIsNone(dcc_offer("\x01DCC CHAT chat 2130706433 5000\x01"))

    def test_get_reads_the_file_and_acknowledges_it(self):
        data = bytes(range(256)) * 1000
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        acks = []

        def serve():
            conn, _ = listener.accept()
            with conn:
                for start in range(0, len(data), 10000):
                    conn.sendall(data[start:start + 10000])
                while not acks or acks[-1] < len(data):
                    got = conn.recv(4)
                    if len(got) < 4:
                        break
                    acks.append(int.from_bytes(got, "big"))
        sender = threading.Thread(target=serve)
        sender.start()
        got = dcc_get(DccOffer("f", "127.0.0.1", listener.getsockname()[1], len(data)))
        sender.join(10)
        self.assertEqual(got, data)
        self.assertEqual(acks[-1], len(data))

    def test_get_fails_on_a_short_file(self):
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve():
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"abc")
        sender = threading.Thread(target=serve)
        sender.start()
        with self.assertRaises(IrcError):
            dcc_get(DccOffer("f", "127.0.0.1", listener.getsockname()[1], 10))
        sender.join(10)


class Client(unittest.TestCase):

    def setUp(self):
        self.server = FakeIrcServer()
        self.addCleanup(self.server.stop)
        self.irc = Irc.connect("127.0.0.1", self.server.port, "agent")
        self.addCleanup(self.irc.close)

    def test_registers_joins_and_says(self):
        self.server.wait_line(lambda line: line == "NICK agent")
        self.server.wait_line(lambda line: line.startswith("USER agent "))
        self.irc.join("#room")
        self.irc.say("#room", "hello <b>& you")
        self.server.wait_line(lambda line: line == "PRIVMSG #room :hello <b>& you")
        with self.assertRaises(ValueError):
            self.irc.say("#room", "two\r\nQUIT")

    def test_ping_is_answered_and_not_kept(self):
        self.server.send("PING :tok-123")
        self.server.wait_line(lambda line: line == "PONG :tok-123")
        self.assertEqual(self.irc.lines({"command": "PING"}), [])
        self.assertIn("<< PING :tok-123", self.irc.log_text())

    def test_wait_for_takes_the_oldest_unconsumed_match(self):
        self.server.send(":bob!u@h PRIVMSG agent :first words")
        self.server.send(":bob!u@h PRIVMSG agent :second words")
        self.server.send(":eve!u@h PRIVMSG agent :third")
        # a later line can be awaited first; the earlier ones stay
        self.assertEqual(self.irc.wait_for({"source": "eve"}).text, "third")
        self.assertEqual(self.irc.wait_for({"source": "bob", "text": "words"}).text, "first words")
        self.assertEqual(self.irc.wait_for(lambda line: line.source == "bob").text, "second words")
        self.irc.expect_none({"source": "bob"}, 0.2)
        self.assertEqual(len(self.irc.lines({"source": "bob"})), 2)

    def test_expect_none_fails_on_an_unconsumed_match(self):
        self.server.send(":bob!u@h PRIVMSG agent :not wanted")
        self.irc.wait_for({"text": "not wanted"})
        self.server.send(":bob!u@h PRIVMSG agent :again")
        with self.assertRaises(IrcError) as raised:
            self.irc.expect_none({"source": "bob"}, 5.0)
        self.assertIn("again", str(raised.exception))

    def test_hang_up_is_reported_at_once_with_the_conversation(self):
        self.server.send(":root!root@localhost PRIVMSG &bitlbee :last words")
        self.irc.wait_for({"text": "last words"})
        self.server.close_client()
        started = time.monotonic()
        with self.assertRaises(IrcError) as raised:
            self.irc.wait_for({"text": "never"}, timeout=30)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("closed the connection", str(raised.exception))
        self.assertIn("<< :root!root@localhost PRIVMSG &bitlbee :last words", str(raised.exception))
        self.assertFalse(self.irc.connected)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""ircctl: a small IRC client on a plain socket, for driving BitlBee from tests.

Standard library only. Used like this::

    from ircctl import Irc

    with Irc.connect("127.0.0.1", port, nick="agent") as irc:
        irc.join("&bitlbee")
        irc.say("&bitlbee", "account list")
        irc.wait_for({"command": "PRIVMSG", "source": "root", "text": "wabiz"})

Lines
    Every line the server sends is parsed into a Line (prefix, source nick,
    command, params; target is params[0], text the last parameter) and kept in
    arrival order. PING is answered with PONG by the reader thread.

    * wait_for(match) returns the FIRST unconsumed line that matches (possibly
      one received before the call), marks it consumed and returns it; it
      waits for new lines only when none matches yet. Waiting twice for the
      same match returns two different lines.
    * lines(match) lists every line seen so far that matches; it never waits
      and never consumes.
    * expect_none(match, within_s) fails if an unconsumed matching line is
      there already or arrives within within_s seconds; it consumes nothing.

Matches
    A match is a callable (given the Line) or a dict. A dict's keys are Line
    attributes: "text" matches when its value is a substring of the line's
    text, every other key when equal; a value may also be a callable (given
    the attribute), e.g. lambda text: text.startswith("x").

DCC
    dcc_offer(line) reads a CTCP "DCC SEND name address port size" (what an
    IRC server or BitlBee sends to offer a file) into a DccOffer, or None;
    dcc_get(offer) connects to it, reads the file while acknowledging each
    chunk with the 4-byte total, as IRC clients do, and returns the bytes.

Failures raise IrcError (an AssertionError) whose message holds what was
awaited and the conversation so far (">>" sent, "<<" received), so a failing
test shows why. Every deadline is multiplied by HOSTCTL_TIMEOUT_FACTOR, as in
tests/host/hostctl.py.
"""

import collections
import os
import shlex
import socket
import struct
import threading
import time

__all__ = ["Irc", "IrcError", "Line", "parse_line", "TIMEOUT_FACTOR", "DccOffer", "dcc_offer", "dcc_get"]

DEFAULT_TIMEOUT = 20.0
# Multiplies every timeout (for valgrind or sanitizer runs), as hostctl does.
TIMEOUT_FACTOR = float(os.environ.get("HOSTCTL_TIMEOUT_FACTOR", "1"))


class IrcError(AssertionError):
    """The server did not say what the test expected (or hung up)."""


class Line:
    """One parsed IRC line: ``:prefix COMMAND param param :trailing``."""

    __slots__ = ("raw", "prefix", "source", "command", "params", "time")

    def __init__(self, raw, prefix, command, params):
        self.raw = raw
        self.prefix = prefix
        # the nick part of nick!user@host (or the whole prefix for a server)
        self.source = prefix.split("!", 1)[0] if prefix else ""
        self.command = command
        self.params = params
        self.time = time.monotonic()

    @property
    def target(self):
        """The first parameter: a channel or nick for PRIVMSG, JOIN, ..."""
        return self.params[0] if self.params else ""

    @property
    def text(self):
        """The last parameter (a message's text), or ""."""
        return self.params[-1] if self.params else ""

    def __repr__(self):
        return "Line(%r)" % self.raw


def parse_line(raw):
    """Parses one IRC line (without CR LF) into a Line."""
    rest = raw
    prefix = ""
    if rest.startswith(":"):
        prefix, _, rest = rest[1:].partition(" ")
    rest = rest.lstrip(" ")
    trailing = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    words = rest.split()
    command = words[0].upper() if words else ""
    params = words[1:]
    if trailing is not None:
        params.append(trailing)
    return Line(raw, prefix, command, params)


DccOffer = collections.namedtuple("DccOffer", "name host port size")


def dcc_offer(line):
    """The DccOffer of a CTCP DCC SEND in line's text (a file name may be
    quoted; the address is one 32-bit number or a dotted one), else None."""
    text = line.text if isinstance(line, Line) else line
    if not (text.startswith("\x01DCC SEND ") and text.endswith("\x01")):
        return None
    try:
        words = shlex.split(text[len("\x01DCC SEND "):-1])
    except ValueError:
        return None
    if len(words) < 4 or not (words[-3].replace(".", "").isdigit() and words[-2].isdigit()
                              and words[-1].isdigit()):
        return None
    address = words[-3]
    host = socket.inet_ntoa(struct.pack(">I", int(address))) if "." not in address else address
    return DccOffer(" ".join(words[:-3]), host, int(words[-2]), int(words[-1]))


def dcc_get(offer, timeout=None):
    """Connects to a DCC SEND offer and reads offer.size bytes, acknowledging
    each chunk with the total so far (4 bytes, big-endian); returns them."""
    data = bytearray()
    with socket.create_connection((offer.host, offer.port), timeout=_scaled(timeout)) as conn:
        conn.settimeout(_scaled(timeout))
        while len(data) < offer.size:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            conn.sendall(struct.pack(">I", len(data) & 0xFFFFFFFF))
    if len(data) != offer.size:
        raise IrcError("DCC %s from %s:%d: %d of %d bytes" % (offer.name, offer.host, offer.port,
                                                            len(data), offer.size))
    return bytes(data)


def _matches(line, match):
    if callable(match):
        return bool(match(line))
    if not isinstance(match, dict):
        raise TypeError("a match is a dict or a callable, not %r" % (match,))
    for key, want in match.items():
        got = getattr(line, key)
        if callable(want):
            if not want(got):
                return False
        elif key == "text":
            if want not in got:
                return False
        elif want != got:
            return False
    return True


def _describe(match):
    if isinstance(match, dict):
        return "{%s}" % ", ".join("%s: %s" % (k, getattr(v, "__name__", repr(v)))
                                  for k, v in match.items())
    return getattr(match, "__name__", repr(match))


def _scaled(timeout):
    return (DEFAULT_TIMEOUT if timeout is None else timeout) * TIMEOUT_FACTOR


class Irc:
    """One IRC connection and everything said on it."""

    def __init__(self, sock, nick):
        self.nick = nick
        self._sock = sock
        self._lines = []        # every Line received, in arrival order
        self._consumed = []     # parallel to _lines
        self._log = []          # (monotonic time, ">>" or "<<", raw line)
        self._closed = False    # the server hung up (or we closed)
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._started = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="ircctl-" + nick, daemon=True)
        self._reader.start()

    # --- lifecycle ------------------------------------------------------------

    @classmethod
    def connect(cls, host, port, nick, user=None, realname="ircctl test client",
                timeout=None):
        """Connects, registers with NICK/USER and waits for the welcome (001).
        Returns the Irc."""
        limit = _scaled(timeout)
        try:
            sock = socket.create_connection((host, port), timeout=limit)
        except OSError as exc:
            raise IrcError("cannot connect to %s:%s: %s" % (host, port, exc))
        sock.settimeout(None)
        irc = cls(sock, nick)
        irc.send_raw("NICK " + nick)
        irc.send_raw("USER %s 0 * :%s" % (user or nick, realname))
        irc.wait_for({"command": "001"}, timeout=timeout)
        return irc

    def _read(self):
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                text = raw.rstrip(b"\r").decode("utf-8", "replace")
                if not text:
                    continue
                line = parse_line(text)
                with self._cond:
                    self._log.append((line.time, "<<", text))
                    if line.command != "PING":
                        self._lines.append(line)
                        self._consumed.append(False)
                        self._cond.notify_all()
                if line.command == "PING":
                    # answered here, at once: BitlBee hangs up on a client
                    # that does not answer within its PingTimeOut
                    try:
                        self.send_raw("PONG :" + line.text)
                    except IrcError:
                        pass
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def connected(self):
        """False once the server has closed the connection."""
        with self._cond:
            return not self._closed

    def quit(self, message="bye", timeout=None):
        """Sends QUIT and waits for the server to close the connection."""
        try:
            self.send_raw("QUIT :" + message)
        except IrcError:
            pass
        self._reader.join(_scaled(timeout))
        self.close()

    def close(self):
        """Closes the socket (the server sees the client go)."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(_scaled(None))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- sending --------------------------------------------------------------

    def send_raw(self, text):
        """Sends one line (CR LF is added)."""
        if "\r" in text or "\n" in text:
            raise ValueError("one IRC line at a time: %r" % text)
        with self._send_lock:
            try:
                self._sock.sendall(text.encode("utf-8") + b"\r\n")
            except OSError as exc:
                raise IrcError(self.report("cannot send %r: %s" % (text, exc)))
        with self._cond:
            self._log.append((time.monotonic(), ">>", text))

    def say(self, target, text):
        """PRIVMSG target :text (a channel, or a nick for a private message)."""
        self.send_raw("PRIVMSG %s :%s" % (target, text))

    def join(self, channel, timeout=None):
        """Joins channel and waits until the server confirms it (end of the
        names list, 366)."""
        self.send_raw("JOIN " + channel)
        return self.wait_for(lambda line: line.command == "366" and channel in line.params,
                             timeout=timeout)

    # --- lines ----------------------------------------------------------------

    def wait_for(self, match, timeout=None):
        """Returns the first unconsumed line matching match, marking it
        consumed; waits up to timeout seconds (default 20, scaled) for it.
        Raises IrcError on timeout or when the server hangs up first."""
        limit = _scaled(timeout)
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                for i, line in enumerate(self._lines):
                    if not self._consumed[i] and _matches(line, match):
                        self._consumed[i] = True
                        return line
                if self._closed:
                    why = "the server closed the connection"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    why = "timed out after %.1f s" % limit
                    break
                self._cond.wait(remaining)
        raise IrcError(self.report("waiting for %s: %s" % (_describe(match), why)))

    def lines(self, match=None):
        """Every line received so far that matches (consumed or not), oldest
        first. Never waits, never consumes."""
        with self._cond:
            return [line for line in self._lines if match is None or _matches(line, match)]

    def expect_none(self, match, within_s):
        """Fails if an unconsumed line matching match is there already or
        arrives within within_s seconds (scaled). Consumes nothing."""
        deadline = time.monotonic() + within_s * TIMEOUT_FACTOR
        with self._cond:
            while True:
                for i, line in enumerate(self._lines):
                    if not self._consumed[i] and _matches(line, match):
                        raise IrcError(self.report("unexpected line %r (for %s)"
                                                   % (line.raw, _describe(match))))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return
                self._cond.wait(remaining)

    def consume_all(self, match=None):
        """Marks every line so far that matches (default: all) consumed, so
        later waits see only newer ones; returns them."""
        with self._cond:
            taken = []
            for i, line in enumerate(self._lines):
                if not self._consumed[i] and (match is None or _matches(line, match)):
                    self._consumed[i] = True
                    taken.append(line)
            return taken

    def log_text(self):
        """The whole conversation: one line per line sent (>>) or received (<<),
        with the seconds since connecting."""
        with self._cond:
            return "\n".join("%8.3f %s %s" % (t - self._started, way, raw)
                             for t, way, raw in self._log)

    def report(self, what, last=60):
        """what, followed by the last lines of the conversation."""
        with self._cond:
            tail = self._log[-last:]
        lines = ["ircctl (%s): %s" % (self.nick, what), "conversation (last %d lines):" % len(tail)]
        lines += ["  %8.3f %s %s" % (t - self._started, way, raw) for t, way, raw in tail]
        return "\n".join(lines)

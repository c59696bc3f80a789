"""fakeirc: a tiny IRC server on a loopback port, for the host's own tests.

It plays just enough of RFC 1459/2812 for libpurple's IRC plugin: it greets a
client after NICK and USER (or rejects the nick with 432), answers PING,
WHOIS, ISON and JOIN, and records every line a client sent so a test can wait
for it.  Stdlib only; one thread per connection; binds port 0 and reports the
port it got.
"""

import socket
import threading
import time

SERVER = "fake.irc"


class FakeIrcServer:
    """An IRC server on 127.0.0.1:<port>.

    reject_nicks: nicks answered with 432 (erroneous nickname) at login.
    online: nicks reported online by ISON.
    topic: the topic sent after a JOIN.
    sock: an already bound, not yet listening socket to serve on (default: a
        new one on 127.0.0.1 port 0).
    """

    def __init__(self, reject_nicks=(), online=(), topic="Welcome <here> & now", sock=None):
        self.reject_nicks = set(reject_nicks)
        self.online = set(online)
        self.topic = topic
        self._cond = threading.Condition()
        self._lines = []          # (connection index, line), in arrival order
        self._conns = []          # sockets, by connection index
        self._closed = []         # connection indexes the client closed
        self._nicks = {}          # connection index -> current nick
        self._stopping = False
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    # --- test API -----------------------------------------------------

    @property
    def connection_count(self):
        """How many clients have connected so far."""
        with self._cond:
            return len(self._conns)

    def lines(self):
        """Every (connection index, line) received so far."""
        with self._cond:
            return list(self._lines)

    def wait_line(self, predicate, timeout=20, after=0):
        """The first received line (index >= after) for which predicate(line)
        is true, as (index, connection, line); AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(after, len(self._lines)):
                    conn, line = self._lines[i]
                    if predicate(line):
                        return i, conn, line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "fake IRC server: no matching line within %ss; got %r"
                        % (timeout, self._lines[-20:]))
                self._cond.wait(remaining)

    def wait_connections(self, count, timeout=20):
        """Waits until at least count clients have connected."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._conns) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("fake IRC server: %d connections, wanted %d"
                                         % (len(self._conns), count))
                self._cond.wait(remaining)

    def wait_closed(self, conn, timeout=20):
        """Waits until the client closed connection conn."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while conn not in self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("fake IRC server: connection %d still open" % conn)
                self._cond.wait(remaining)

    def send(self, line, conn=-1):
        """Sends one raw line (CRLF added) to a client (default: the newest)."""
        with self._cond:
            sock = self._conns[conn]
        sock.sendall(line.encode("utf-8") + b"\r\n")

    def close_client(self, conn=-1):
        """Closes a client connection from the server side."""
        with self._cond:
            sock = self._conns[conn]
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def stop(self):
        """Stops accepting and closes every connection."""
        self._stopping = True
        try:
            self._sock.close()
        except OSError:
            pass
        with self._cond:
            conns = list(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    # --- server -------------------------------------------------------

    def _accept_loop(self):
        while not self._stopping:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            with self._cond:
                index = len(self._conns)
                self._conns.append(sock)
                self._cond.notify_all()
            threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

    def _reply(self, sock, line):
        try:
            sock.sendall(line.encode("utf-8") + b"\r\n")
        except OSError:
            pass

    def _serve(self, sock, index):
        buf = b""
        got_user = False
        welcomed = False
        while True:
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                with self._cond:
                    self._closed.append(index)
                    self._cond.notify_all()
                return
            buf += data
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                line = raw.rstrip(b"\r").decode("utf-8", "replace")
                with self._cond:
                    self._lines.append((index, line))
                    self._cond.notify_all()
                words = line.split(" ")
                cmd = words[0].upper()
                nick = self._nicks.get(index, "*")
                if cmd == "NICK" and len(words) > 1:
                    new = words[1].lstrip(":")
                    if new in self.reject_nicks:
                        self._reply(sock, ":%s 432 %s %s :Erroneous Nickname" % (SERVER, nick, new))
                        continue
                    if welcomed:
                        self._reply(sock, ":%s!u@h NICK :%s" % (nick, new))
                    self._nicks[index] = new
                elif cmd == "USER":
                    got_user = True
                elif cmd == "PING":
                    self._reply(sock, ":%s PONG %s %s" % (SERVER, SERVER, " ".join(words[1:])))
                elif cmd == "WHOIS" and len(words) > 1:
                    who = words[-1]
                    self._reply(sock, ":%s 311 %s %s ~%s example.test * :Real <Name> %s"
                                % (SERVER, nick, who, who, who))
                    self._reply(sock, ":%s 318 %s %s :End of /WHOIS list." % (SERVER, nick, who))
                elif cmd == "ISON":
                    asked = [w.lstrip(":") for w in words[1:]]
                    on = [w for w in asked if w in self.online]
                    self._reply(sock, ":%s 303 %s :%s" % (SERVER, nick, " ".join(on)))
                elif cmd == "JOIN" and len(words) > 1:
                    chan = words[1].lstrip(":")
                    self._reply(sock, ":%s!u@h JOIN :%s" % (nick, chan))
                    self._reply(sock, ":%s 332 %s %s :%s" % (SERVER, nick, chan, self.topic))
                    self._reply(sock, ":%s 353 %s = %s :%s @alice bob" % (SERVER, nick, chan, nick))
                    self._reply(sock, ":%s 366 %s %s :End of /NAMES list." % (SERVER, nick, chan))
                if not welcomed and got_user and index in self._nicks:
                    welcomed = True
                    n = self._nicks[index]
                    self._reply(sock, ":%s 001 %s :Welcome to the fake network %s" % (SERVER, n, n))
                    self._reply(sock, ":%s 376 %s :End of /MOTD command." % (SERVER, n))

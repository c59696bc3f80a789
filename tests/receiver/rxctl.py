"""rxctl: drive wabiz-receiver from Python tests (standard library only).

    from rxctl import Account, Receiver, post_webhook, webhook_body

    with Receiver.start(binary, state_dir, max_body=65536) as rx:
        acct = Account("106540352242922", waba_id="102290129340398", secret="s1")
        client = rx.client()                       # connected and HELLO'd
        url = client.register(acct.registration(port=0))["url"]
        status, _, _ = post_webhook(url, webhook_body(acct.pnid, acct.waba_id, "hi"),
                                    secret="s1")
        client.subscribe(acct.pnid)
        envelope = acct.open(client.next_event())  # the plaintext webhook envelope

What is here:
- Receiver: starts the built binary in the foreground (a temporary --dir, port 0
  everywhere), waits until rx.sock answers STATUS, stops it (SIGTERM, or kill -9
  for crash tests), and talks HTTP to its listeners with http.client.
- Client: the line protocol of plugin/receiver/PROTOCOL.md over the real UNIX
  socket; EVENT and NOTICE lines are collected while waiting for answers.
- Account: a test account with an X25519 key pair made by libsodium (ctypes on
  libsodium.so.23) and the code to open sealed events with crypto_box_seal_open.
- webhook_body / sign: webhook bodies serialised the way Meta does (compact,
  "/" escaped as "\\/", non-ASCII as lowercase \\uXXXX) and their signatures.

Must not: need anything beyond the Python standard library and the system
libsodium, reuse a port it did not get from the receiver, or sleep for
correctness: waiting is polling against a deadline.
RXCTL_TIMEOUT_FACTOR (else HOSTCTL_TIMEOUT_FACTOR, which `meson test --setup asan`
sets) scales every timeout;
RXCTL_WRAPPER is a command prefix for the receiver (e.g. "valgrind -q").
"""

import base64
import ctypes
import ctypes.util
import grp
import hashlib
import hmac
import http.client
import json
import os
import select
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

TIMEOUT_FACTOR = float(os.environ.get("RXCTL_TIMEOUT_FACTOR",
                                      os.environ.get("HOSTCTL_TIMEOUT_FACTOR", "1")))
DEFAULT_TIMEOUT = 10.0 * TIMEOUT_FACTOR
DEFAULT_PNID = "106540352242922"
DEFAULT_WABA_ID = "102290129340398"
DEFAULT_SECRET = "test-app-secret"
DEFAULT_VERIFY_TOKEN = "test-verify-token"


# ---- sockets other programs hold, and HTTP over a UNIX socket ----------------------------

def squat(port=0):
    """A listening socket on 127.0.0.1:port, as another user's program would hold it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(4)
    except OSError:
        sock.close()
        raise
    return sock


def try_squat(port):
    """squat(port), or None while the port is taken."""
    try:
        return squat(port)
    except OSError:
        return None


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a UNIX stream socket (what nginx's proxy_pass does)."""

    def __init__(self, path, timeout=None):
        super().__init__("localhost", timeout=timeout if timeout is not None else DEFAULT_TIMEOUT)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def unix_request(path, method, target, body=None, headers=None):
    """One HTTP request over the UNIX socket @path: (status, body bytes)."""
    conn = UnixHTTPConnection(path)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def socket_group():
    """A group the test's user may give a file: "daemon" as root (CI), else
    the user's own primary group."""
    if os.getuid() == 0:
        return "daemon"
    return grp.getgrgid(os.getgid()).gr_name


class RxError(Exception):
    """The receiver answered ERR: ``code`` and ``message`` as sent."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


class RxClosed(ConnectionError):
    """The receiver closed the socket connection."""


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Poll ``predicate()`` until it returns a true value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# ---- libsodium ----------------------------------------------------------

class _Sodium:
    """crypto_box_keypair and the opening of sealed events (crypto_box_seal, and the
    receiver's batch format of plugin/core/wa-seal.h) from the system libsodium."""

    PUBLICKEYBYTES = 32
    SECRETKEYBYTES = 32
    SEALBYTES = 48
    BATCH_MAGIC = b"wabizB1\0"
    NONCEBYTES = 24
    MACBYTES = 16

    def __init__(self):
        name = "libsodium.so.23"
        try:
            self.lib = ctypes.CDLL(name)
        except OSError:
            found = ctypes.util.find_library("sodium")
            if not found:
                raise
            self.lib = ctypes.CDLL(found)
        if self.lib.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")
        self.lib.crypto_box_seal_open.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_char_p]
        self.lib.crypto_box_seal.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p]
        self.lib.crypto_box_open_easy.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_char_p,
            ctypes.c_char_p]

    def keypair(self):
        pk = ctypes.create_string_buffer(self.PUBLICKEYBYTES)
        sk = ctypes.create_string_buffer(self.SECRETKEYBYTES)
        if self.lib.crypto_box_keypair(pk, sk) != 0:
            raise RuntimeError("crypto_box_keypair failed")
        return pk.raw, sk.raw

    def seal_open(self, sealed, pk, sk):
        """The plaintext, or None when ``sealed`` was not sealed to ``pk``."""
        head = len(self.BATCH_MAGIC) + self.PUBLICKEYBYTES + self.NONCEBYTES
        if len(sealed) >= head + self.MACBYTES and sealed.startswith(self.BATCH_MAGIC):
            ephemeral = sealed[len(self.BATCH_MAGIC):len(self.BATCH_MAGIC) + self.PUBLICKEYBYTES]
            nonce = sealed[head - self.NONCEBYTES:head]
            out = ctypes.create_string_buffer(len(sealed) - head - self.MACBYTES)
            if self.lib.crypto_box_open_easy(out, sealed[head:], len(sealed) - head, nonce,
                                             ephemeral, sk) == 0:
                return out.raw
        if len(sealed) < self.SEALBYTES:
            return None
        out = ctypes.create_string_buffer(len(sealed) - self.SEALBYTES)
        if self.lib.crypto_box_seal_open(out, sealed, len(sealed), pk, sk) != 0:
            return None
        return out.raw


_SODIUM = None


def sodium():
    global _SODIUM
    if _SODIUM is None:
        _SODIUM = _Sodium()
    return _SODIUM


# ---- webhook bodies -------------------------------------------------------

def meta_json(obj):
    """Serialise like Meta: compact, "/" as "\\/", non-ASCII as lowercase \\uXXXX."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    return text.replace("/", "\\/").encode("ascii")


def sign(body, secret=DEFAULT_SECRET):
    """The X-Hub-Signature-256 value for the raw ``body`` bytes."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_sha1(body, secret=DEFAULT_SECRET):
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


_COUNTER = [0]


def new_wamid():
    _COUNTER[0] += 1
    return "wamid.TEST%06d%s" % (_COUNTER[0], os.urandom(6).hex().upper())


def text_message(text="hello", wamid=None, sender="4917012345678", timestamp=1751247548):
    return {"from": sender, "id": wamid or new_wamid(), "timestamp": str(timestamp),
            "type": "text", "text": {"body": text}}


def status_item(wamid, status="delivered", recipient="4917012345678", timestamp=1751247600):
    return {"id": wamid, "status": status, "timestamp": str(timestamp), "recipient_id": recipient}


def change(pnid=DEFAULT_PNID, messages=None, statuses=None, field="messages", value=None):
    """One entry of ``changes[]``; ``value`` overrides everything else."""
    if value is None:
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid}}
        if messages is not None:
            value["contacts"] = [{"profile": {"name": "Kunde"}, "wa_id": m.get("from", "")}
                                 for m in messages[:1]]
            value["messages"] = messages
        if statuses is not None:
            value["statuses"] = statuses
    return {"field": field, "value": value}


def envelope(changes, waba_id=DEFAULT_WABA_ID, entry_time=None):
    entry = {"id": waba_id, "changes": changes}
    if entry_time is not None:
        entry["time"] = entry_time
    return {"object": "whatsapp_business_account", "entry": [entry]}


def webhook_body(pnid=DEFAULT_PNID, waba_id=DEFAULT_WABA_ID, text="hello", wamid=None):
    """A Meta-style body with one text message (bytes)."""
    return meta_json(envelope([change(pnid, messages=[text_message(text, wamid)])], waba_id))


# ---- accounts -------------------------------------------------------------

class Account:
    """A registration and the key pair its events are sealed to."""

    def __init__(self, pnid=DEFAULT_PNID, waba_id=DEFAULT_WABA_ID, secret=DEFAULT_SECRET,
                 verify_token=DEFAULT_VERIFY_TOKEN):
        self.pnid = pnid
        self.waba_id = waba_id
        self.secret = secret
        self.verify_token = verify_token
        self.pk, self.sk = sodium().keypair()

    @property
    def public_key(self):
        return base64.b64encode(self.pk).decode("ascii")

    def registration(self, port=0, path="/webhook", bind="127.0.0.1", keep_running=True, **extra):
        reg = {"account": self.pnid, "waba_id": self.waba_id or "", "app_secret": self.secret,
               "verify_token": self.verify_token or "", "bind": bind, "port": port,
               "path": path, "public_key": self.public_key, "keep_running": keep_running,
               "tls_cert": "", "tls_key": "", "allow_public_http": False}
        reg.update(extra)
        return reg

    def open(self, event):
        """The plaintext envelope (a dict) of an EVENT payload; fails if not ours."""
        sealed = base64.b64decode(event["sealed"])
        plain = sodium().seal_open(sealed, self.pk, self.sk)
        if plain is None:
            raise AssertionError("event %s is not sealed to account %s" % (event.get("seq"), self.pnid))
        return json.loads(plain)


def values_of(envelope_dict):
    """The ``value`` objects of a (single-change) envelope."""
    return [c["value"] for e in envelope_dict["entry"] for c in e["changes"]]


# ---- the socket client ----------------------------------------------------

class Client:
    """One connection to rx.sock, speaking PROTOCOL.md."""

    def __init__(self, path, hello=True, timeout=DEFAULT_TIMEOUT):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.events = []   # EVENT payloads not yet taken by next_event()
        self.notices = []  # NOTICE payloads
        self.listens = []  # LISTEN payloads
        self.closed = False
        self.timeout = timeout
        if hello:
            try:
                self.hello()
            except BaseException:
                self.close()
                raise

    def close(self):
        if not self.closed:
            self.closed = True
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def send(self, verb, payload=None):
        line = verb if payload is None else verb + " " + json.dumps(payload, separators=(",", ":"))
        self.send_raw(line + "\n")

    def read_line(self, timeout=None):
        """The next line as (verb, payload or None); raises RxClosed at EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the receiver")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                raise TimeoutError("no line from the receiver")
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise RxClosed("the receiver closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        text = line.decode("utf-8")
        verb, _, rest = text.partition(" ")
        return verb, (json.loads(rest) if rest else None)

    def _collect(self, verb, payload):
        if verb == "EVENT":
            self.events.append(payload)
            return True
        if verb == "NOTICE":
            self.notices.append(payload)
            return True
        if verb == "LISTEN":
            self.listens.append(payload)
            return True
        return False

    def answer(self, timeout=None):
        """The next OK/ERR answer; OK's payload is returned, ERR raises RxError."""
        while True:
            verb, payload = self.read_line(timeout)
            if self._collect(verb, payload):
                continue
            if verb == "OK":
                return payload
            if verb == "ERR":
                raise RxError(payload.get("code"), payload.get("message"))
            raise AssertionError("unexpected line %s %r" % (verb, payload))

    def request(self, verb, payload=None, timeout=None):
        self.send(verb, payload)
        return self.answer(timeout)

    def hello(self, proto=1):
        return self.request("HELLO", {"proto": proto, "client": "rxctl"})

    def register(self, registration):
        """REGISTER. Like the plugin, registers again on a new connection when
        the receiver restarts to widen its confinement to new TLS files
        (ERR restart, and the connection closes)."""
        try:
            return self.request("REGISTER", registration)
        except RxError as err:
            if err.code != "restart":
                raise
        self.reconnect()
        return self.request("REGISTER", registration)

    def reconnect(self):
        """A new connection (and HELLO) to the same socket, once it answers:
        the restarted receiver's socket (another inode), not the old one that
        may still accept while it stops."""
        def identity():
            # the inode number alone may be reused by the new socket file
            st = os.stat(self.path)
            return (st.st_ino, st.st_ctime_ns)

        try:
            old = identity()
        except OSError:
            old = None
        self.close()

        def connected():
            try:
                if identity() == old:
                    return None
            except OSError:
                return None
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                return None
            return sock
        self.sock = wait_until(connected, self.timeout, interval=0.05, what="the receiver to come back")
        self.buf = b""
        self.closed = False
        self.hello()

    def subscribe(self, account):
        return self.request("SUBSCRIBE", {"account": account})

    def ack(self, account, seq):
        return self.request("ACK", {"account": account, "seq": seq})

    def unregister(self, account):
        return self.request("UNREGISTER", {"account": account})

    def status(self):
        return self.request("STATUS")

    def poll(self, timeout):
        """Read unsolicited lines for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                verb, payload = self.read_line(left)
            except TimeoutError:
                return
            if not self._collect(verb, payload):
                raise AssertionError("unexpected line %s %r" % (verb, payload))

    def next_event(self, timeout=None):
        """The next EVENT payload (waiting for it)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.events:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no EVENT arrived")
            self.poll(min(left, 0.2))
        return self.events.pop(0)

    def wait_events(self, n, timeout=None):
        return [self.next_event(timeout) for _ in range(n)]

    def wait_notice(self, code, timeout=None):
        def found():
            for notice in self.notices:
                if notice.get("code") == code:
                    return notice
            self.poll(0.1)
            return None
        return wait_until(found, timeout or self.timeout, interval=0, what="NOTICE " + code)

    def wait_listen(self, listening, timeout=None):
        """The first LISTEN payload whose "listening" is ``listening``."""
        def found():
            for payload in self.listens:
                if payload.get("listening") is listening:
                    return payload
            self.poll(0.1)
            return None
        return wait_until(found, timeout or self.timeout, interval=0,
                          what="LISTEN listening=%s" % listening)

    def expect_closed(self, timeout=None):
        """Lines until EOF (collected); fails if the connection stays open."""
        lines = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            try:
                lines.append(self.read_line(deadline - time.monotonic()))
            except RxClosed:
                return lines
            except TimeoutError:
                break
        raise AssertionError("the receiver kept the connection open; got %r" % lines)


# ---- HTTP -----------------------------------------------------------------

def http_request(url, method="GET", body=None, headers=None, timeout=DEFAULT_TIMEOUT,
                 context=None):
    """(status, body bytes, headers dict with lower-case names)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout,
                                           context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}
    finally:
        conn.close()


def post_webhook(url, body, secret=DEFAULT_SECRET, signature=None, headers=None, **kw):
    """POST a webhook body signed with ``secret`` (or the given ``signature``;
    ``signature=False`` sends no header)."""
    all_headers = {"Content-Type": "application/json"}
    if signature is None:
        all_headers["X-Hub-Signature-256"] = sign(body, secret)
    elif signature is not False:
        all_headers["X-Hub-Signature-256"] = signature
    all_headers.update(headers or {})
    return http_request(url, "POST", body, all_headers, **kw)


def verify_get(url, mode="subscribe", challenge="1158201444", token=DEFAULT_VERIFY_TOKEN, **kw):
    query = {}
    if mode is not None:
        query["hub.mode"] = mode
    if challenge is not None:
        query["hub.challenge"] = challenge
    if token is not None:
        query["hub.verify_token"] = token
    return http_request(url + "?" + urllib.parse.urlencode(query), "GET", **kw)


# ---- the receiver process -------------------------------------------------

class Receiver:
    """A wabiz-receiver process in the foreground, with its state directory."""

    def __init__(self, binary, directory, args, proc, log_path):
        self.binary = binary
        self.dir = directory
        self.args = args
        self.proc = proc
        self.log_path = log_path
        self.sock_path = os.path.join(directory, "rx.sock")

    @staticmethod
    def build_args(binary, directory, opts):
        args = [binary, "--dir", directory]
        for key, value in opts.items():
            if value is None or value is False:
                continue
            args.append("--" + key.replace("_", "-"))
            if value is not True:
                args.append(str(value))
        wrapper = os.environ.get("RXCTL_WRAPPER")
        return (shlex.split(wrapper) if wrapper else []) + args

    @classmethod
    def start(cls, binary, directory, timeout=DEFAULT_TIMEOUT, **opts):
        """Start the receiver on ``directory`` and wait until it answers STATUS."""
        args = cls.build_args(binary, directory, opts)
        log_path = directory.rstrip("/") + ".stderr"
        log = open(log_path, "ab")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        rx = cls(binary, directory, args, proc, log_path)
        rx.wait_ready(timeout)
        return rx

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("wabiz-receiver exited with %s while starting:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                with Client(self.sock_path, timeout=timeout) as c:
                    return c.status()
            except (OSError, RxClosed, TimeoutError):
                return None
        return wait_until(ready, timeout, interval=0.02, what="rx.sock to answer STATUS")

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def client(self, hello=True):
        return Client(self.sock_path, hello=hello)

    def status(self):
        with self.client() as c:
            return c.status()

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("wabiz-receiver did not exit within %.1f s of SIGTERM:\n%s"
                                     % (timeout, self.log()))
        return self.proc.returncode

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("wabiz-receiver is still running after %.1f s" % timeout)

    def restart(self, timeout=DEFAULT_TIMEOUT, **opts):
        """A new process on the same directory (this one must have exited)."""
        assert self.proc.poll() is not None, "stop the receiver first"
        return Receiver.start(self.binary, self.dir, timeout=timeout, **opts)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()


def run_cli(binary, directory, *args, timeout=DEFAULT_TIMEOUT):
    """Run ``wabiz-receiver --dir directory args...``; (returncode, stdout, stderr)."""
    wrapper = os.environ.get("RXCTL_WRAPPER")
    cmd = (shlex.split(wrapper) if wrapper else []) + [binary, "--dir", directory] + list(args)
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


def make_cert(directory):
    """A self-signed EC certificate for 127.0.0.1 and its key, made with the
    openssl command in @directory (created); (cert path, key path)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise AssertionError("the openssl command is needed for the TLS tests (apt-get install openssl)")
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    done = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                           "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                           "-addext", "subjectAltName=IP:127.0.0.1"],
                          capture_output=True, timeout=60)
    if done.returncode != 0:
        raise AssertionError("openssl failed: %s" % done.stderr.decode("utf-8", "replace"))
    return cert, key


def tls_client_context(cafile):
    """An SSL context that trusts exactly ``cafile`` (a self-signed cert)."""
    context = ssl.create_default_context(cafile=cafile)
    context.check_hostname = False
    return context


class ReceiverCase(unittest.TestCase):
    """A test with its own state directory (self.dir) that starts receivers
    (self.receivers) and clients (self.clients): at the end the clients are
    closed, each receiver still running is stopped and must exit 0 (a
    sanitizer report or a leak makes it non-zero), and the last receiver's
    log is written to stderr (meson shows it only when the test fails)."""

    binary = os.environ.get("WABIZ_RECEIVER")
    tmp_prefix = "rxtest-"

    def setUp(self):
        if not self.binary:
            self.fail("WABIZ_RECEIVER must name the built wabiz-receiver")
        self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)
        self.dir = os.path.join(self.tmp, "state")
        self.receivers = []
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        bad_exits = []
        for rx in self.receivers:
            if rx.alive():
                code = rx.stop()
                if code != 0:
                    bad_exits.append(code)
        for rx in self.receivers[-1:]:
            sys.stderr.write("---- receiver log ----\n" + rx.log())
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertEqual(bad_exits, [], "the receiver exited with an error at SIGTERM")

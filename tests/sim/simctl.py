"""simctl: drive wabiz-sim (the Cloud API simulator) from Python tests.

Standard library only. Other test suites import this module, so the API
below is kept stable:

    from simctl import Sim, WebhookReceiver

    with WebhookReceiver() as hooks, Sim.start(sim_binary) as sim:
        sim.webhook(url=hooks.url)
        status, body, headers = sim.send_text("+4917012345678", "hello")
        sim.inbound(**{"from": "4917012345678"}, text="hi")
        hooks.wait_for(lambda got: len(got) >= 1)

Nothing here sleeps for correctness: waiting is polling against a deadline
(``wait_until``), so tests stay deterministic on slow machines.
"""

import base64
import hashlib
import hmac
import http.client
import http.server
import json
import os
import selectors
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_PNID = "106540352242922"
DEFAULT_WABA_ID = "102290129340398"
DEFAULT_DISPLAY_NUMBER = "+1 555-078-3881"
DEFAULT_VERIFIED_NAME = "Jaspers Market"
DEFAULT_TOKEN = "TEST-TOKEN-OK"
DEFAULT_TOKEN_NO_PERMISSION = "TEST-TOKEN-NOPERM"
DEFAULT_APP_SECRET = "test-app-secret"
DEFAULT_VERSION = "v25.0"
# slower under sanitizers and valgrind: the hosts' factor applies here too
DEFAULT_TIMEOUT = 10.0 * float(os.environ.get("HOSTCTL_TIMEOUT_FACTOR", "1"))

# Sentinel: "use the simulator's full-permission token".
DEFAULT = object()

# A realistic catalogue (Sim.add_sample_templates): each kind of template the
# plugin meets, shaped as GET /<waba>/message_templates gives them.
SAMPLE_TEMPLATES = [
    {"name": "hello_world", "language": "en_US", "category": "UTILITY",
     "components": [
         {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
         {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your "
                                 "ability to send a message notification from WhatsApp Business "
                                 "Platform's Cloud API. Thank you for taking the time to test "
                                 "with us."},
         {"type": "FOOTER", "text": "WhatsApp Business API Team"}]},
    {"name": "order_shipped", "language": "en_US", "category": "UTILITY",
     "components": [
         {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}",
          "example": {"header_text": ["#4711"]}},
         {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way and arrives {{3}}.",
          "example": {"body_text": [["Anna", "#4711", "tomorrow"]]}},
         {"type": "FOOTER", "text": "Reply STOP to opt out"},
         {"type": "BUTTONS", "buttons": [
             {"type": "URL", "text": "Track parcel", "url": "https://example.com/track/{{1}}",
              "example": ["https://example.com/track/4711"]},
             {"type": "QUICK_REPLY", "text": "Stop updates"}]}]},
    {"name": "appointment_reminder", "language": "de", "category": "UTILITY",
     "parameter_format": "NAMED",
     "components": [
         {"type": "BODY", "text": "Hallo {{first_name}}, Ihr Termin ist am {{date}} um {{time}}.",
          "example": {"body_text_named_params": [
              {"param_name": "first_name", "example": "Anna"},
              {"param_name": "date", "example": "Montag"},
              {"param_name": "time", "example": "10:00"}]}}]},
    {"name": "appointment_reminder", "language": "en_US", "category": "UTILITY",
     "parameter_format": "NAMED",
     "components": [
         {"type": "BODY", "text": "Hi {{first_name}}, your appointment is on {{date}} at {{time}}.",
          "example": {"body_text_named_params": [
              {"param_name": "first_name", "example": "Anna"},
              {"param_name": "date", "example": "Monday"},
              {"param_name": "time", "example": "10:00"}]}}]},
    {"name": "invoice_ready", "language": "en_US", "category": "UTILITY",
     "components": [
         {"type": "HEADER", "format": "DOCUMENT",
          "example": {"header_handle": ["4::aW52b2ljZS5wZGY="]}},
         {"type": "BODY", "text": "Your invoice {{1}} is ready.",
          "example": {"body_text": [["INV-42"]]}}]},
    {"name": "fall_sale", "language": "en_US", "category": "MARKETING",
     "components": [
         {"type": "HEADER", "format": "IMAGE",
          "example": {"header_handle": ["4::c2FsZS5qcGc="]}},
         {"type": "BODY", "text": "Hi {{1}}, our Fall Sale is on! Use code {{2}} for 25% off.",
          "example": {"body_text": [["Mark", "FALL25"]]}},
         {"type": "FOOTER", "text": "Not interested? Tap Stop promotions"},
         {"type": "BUTTONS", "buttons": [
             {"type": "QUICK_REPLY", "text": "Stop promotions"},
             {"type": "COPY_CODE", "example": "FALL25"}]}]},
    {"name": "login_code", "language": "en_US", "category": "AUTHENTICATION",
     "components": [
         {"type": "BODY", "text": "*{{1}}* is your verification code.",
          "add_security_recommendation": True},
         {"type": "FOOTER", "text": "This code expires in 10 minutes.",
          "code_expiration_minutes": 10},
         {"type": "BUTTONS", "buttons": [
             {"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]},
    {"name": "summer_picks", "language": "en_US", "category": "MARKETING",
     "components": [
         {"type": "BODY", "text": "Summer is here, {{1}}! Swipe through our picks of the week.",
          "example": {"body_text": [["Anna"]]}},
         {"type": "CAROUSEL", "cards": [
             {"components": [
                 {"type": "HEADER", "format": "IMAGE",
                  "example": {"header_handle": ["4::aGF0LmpwZw=="]}},
                 {"type": "BODY", "text": "Straw hat in {{1}}, now {{2}}.",
                  "example": {"body_text": [["red", "15 EUR"]]}},
                 {"type": "BUTTONS", "buttons": [
                     {"type": "QUICK_REPLY", "text": "More like this"},
                     {"type": "URL", "text": "Buy now", "url": "https://shop.example/p/{{1}}",
                      "example": ["https://shop.example/p/hat-red"]}]}]},
             {"components": [
                 {"type": "HEADER", "format": "IMAGE",
                  "example": {"header_handle": ["4::dG93ZWwuanBn"]}},
                 {"type": "BODY", "text": "Beach towel, now {{1}}.",
                  "example": {"body_text": [["9 EUR"]]}},
                 {"type": "BUTTONS", "buttons": [
                     {"type": "QUICK_REPLY", "text": "More like this"},
                     {"type": "URL", "text": "Buy now", "url": "https://shop.example/p/{{1}}",
                      "example": ["https://shop.example/p/towel"]}]}]}]}]},
    {"name": "hot_deal", "language": "en_US", "category": "MARKETING",
     "components": [
         {"type": "HEADER", "format": "IMAGE",
          "example": {"header_handle": ["4::ZGVhbC5qcGc="]}},
         {"type": "LIMITED_TIME_OFFER",
          "limited_time_offer": {"text": "Expiring offer!", "has_expiration": True}},
         {"type": "BODY", "text": "Good news, {{1}}! Use code {{2}} for 25% off all packages.",
          "example": {"body_text": [["Pablo", "HOT25"]]}},
         {"type": "BUTTONS", "buttons": [
             {"type": "COPY_CODE", "example": "HOT25"},
             {"type": "URL", "text": "Book now", "url": "https://shop.example/offers?code={{1}}",
              "example": ["https://shop.example/offers?code=n3mtql"]}]}]},
    {"name": "spring_sale", "language": "en_US", "category": "MARKETING", "status": "PAUSED",
     "quality_score": "RED",
     "components": [{"type": "BODY", "text": "Spring deals for {{1}}!",
                     "example": {"body_text": [["you"]]}}]},
    {"name": "old_promo", "language": "en_US", "category": "MARKETING", "status": "DISABLED",
     "components": [{"type": "BODY", "text": "Old promotion"}]},
    {"name": "new_feature", "language": "en_US", "category": "MARKETING", "status": "PENDING",
     "components": [{"type": "BODY", "text": "Something new is coming."}]},
]


def _text_params(*values, names=None):
    params = [{"type": "text", "text": v} for v in values]
    for param, name in zip(params, names or []):
        param["parameter_name"] = name
    return params


# For each APPROVED sample: (name, language) -> "components" of a valid send
# (header media by link; Sim.sample_send builds the whole request).
SAMPLE_SENDS = {
    ("hello_world", "en_US"): [],
    ("order_shipped", "en_US"): [
        {"type": "header", "parameters": _text_params("#4711")},
        {"type": "body", "parameters": _text_params("Anna", "#4711", "tomorrow")},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": _text_params("4711")}],
    ("appointment_reminder", "de"): [
        {"type": "body", "parameters": _text_params("Anna", "Montag", "10:00",
                                                    names=["first_name", "date", "time"])}],
    ("appointment_reminder", "en_US"): [
        {"type": "body", "parameters": _text_params("Anna", "Monday", "10:00",
                                                    names=["first_name", "date", "time"])}],
    ("invoice_ready", "en_US"): [
        {"type": "header", "parameters": [
            {"type": "document", "document": {"link": "https://example.com/inv-42.pdf",
                                              "filename": "INV-42.pdf"}}]},
        {"type": "body", "parameters": _text_params("INV-42")}],
    ("fall_sale", "en_US"): [
        {"type": "header", "parameters": [
            {"type": "image", "image": {"link": "https://example.com/sale.jpg"}}]},
        {"type": "body", "parameters": _text_params("Mark", "FALL25")},
        {"type": "button", "sub_type": "copy_code", "index": 1,
         "parameters": [{"type": "coupon_code", "coupon_code": "FALL25"}]}],
    ("summer_picks", "en_US"): [
        {"type": "body", "parameters": _text_params("Anna")},
        {"type": "carousel", "cards": [
            {"card_index": i, "components": [
                {"type": "header", "parameters": [
                    {"type": "image", "image": {"link": "https://example.com/card%d.jpg" % i}}]},
                {"type": "body", "parameters": _text_params(*values)},
                {"type": "button", "sub_type": "quick_reply", "index": "0",
                 "parameters": [{"type": "payload", "payload": "MORE_%d" % i}]},
                {"type": "button", "sub_type": "url", "index": "1",
                 "parameters": _text_params(suffix)}]}
            for i, values, suffix in ((0, ("red", "15 EUR"), "hat-red"),
                                      (1, ("9 EUR",), "towel"))]}],
    # the offer ends on 2100-01-01 (UNIX milliseconds): after the simulator's clock
    ("hot_deal", "en_US"): [
        {"type": "header", "parameters": [
            {"type": "image", "image": {"link": "https://example.com/deal.jpg"}}]},
        {"type": "body", "parameters": _text_params("Pablo", "HOT25")},
        {"type": "limited_time_offer", "parameters": [
            {"type": "limited_time_offer",
             "limited_time_offer": {"expiration_time_ms": 4102444800000}}]},
        {"type": "button", "sub_type": "copy_code", "index": 0,
         "parameters": [{"type": "coupon_code", "coupon_code": "HOT25"}]},
        {"type": "button", "sub_type": "url", "index": 1, "parameters": _text_params("n3mtql")}],
    ("login_code", "en_US"): [
        {"type": "body", "parameters": _text_params("123456")},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": _text_params("123456")}],
}

# Loopback only: never let an http_proxy variable reroute test traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SimError(Exception):
    """A control call failed, or the simulator did not start or stop."""


class SimConnectionError(ConnectionError):
    """The simulator closed the connection without an answer (a reset fault)."""


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02, what="condition"):
    """Poll ``predicate()`` until it returns a true value; return that value.

    Raises AssertionError naming ``what`` when ``timeout`` seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def sign(body, secret=DEFAULT_APP_SECRET):
    """The X-Hub-Signature-256 value Meta sends for ``body`` (bytes or str)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def sign_sha1(body, secret=DEFAULT_APP_SECRET):
    """The legacy X-Hub-Signature value (HMAC-SHA1) for ``body``."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def verify_signature(body, header, secret=DEFAULT_APP_SECRET):
    """True when ``header`` is the X-Hub-Signature-256 of the raw ``body``."""
    if not header:
        return False
    return hmac.compare_digest(header, sign(body, secret))


def statuses_of(body):
    """All ``statuses[]`` objects of a webhook body (bytes, str or dict)."""
    return _values_of(body, "statuses")


def messages_of(body):
    """All ``messages[]`` objects of a webhook body (bytes, str or dict)."""
    return _values_of(body, "messages")


def _values_of(body, member):
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    found = []
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            found.extend(change.get("value", {}).get(member, []))
    return found


class Sim:
    """A running wabiz-sim process and a client for its Graph and control APIs.

    Create one with ``Sim.start(binary, **opts)``; ``opts`` are the command
    line options with underscores (``pnid``, ``display_number``,
    ``verified_name``, ``waba_id``, ``token``, ``token_no_permission``,
    ``app_secret``, ``webhook_url``, ``bind``, ``port``, ``ready_file``;
    ``number``, a list of ``"ID=DISPLAY"``, adds phone numbers of the same
    business). The attributes of the same names hold the values in use;
    ``pnids`` lists every phone number id, the first one first.
    """

    def __init__(self, proc, base_url, opts):
        self.proc = proc
        self.base_url = base_url
        self.pnid = opts.get("pnid", DEFAULT_PNID)
        self.pnids = [self.pnid] + [n.split("=", 1)[0] for n in opts.get("number", ())]
        self.waba_id = opts.get("waba_id", DEFAULT_WABA_ID)
        self.display_number = opts.get("display_number", DEFAULT_DISPLAY_NUMBER)
        self.verified_name = opts.get("verified_name", DEFAULT_VERIFIED_NAME)
        self.token = opts.get("token", DEFAULT_TOKEN)
        self.token_no_permission = opts.get("token_no_permission", DEFAULT_TOKEN_NO_PERMISSION)
        self.app_secret = opts.get("app_secret", DEFAULT_APP_SECRET)
        self.version = DEFAULT_VERSION
        self._graph_url = None

    @property
    def graph_url(self):
        """The Graph port's base URL: Graph routes (and /_sim/) as on
        ``base_url``, but a ``refuse`` fault refuses its connections. Point a
        client under test here when an outage should refuse it."""
        if self._graph_url is None:
            self._graph_url = self.info()["graph_url"]
        return self._graph_url

    # ---- process management -------------------------------------------

    @classmethod
    def start(cls, binary, timeout=DEFAULT_TIMEOUT, stderr=None, **opts):
        """Start ``binary`` with ``opts`` and wait for its READY line.

        ``stderr`` is passed to subprocess (default: inherited, so the
        simulator's request log lands in the test log).
        """
        args = [binary]
        for key, value in opts.items():
            if value is None:
                continue
            for one in value if isinstance(value, (list, tuple)) else (value,):
                args += ["--" + key.replace("_", "-"), str(one)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr,
                                stdin=subprocess.DEVNULL)
        line = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    proc.kill()
                    proc.wait()
                    raise SimError("wabiz-sim printed no READY line within %.1f s" % timeout)
                chunk = os.read(proc.stdout.fileno(), 1)
                if not chunk:
                    code = proc.wait()
                    raise SimError("wabiz-sim exited with %s before it was ready" % code)
                line += chunk
        text = line.decode("utf-8").strip()
        prefix = "WABIZ_SIM_READY "
        if not text.startswith(prefix):
            proc.kill()
            proc.wait()
            raise SimError("unexpected first line from wabiz-sim: %r" % text)
        return cls(proc, text[len(prefix):], opts)

    def stop(self, timeout=DEFAULT_TIMEOUT):
        """Send SIGTERM and wait; return the exit status (kills after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise SimError("wabiz-sim did not exit within %.1f s of SIGTERM" % timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- Graph API ------------------------------------------------------

    def graph(self, method, path, body=None, token=DEFAULT, headers=None, raw=None,
              timeout=DEFAULT_TIMEOUT, base=None):
        """Call a Graph route; return ``(status, json_or_None, headers)``.

        ``path`` is relative to the base URL (``/v25.0/<pnid>/messages``);
        ``base`` replaces the base URL (e.g. ``graph_url``).
        ``body`` is JSON-encoded; ``raw`` (bytes or str) is sent as is.
        ``token``: DEFAULT = the full-permission token, None = no
        Authorization header, any string = that bearer token. Header names
        in the result are lower case. Raises SimConnectionError when the
        connection is closed without an answer.
        """
        data = None
        all_headers = {"User-Agent": "simctl/1"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        if raw is not None:
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
            all_headers.setdefault("Content-Type", "application/json")
        if token is DEFAULT:
            token = self.token
        if token is not None:
            all_headers["Authorization"] = "Bearer " + token
        all_headers.update(headers or {})
        request = urllib.request.Request((base or self.base_url) + path, data=data, method=method,
                                         headers=all_headers)
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                status, payload, answer_headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, payload, answer_headers = error.code, error.read(), error.headers
        except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as error:
            raise SimConnectionError(str(error)) from error
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return status, parsed, {k.lower(): v for k, v in answer_headers.items()}

    def messages_path(self, version=None, pnid=None):
        """``/<version>/<pnid>/messages`` for this simulator."""
        return "/%s/%s/messages" % (version or self.version, pnid or self.pnid)

    def send(self, body, token=DEFAULT, version=None):
        """POST ``body`` to the messages endpoint; same result as graph()."""
        return self.graph("POST", self.messages_path(version), body, token=token)

    def send_text(self, to, text, token=DEFAULT, **extra):
        """Send a text message to ``to``; extra members go into the request."""
        body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                "type": "text", "text": {"body": text}}
        body.update(extra)
        return self.send(body, token=token)

    def send_template(self, to, name="hello_world", language="en_US", **extra):
        """Send a template message (allowed outside the 24-hour window)."""
        body = {"messaging_product": "whatsapp", "to": to, "type": "template",
                "template": {"name": name, "language": {"code": language}}}
        body.update(extra)
        return self.send(body)

    def marketing_path(self, version=None, pnid=None):
        """``/<version>/<pnid>/marketing_messages`` for this simulator."""
        return "/%s/%s/marketing_messages" % (version or self.version, pnid or self.pnid)

    def send_marketing(self, body, token=DEFAULT, version=None):
        """POST ``body`` (a template message, as for send()) to the Marketing
        Messages endpoint; same result as graph()."""
        return self.graph("POST", self.marketing_path(version), body, token=token)

    def upload(self, data, mime, filename="file", fields=None, token=DEFAULT, version=None,
               file_type=None):
        """POST ``data`` (bytes) to ``/<version>/<pnid>/media`` as
        multipart/form-data with messaging_product=whatsapp and type=``mime``
        (``fields`` replaces those text fields; a None value leaves one out;
        ``file_type`` is the file part's Content-Type, ``mime`` by default);
        same result as graph(). The media id is ``result[1]["id"]``."""
        boundary = "simctl-" + os.urandom(8).hex()
        form = {"messaging_product": "whatsapp", "type": mime}
        form.update(fields or {})
        parts = []
        for name, value in form.items():
            if value is not None:
                parts.append(('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                              % (boundary, name, value)).encode("utf-8"))
        parts.append(('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                      'Content-Type: %s\r\n\r\n' % (boundary, filename, file_type or mime))
                     .encode("utf-8") + data + b"\r\n")
        parts.append(("--%s--\r\n" % boundary).encode("utf-8"))
        path = "/%s/%s/media" % (version or self.version, self.pnid)
        return self.graph("POST", path, raw=b"".join(parts), token=token,
                          headers={"Content-Type": "multipart/form-data; boundary=" + boundary})

    def uploads(self, since=0):
        """Accepted uploads: seq, id, pnid, messaging_product, type,
        content_type (of the file part), filename, size, sha256 (hex)."""
        return self.control("GET", "uploads", query={"since": since})["uploads"]

    def mark_read(self, message_id, typing=False):
        """Mark an inbound message as read (optionally with a typing indicator)."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        return self.send(body)

    # ---- control API ----------------------------------------------------

    def control(self, method, what, body=None, query=None):
        """Call ``/_sim/<what>``; return the decoded JSON, raise SimError if not 2xx."""
        url = self.base_url + "/_sim/" + what
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with _OPENER.open(request, timeout=DEFAULT_TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise SimError("%s /_sim/%s -> %s %s" % (method, what, error.code,
                                                     error.read().decode("utf-8", "replace")))

    def info(self):
        """Base URL, phone number id, WABA id, display number, verified name."""
        return self.control("GET", "info")

    def sent(self, since=0):
        """Accepted sends, oldest first: dicts with seq, wamid, pnid, to, wa_id,
        user_id, type, request (the JSON as received), authorization (raw
        header), window_open, time."""
        return self.control("GET", "sent", query={"since": since})["messages"]

    def reads(self, since=0):
        """Mark-as-read calls: seq, message_id, typing_indicator, request, authorization, time."""
        return self.control("GET", "reads", query={"since": since})["reads"]

    def requests(self, since=0):
        """Every Graph request: seq, method, path, query, status, error_code,
        authorization (bool), user_agent, content_type, fault, reset, time."""
        return self.control("GET", "requests", query={"since": since})["requests"]

    def webhooks(self, since=0):
        """Webhook delivery attempts: seq, delivery, duplicate_of, kind, attempt,
        url, body, signature_256, signature_1, status (0 = no answer), error,
        final, time."""
        return self.control("GET", "webhooks", query={"since": since})["deliveries"]

    def clock(self):
        """The simulator's clock, unix seconds."""
        return self.control("GET", "clock")["now"]

    def clock_advance(self, seconds):
        """Move the simulator's clock forward; return the new time."""
        return self.control("POST", "clock", {"advance": seconds})["now"]

    def clock_set(self, unix_seconds):
        """Set the simulator's clock; return the new time."""
        return self.control("POST", "clock", {"set": unix_seconds})["now"]

    def clock_freeze(self, frozen=True):
        """Stop (or restart) real time flowing into the simulator's clock."""
        return self.control("POST", "clock", {"freeze": frozen})["now"]

    def fault(self, **rule):
        """Append a fault rule: path, method, status, code, subcode, message,
        details, body, content_type, count (default 1, -1 = until cleared),
        reset, delay_ms, process, process_before_delay, probability (0..1,
        drawn from the rule's own generator seeded with seed), seed,
        duration_ms (the rule's lifetime). Returns the number of rules.
        ``refuse=True, duration_ms=N`` instead refuses connections to the
        Graph port (``graph_url``) for N ms (see refuse())."""
        return self.control("POST", "fault", rule)["faults"]

    def refuse(self, duration_ms):
        """An outage: connections to ``graph_url`` are refused for
        ``duration_ms`` and the open ones are shut down; the main port and
        the control API keep working. Returns the ms left."""
        return self.control("POST", "fault", {"refuse": True, "duration_ms": duration_ms})["refusing_ms"]

    def refusing_ms(self):
        """Milliseconds the Graph port still refuses connections (0 = none)."""
        return self.control("GET", "fault")["refusing_ms"]

    def faults(self):
        """The fault rules still active."""
        return self.control("GET", "fault")["faults"]

    def clear_faults(self):
        """Remove all fault rules."""
        self.control("DELETE", "fault")

    def inbound(self, text=None, **fields):
        """Emit an inbound-message webhook; return {"id", "body", "delivery"}.

        ``fields`` are the members of POST /_sim/inbound: from (use
        ``**{"from": "4917..."}`` or ``sender=``), name, timestamp, user_id,
        no_phone, username, type plus its object, context, referral, errors, id.
        """
        if "sender" in fields:
            fields["from"] = fields.pop("sender")
        if text is not None:
            fields["text"] = text
        return self.control("POST", "inbound", fields)

    def inbound_kind(self, kind, sender=None, **params):
        """Emit an inbound message of ``kind`` (a key of KINDS: location,
        contacts, button_reply, list_reply, nfm_reply, call_permission_reply,
        button, order, reaction, edit, revoke, unsupported, request_welcome,
        user_changed_user_id, from_ad) built by ``kind_fields``; the other
        ``params`` are those of that kind, or members of POST /_sim/inbound
        (name, user_id, no_phone, username, context, timestamp, id)."""
        fields = kind_fields(kind, **params)
        if sender is not None:
            fields["from"] = sender
        return self.control("POST", "inbound", fields)

    def call(self, sender=None, **fields):
        """Emit a voice call webhook (field "calls"); return {"id" (the
        wacid), "body", "delivery"}. ``fields``: user_id, name, event
        (connect, the default, or terminate), status, duration, timestamp."""
        if sender is not None:
            fields["from"] = sender
        return self.control("POST", "call", fields)
    def media(self, content=None, size=None, **fields):
        """Register inbound media (POST /_sim/media); return {"id", "sha256"
        (base64, as webhooks give it), "sha256_hex", "size", "mime_type",
        "lookups", "downloads"}.

        ``content`` (bytes) is served as is; ``size`` (with ``seed=``) makes
        up that many bytes on the fly. Other fields: mime_type, age_s,
        wrong_digest, gone, foreign_url, lookup_fail_next, download_fail_next,
        chunk_delay_ms; with ``id=`` they change an existing media.
        """
        if content is not None:
            fields["content_base64"] = base64.b64encode(content).decode("ascii")
        if size is not None:
            fields["size"] = size
        return self.control("POST", "media", fields)

    def media_list(self):
        """Every registered media with its lookup and download counts, by id."""
        return {m["id"]: m for m in self.control("GET", "media")["media"]}

    def inbound_media(self, kind, media, caption=None, filename=None, voice=None, **fields):
        """An inbound message of type ``kind`` (image, document, audio, video,
        sticker) carrying ``media`` (what media() returned)."""
        obj = {"id": media["id"], "mime_type": media["mime_type"], "sha256": media["sha256"]}
        if caption is not None:
            obj["caption"] = caption
        if filename is not None:
            obj["filename"] = filename
        if voice is not None:
            obj["voice"] = voice
        fields["type"] = kind
        fields[kind] = obj
        return self.inbound(**fields)

    def inbound_bulk(self, senders, count, text=None, first=None, per_body=None, name=None,
                     timestamp=None):
        """Emit ``count`` inbound text messages at once; return {"deliveries":
        [delivery id of each webhook], "messages", "bodies"}.

        Message ``first + i`` comes from ``senders[(first + i) % len(senders)]``
        with ``text`` (default "message {n}"; ``{n}`` is its number, ``{from}``
        the sender). ``per_body`` messages share one webhook (one change, as
        Meta batches them); default 1. Needs a webhook URL.
        """
        request = {"from": list(senders), "count": count}
        for key, value in (("text", text), ("first", first), ("per_body", per_body),
                           ("name", name), ("timestamp", timestamp)):
            if value is not None:
                request[key] = value
        return self.control("POST", "inbound_bulk", request)

    def status(self, wamid, status, **fields):
        """Emit a status webhook for a sent message (errors, timestamp optional)."""
        fields.update({"wamid": wamid, "status": status})
        return self.control("POST", "status", fields)

    def portfolio(self):
        """The portfolio's messaging-limit counter: {limit (0 = unlimited),
        used, window_s, recipients: [{customer, time}]}."""
        return self.control("GET", "portfolio")

    def user_preferences(self, wa_id, value="stop", **fields):
        """Emit a user_preferences webhook (value stop or resume; category,
        detail, timestamp, name optional). "stop" also makes the customer's
        marketing templates fail with 131050; "resume" ends that."""
        fields.update({"wa_id": wa_id, "value": value})
        return self.control("POST", "user_preferences", fields)

    def webhook_raw(self, body, sign=True, secret=None):
        """Emit an arbitrary webhook body, signed (optionally with another secret) or not."""
        request = {"body": body, "sign": sign}
        if secret is not None:
            request["secret"] = secret
        return self.control("POST", "webhook_raw", request)

    def config(self, **knobs):
        """Change knobs (throughput_mps, pair_burst, pair_refill_s, auto_statuses,
        status_delay_ms, wa_id_rewrite, templates_missing, templates,
        expired_tokens, groups, management_calls_per_hour,
        management_exhausted, marketing_disabled, marketing_opted_out,
        marketing_limited, maintenance, portfolio_limit, latency_ms); with no arguments just return the current ones."""
        if not knobs:
            return self.control("GET", "config")
        return self.control("POST", "config", knobs)

    def webhook(self, **settings):
        """Change webhook delivery (url, app_secret, retry_base_ms, retry_max_ms,
        max_attempts, duplicate, reorder, reorder_batch, reorder_seed, flush); return the
        settings. With no arguments just return them."""
        if not settings:
            return self.control("GET", "webhook")
        return self.control("POST", "webhook", settings)

    def reset(self):
        """Clear logs, state, faults and knobs (the command line stays)."""
        self.control("POST", "reset", {})

    # ---- template catalogue (GET /<waba>/message_templates) -------------

    def templates_path(self, version=None, waba_id=None):
        """``/<version>/<waba-id>/message_templates`` for this simulator."""
        return "/%s/%s/message_templates" % (version or self.version, waba_id or self.waba_id)

    def list_templates(self, token=DEFAULT, version=None, base=None, **query):
        """GET the catalogue page as the plugin would (query: fields, limit,
        after, before, name, status, category, language); same result as
        graph()."""
        path = self.templates_path(version)
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self.graph("GET", path, token=token, base=base)

    def add_template(self, template):
        """Add or replace (same name and language) one template: a dict shaped
        like Meta's template object (name, language, status="APPROVED",
        category="UTILITY", parameter_format="POSITIONAL", components=[],
        quality_score="UNKNOWN", id=generated, previous_category,
        sub_category, rejected_reason). Returns its id."""
        return self.control("POST", "templates", template)["templates"][0]["id"]

    def add_templates(self, templates):
        """Add or replace several templates at once (all or nothing); returns
        [{id, name, language, replaced}]."""
        return self.control("POST", "templates", {"templates": list(templates)})["templates"]

    def add_sample_templates(self):
        """Fill the catalogue with SAMPLE_TEMPLATES (positional and named,
        text / image / document headers, URL, quick-reply, copy-code and OTP
        buttons, a carousel, a limited-time offer, each category, and PAUSED,
        DISABLED and PENDING ones);
        returns [{id, name, language, replaced}]."""
        return self.add_templates(SAMPLE_TEMPLATES)

    def sample_send(self, to, name, language, **extra):
        """The request body of a valid send of an APPROVED sample template."""
        body = {"messaging_product": "whatsapp", "to": to, "type": "template",
                "template": {"name": name, "language": {"code": language},
                             "components": SAMPLE_SENDS[(name, language)]}}
        body.update(extra)
        return body

    def templates(self):
        """The catalogue as the simulator holds it (every field, quality_score
        as a plain string)."""
        return self.control("GET", "templates")["templates"]

    def delete_template(self, name=None, language=None):
        """Remove templates (all languages of ``name`` without ``language``;
        everything without ``name``), silently; returns how many."""
        query = {k: v for k, v in (("name", name), ("language", language)) if v is not None}
        return self.control("DELETE", "templates", query=query)["deleted"]

    def update_template(self, name, language, **changes):
        """Change status (+ reason, rejection_info, disable_info, other_info),
        quality_score, category and/or components; each change emits its
        signed webhook. Returns {template, deliveries, bodies}."""
        changes.update({"name": name, "language": language})
        return self.control("POST", "templates/update", changes)

    def set_template_status(self, name, language, status, reason=None, **extra):
        """message_template_status_update (event = status)."""
        if reason is not None:
            extra["reason"] = reason
        return self.update_template(name, language, status=status, **extra)

    def set_template_quality(self, name, language, quality):
        """message_template_quality_update (GREEN, YELLOW, RED, UNKNOWN)."""
        return self.update_template(name, language, quality_score=quality)

    def set_template_category(self, name, language, category):
        """template_category_update (MARKETING, UTILITY, AUTHENTICATION)."""
        return self.update_template(name, language, category=category)

    def set_template_components(self, name, language, components):
        """message_template_components_update (components replaced wholesale)."""
        return self.update_template(name, language, components=components)

    def wait_for_sent(self, count, timeout=DEFAULT_TIMEOUT):
        """Wait until at least ``count`` sends were accepted; return them."""
        return wait_until(lambda: (lambda s: s if len(s) >= count else None)(self.sent()),
                          timeout, what="%d accepted sends" % count)


class Received:
    """One webhook POST seen by a WebhookReceiver."""

    def __init__(self, body, headers, answered, path):
        self.body = body            # raw bytes
        self.headers = headers      # dict, lower-case names
        self.answered = answered    # HTTP status we answered
        self.path = path

    @property
    def json(self):
        return json.loads(self.body)

    def signed_ok(self, secret=DEFAULT_APP_SECRET):
        """True when X-Hub-Signature-256 matches the raw body."""
        return verify_signature(self.body, self.headers.get("x-hub-signature-256"), secret)


class WebhookReceiver:
    """A local HTTP server (own thread) that records webhook POSTs.

    ``answers`` is a list of HTTP statuses to answer, one per request, in
    order; once used up every request gets 200. ``set_answers`` replaces it.
    Requests whose body does not arrive in full are not recorded (they only
    increase ``aborted``).
    """

    def __init__(self, answers=None):
        self._lock = threading.Lock()
        self._answers = list(answers or [])
        self.received = []
        self.aborted = 0   # requests whose body never arrived in full
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = self.rfile.read(length)
                except OSError:
                    body = b""
                if len(body) < length:
                    # the sender gave up mid-request (e.g. a delivery cancelled
                    # by a reset): not a delivery, and no answer is used up
                    with receiver._lock:
                        receiver.aborted += 1
                    self.close_connection = True
                    return
                with receiver._lock:
                    status = receiver._answers.pop(0) if receiver._answers else 200
                    receiver.received.append(Received(
                        body, {k.lower(): v for k, v in self.headers.items()}, status,
                        self.path))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.url = "http://127.0.0.1:%d/webhook" % self._server.server_address[1]

    def set_answers(self, answers):
        with self._lock:
            self._answers = list(answers)

    def snapshot(self):
        """A copy of the list of Received, oldest first."""
        with self._lock:
            return list(self.received)

    def clear(self):
        with self._lock:
            self.received = []

    def wait_for(self, predicate, timeout=DEFAULT_TIMEOUT, what="webhooks"):
        """Wait until ``predicate(list_of_received)`` is true; return the list."""
        return wait_until(lambda: (lambda got: got if predicate(got) else None)(self.snapshot()),
                          timeout, what=what)

    def wait_count(self, count, timeout=DEFAULT_TIMEOUT):
        """Wait until at least ``count`` POSTs arrived; return them all."""
        return self.wait_for(lambda got: len(got) >= count, timeout,
                             what="%d webhook deliveries" % count)

    def statuses(self):
        """All status objects received so far, in arrival order."""
        return [s for r in self.snapshot() for s in statuses_of(r.body)]

    def wait_status(self, wamid, status, timeout=DEFAULT_TIMEOUT):
        """Wait for a status webhook ``status`` about ``wamid``; return the status object."""
        def find():
            for s in self.statuses():
                if s.get("id") == wamid and s.get("status") == status:
                    return s
            return None
        return wait_until(find, timeout, what="status %s for %s" % (status, wamid))

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _pop(params, key, default):
    return params.pop(key) if key in params else default


def kind_fields(kind, **params):
    """The members of POST /_sim/inbound for a message of ``kind``, shaped as
    Meta sends it; each kind's own parameters (with defaults) are taken from
    ``params``, the rest are passed on."""
    p = params
    if kind == "location":
        msg = {"type": "location", "location": {
            "latitude": _pop(p, "latitude", 52.520008), "longitude": _pop(p, "longitude", 13.404954)}}
        for key in ("place", "address", "url"):
            if key in p:
                msg["location"]["name" if key == "place" else key] = p.pop(key)
    elif kind == "contacts":
        msg = {"type": "contacts", "contacts": _pop(p, "cards", [{
            "name": {"formatted_name": "Jonas Brandt", "first_name": "Jonas", "last_name": "Brandt"},
            "org": {"company": "Brandt Logistik"},
            "phones": [{"phone": "+49 151 2223334", "wa_id": "491512223334", "type": "CELL"}],
            "emails": [{"email": "jonas@example.com", "type": "WORK"}],
            "urls": [{"url": "https://brandt.example", "type": "WORK"}]}])}
    elif kind in ("button_reply", "list_reply"):
        reply = {"id": _pop(p, "reply_id", "slot-1"), "title": _pop(p, "title", "Tuesday 10-12")}
        if kind == "list_reply":
            reply["description"] = _pop(p, "description", "Delivery between 10 and 12")
        msg = {"type": "interactive", "interactive": {"type": kind, kind: reply}}
    elif kind == "nfm_reply":
        answers = _pop(p, "answers", {"size": "40", "colour": "brown"})
        answers = dict(answers, flow_token="sim-flow-token")
        msg = {"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
            "name": "flow", "body": _pop(p, "body", "Sent"), "response_json": json.dumps(answers)}}}
    elif kind == "call_permission_reply":
        msg = {"type": "interactive", "interactive": {"type": "call_permission_reply", "call_permission_reply": {
            "response": _pop(p, "response", "accept"), "is_permanent": _pop(p, "permanent", False),
            "response_source": "user_action"}}}
    elif kind == "button":
        msg = {"type": "button", "button": {"text": _pop(p, "title", "Stop promotions"),
                                            "payload": _pop(p, "payload", "STOP_PROMOS")}}
    elif kind == "order":
        msg = {"type": "order", "order": {"catalog_id": _pop(p, "catalog_id", "880000000000003"),
                                          "text": _pop(p, "note", ""),
                                          "product_items": _pop(p, "items", [
                                              {"product_retailer_id": "boot-40-brown", "quantity": 1,
                                               "item_price": 89.9, "currency": "EUR"},
                                              {"product_retailer_id": "sock-pack", "quantity": 3,
                                               "item_price": 4.5, "currency": "EUR"}])}}
    elif kind == "reaction":
        msg = {"type": "reaction", "reaction": {"message_id": p.pop("message_id"),
                                                "emoji": _pop(p, "emoji", "\U0001F44D")}}
    elif kind == "edit":
        msg = {"type": "edit", "edit": {"original_message_id": p.pop("message_id"), "message": {
            "type": "text", "text": {"body": p.pop("new_text")}}}}
    elif kind == "revoke":
        msg = {"type": "revoke", "revoke": {"original_message_id": p.pop("message_id")}}
    elif kind == "unsupported":
        msg = {"type": "unsupported", "unsupported": {"type": _pop(p, "what", "poll")},
               "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                           "error_data": {"details": "Message type is currently not supported."}}]}
    elif kind == "request_welcome":
        msg = {"type": "request_welcome"}
    elif kind == "user_changed_user_id":
        new_id = p.pop("new_user_id")
        msg = {"type": "system", "system": {"type": "user_changed_user_id", "user_id": new_id,
                                            "previous_user_id": p.get("user_id"),
                                            "body": "User changed their user ID"}}
    elif kind == "from_ad":
        msg = {"type": "text", "text": {"body": _pop(p, "text", "Is the sale still on?")},
               "referral": {"source_url": _pop(p, "source_url", "https://fb.me/sim-ad"),
                            "source_id": _pop(p, "source_id", "120200000000001"), "source_type": "ad",
                            "headline": _pop(p, "headline", "Winter sale: 30% off"), "body": "Boots and coats",
                            "media_type": "image", "image_url": "https://example.com/ad.jpg",
                            "ctwa_clid": "sim-clid"}}
    else:
        raise ValueError("unknown kind %r" % kind)
    msg.update(p)
    return msg

#!/usr/bin/env python3
"""make-seeds.py: regenerates the seed corpora in fuzz/corpus/<target>/.

Usage: fuzz/make-seeds.py [--spec DIR] [--sim PATH] [--out DIR]

Every seed comes from the project's own webhook fixtures (tests/data/webhooks),
from Meta's published examples when --spec names their folder (the webhook
examples, the send examples, and the response and error examples of the
OpenAPI description; default: ../shared/spec beside the source tree, the
same folder as the meson option meta_examples; without it those seeds are
left out, and the script says so) or, with --sim, from what the Cloud API
simulator (tests/sim, built as build/tests/sim/wabiz-sim) answers and sends. Without --sim the result is the
same on every run; the simulator's seeds carry its random message ids. Each
target's directory is emptied first: the corpus is exactly what this script
writes (saved crashers live in fuzz/crashers/). The record seeds are sealed
with the fixed keys of fuzz-records.c through libsodium (ctypes), with fixed
nonces and ephemeral keys, so they too are the same on every run.

Needs python3-yaml (for the OpenAPI file) and libsodium; nothing here is run
by CI, which only replays what is committed.
"""
import argparse
import ctypes
import ctypes.util
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TARGETS = ["webhook", "signature", "receiver-request", "rxline", "markup", "phone", "graph",
           "records"]

# fuzz-receiver-request.c: mode 1 signs with the first secret, 2 with the second
RX_ACCOUNTS = ["106540352242922", "106540352242923", "106540352242924"]
RX_WABAS = ["102290129340398", "419561257915477"]

MAX_GRAPH_SEEDS = 60


class Corpus:
    def __init__(self, out):
        self.out = out
        self.counts = {}
        self.seen = {}

    def reset(self):
        for target in TARGETS:
            path = os.path.join(self.out, target)
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
            self.counts[target] = 0
            self.seen[target] = set()

    def add(self, target, name, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        if data in self.seen[target]:
            return
        self.seen[target].add(data)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
        with open(os.path.join(self.out, target, safe), "wb") as f:
            f.write(data)
        self.counts[target] += 1


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def meta_escaped(obj):
    """Serialised as Meta sends webhooks: compact, "/" as "\\/", non-ASCII as \\uXXXX."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")


def read_examples(spec, kind):
    return read_folder(os.path.join(spec, "examples", kind))


def read_folder(folder):
    result = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), "rb") as f:
                result.append((name[:-5], f.read()))
    return result


def strings_in(obj, keys):
    """Every string value of a member named in @keys, anywhere in @obj."""
    found = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in keys and isinstance(value, str):
                found.append(value)
            found.extend(strings_in(value, keys))
    elif isinstance(obj, list):
        for value in obj:
            found.extend(strings_in(value, keys))
    return found


# ---- the OpenAPI description --------------------------------------------------

def load_openapi(spec):
    import yaml  # python3-yaml
    path = os.path.join(spec, "business-messaging-api_v23.0.yaml")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def deref(doc, node, depth=0):
    if depth > 20:
        return {}
    if isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {})
        return deref(doc, target, depth + 1)
    return node


def instance(doc, schema, depth=0):
    """An instance of @schema built from its examples (None when it has none)."""
    schema = deref(doc, schema)
    if depth > 8 or not isinstance(schema, dict):
        return None
    if "example" in schema:
        return schema["example"]
    for combo in ("allOf", "oneOf", "anyOf"):
        if combo in schema:
            merged = {}
            for sub in schema[combo]:
                value = instance(doc, sub, depth + 1)
                if isinstance(value, dict):
                    merged.update(value)
                elif value is not None and combo != "allOf":
                    return value
            return merged or None
    if schema.get("type") == "object" or "properties" in schema:
        obj = {}
        for name, prop in (schema.get("properties") or {}).items():
            value = instance(doc, prop, depth + 1)
            if value is not None:
                obj[name] = value
        return obj or None
    if schema.get("type") == "array":
        value = instance(doc, schema.get("items", {}), depth + 1)
        return [value] if value is not None else None
    return None


def response_examples(doc, responses):
    """(status, value) for every example of every response in @responses."""
    for status, response in (responses or {}).items():
        response = deref(doc, response)
        for media in (response.get("content") or {}).values():
            if "example" in media:
                yield str(status), media["example"]
            for example in (media.get("examples") or {}).values():
                example = deref(doc, example)
                if isinstance(example, dict) and "value" in example:
                    yield str(status), example["value"]
            if "schema" in media and not media.get("examples") and "example" not in media:
                value = instance(doc, media["schema"])
                if value is not None:
                    yield str(status), value


def graph_seeds(corpus, doc):
    paths = doc["paths"]
    wanted = []
    messages = paths.get("/{Version}/{Phone-Number-ID}/messages", {}).get("post", {})
    for status, value in response_examples(doc, messages.get("responses")):
        wanted.append(("messages-%s" % status, value))
    phone = paths.get("/{Version}/{Phone-Number-ID}", {}).get("get", {})
    for status, value in response_examples(doc, phone.get("responses")):
        wanted.append(("phone-number-%s" % status, value))
    for name, schema in sorted(doc["components"]["schemas"].items()):
        if "rror" in name:
            value = instance(doc, schema)
            if isinstance(value, dict):
                wanted.append(("schema-" + name, value))
    for path in sorted(paths):
        for method, operation in sorted(paths[path].items()):
            if not isinstance(operation, dict):
                continue
            for status, value in response_examples(doc, operation.get("responses")):
                if status[0] in "45":
                    wanted.append(("error-%s" % status, value))
    written = 0
    for i, (name, value) in enumerate(wanted):
        if written >= MAX_GRAPH_SEEDS:
            break
        before = corpus.counts["graph"]
        corpus.add("graph", "spec-%03d-%s.json" % (i, name), compact(value))
        written += corpus.counts["graph"] - before


# ---- libsodium, for the record seeds -------------------------------------------

class Sodium:
    def __init__(self):
        name = ctypes.util.find_library("sodium") or "libsodium.so.23"
        self.lib = ctypes.CDLL(name)
        if self.lib.sodium_init() < 0:
            raise RuntimeError("sodium_init failed")

    def aead_encrypt(self, key, nonce, plain, ad):
        out = ctypes.create_string_buffer(len(plain) + 16)
        out_len = ctypes.c_ulonglong(0)
        rc = self.lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
            out, ctypes.byref(out_len), plain, ctypes.c_ulonglong(len(plain)), ad,
            ctypes.c_ulonglong(len(ad)), None, nonce, key)
        assert rc == 0
        return out.raw[:out_len.value]

    def scalarmult_base(self, secret):
        out = ctypes.create_string_buffer(32)
        assert self.lib.crypto_scalarmult_base(out, secret) == 0
        return out.raw

    def box_seal(self, plain, public_key, seed):
        """crypto_box_seal with the ephemeral key pair from @seed (deterministic)."""
        epk = ctypes.create_string_buffer(32)
        esk = ctypes.create_string_buffer(32)
        assert self.lib.crypto_box_seed_keypair(epk, esk, seed) == 0
        nonce = ctypes.create_string_buffer(24)
        both = epk.raw + public_key
        assert self.lib.crypto_generichash(nonce, ctypes.c_size_t(24), both,
                                           ctypes.c_ulonglong(len(both)), None,
                                           ctypes.c_size_t(0)) == 0
        out = ctypes.create_string_buffer(len(plain) + 16)
        assert self.lib.crypto_box_easy(out, plain, ctypes.c_ulonglong(len(plain)), nonce,
                                        public_key, esk) == 0
        return epk.raw + out.raw


def lp_ad(domain, parts):
    ad = domain.encode() + b"\0"
    for part in parts:
        data = part.encode()
        ad += len(data).to_bytes(8, "little") + data
    return ad


def base32_code(key):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    bits = int.from_bytes(key, "big") << 4  # 256 bits, padded to 260
    chars = [alphabet[(bits >> (5 * (51 - i))) & 31] for i in range(52)]
    return "-".join("".join(chars[i:i + 4]) for i in range(0, 52, 4))


def records_seeds(corpus, webhooks):
    import base64
    sodium = Sodium()
    data_key = bytes(range(1, 33))
    file_key = b"\x2a" * 32
    recovery_key = b"\x5c" * 32
    event_secret = b"\x17" * 32
    event_public = sodium.scalarmult_base(event_secret)
    field_ad = lp_ad("wabiz-field-v1", ["messages", "body", "0123456789abcdef0123456789abcdef"])

    plains = [b"", b"Hello", "Grüße, \U0001F600".encode(), webhooks[0][1][:200]]
    for i, plain in enumerate(plains):
        nonce = bytes([i + 1]) * 24
        sealed = b"\x01" + nonce + sodium.aead_encrypt(data_key, nonce, plain, field_ad)
        corpus.add("records", "field-%d" % i, b"\x00" + sealed)
    corpus.add("records", "field-short", b"\x00\x01" + b"\x00" * 20)
    corpus.add("records", "field-version", b"\x00\x02" + b"\x00" * 60)

    def wrap(key, nonce, ad):
        return base64.b64encode(nonce + sodium.aead_encrypt(key, nonce, data_key, ad)).decode()

    wrapped = wrap(file_key, b"\x0a" * 24, lp_ad("wabiz-wrap-v1", ["kek", "keyfile"]))
    recovery = wrap(recovery_key, b"\x0b" * 24, lp_ad("wabiz-wrap-v1", ["recovery"]))
    keyfile = {"version": 1, "mode": "keyfile", "wrapped": wrapped, "recovery": recovery}
    passphrase = {"version": 1, "mode": "passphrase",
                  "kdf": {"alg": "argon2id13", "opslimit": 1, "memlimit": 8192,
                          "salt": base64.b64encode(b"\x0c" * 16).decode()},
                  "wrapped": wrapped, "recovery": recovery}
    corpus.add("records", "header-keyfile", b"\x01" + compact(keyfile).encode())
    corpus.add("records", "header-passphrase", b"\x01" + compact(passphrase).encode())
    corpus.add("records", "header-version-2", b"\x01" + compact(dict(keyfile, version=2)).encode())

    code = base32_code(recovery_key)
    corpus.add("records", "code-dashes", b"\x02" + code.encode())
    corpus.add("records", "code-lower-spaces", b"\x02" + code.lower().replace("-", " ").encode())
    corpus.add("records", "code-short", b"\x02" + code[:20].encode())

    for name, body in webhooks[:8]:
        seed = hashlib.sha256(name.encode()).digest()
        corpus.add("records", "event-" + name, b"\x03" + sodium.box_seal(body, event_public, seed))
    corpus.add("records", "event-short", b"\x03" + b"\x00" * 47)


# ---- the simulator ------------------------------------------------------------

def sim_seeds(corpus, binary):
    sys.path.insert(0, os.path.join(ROOT, "tests", "sim"))
    from simctl import Sim  # noqa: E402

    webhooks = []
    replies = []
    with Sim.start(binary, stderr=subprocess.DEVNULL) as sim:
        sim.clock_set(1764288000)  # 2025-11-28
        sim.clock_freeze(True)
        kinds = [
            ("text", dict(text="Hallo, geht das auch in Blau?")),
            ("text-markup", dict(text="*fett* _kursiv_ ~weg~ ```mono``` <b>kein HTML</b> & co")),
            ("image", {"type": "image", "image": {"id": "1234567890", "mime_type": "image/jpeg",
                                                   "sha256": "abc=", "caption": "Foto"}}),
            ("location", {"type": "location", "location": {"latitude": 52.52, "longitude": 13.405,
                                                            "name": "Berlin"}}),
            ("reaction", {"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "\U0001F44D"}}),
            ("bsuid", dict(text="no phone", no_phone=True, user_id="US.13491208655302741918",
                           username="anna")),
            ("errors", {"type": "unsupported", "unsupported": {"type": "edit"},
                        "errors": [{"code": 131051, "title": "Message type unknown",
                                    "message": "Message type unknown",
                                    "error_data": {"details": "Message type is not supported"}}]}),
        ]
        for name, fields in kinds:
            answer = sim.inbound(sender="4917012345678", name="Anna", **fields)
            webhooks.append(("sim-inbound-" + name, answer["body"]))
        status, reply, _ = sim.send_text("+4917012345678", "hello")
        replies.append(("sim-send", reply))
        wamid = reply["messages"][0]["id"]
        for state in ("sent", "delivered", "read"):
            webhooks.append(("sim-status-" + state, sim.status(wamid, state)["body"]))
        failed = sim.status(wamid, "failed", errors=[{"code": 131047, "title": "Re-engagement message"}])
        webhooks.append(("sim-status-failed", failed["body"]))
        status, reply, _ = sim.send_template("+4917012345678")
        replies.append(("sim-send-template", reply))
        status, reply, _ = sim.graph("GET", "/%s/%s?fields=display_phone_number,verified_name,"
                                     "quality_rating,name_status,throughput,messaging_limit_tier,"
                                     "platform_type,status,account_mode" % (sim.version, sim.pnid))
        replies.append(("sim-phone-number", reply))
        status, reply, _ = sim.send_text("+4917012345678", "x", token="wrong")
        replies.append(("sim-error-190", reply))
        for code in (130429, 131056, 131009, 131047, 131026, 100):
            sim.fault(path="messages", code=code)
            status, reply, _ = sim.send_text("+4917012345678", "x")
            replies.append(("sim-error-%d" % code, reply))
        sim.clear_faults()
    for name, body in webhooks:
        corpus.add("webhook", name + ".json", body)
    for name, reply in replies:
        if reply is not None:
            corpus.add("graph", name + ".json", compact(reply))
    return webhooks


# ---- the targets ----------------------------------------------------------------

def webhook_seeds(corpus, webhooks):
    for name, body in webhooks:
        corpus.add("webhook", "spec-" + name + ".json", body)
        corpus.add("webhook", "meta-" + name + ".json", meta_escaped(json.loads(body)))
    corpus.add("webhook", "envelope-empty.json", '{"object":"whatsapp_business_account","entry":[]}')
    corpus.add("webhook", "envelope-other.json", '{"object":"page","entry":[]}')


def signature_seeds(corpus, webhooks):
    secret = b"test-app-secret"

    def seed(name, header, body, key=secret):
        corpus.add("signature", name, bytes([len(key)]) + key + header + b"\n" + body)

    for name, body in webhooks[:6]:
        mac = hmac.new(secret, body, hashlib.sha256).hexdigest()
        seed("good-" + name, b"sha256=" + mac.encode(), body)
    body = webhooks[0][1]
    mac = hmac.new(secret, body, hashlib.sha256).hexdigest()
    # a secret of its own: the upper-case HMAC under the usual one holds "EAA"
    # and a run of letters and digits, which looks like a committed Meta token
    upper_key = b"upper-case-app-secret"
    upper = hmac.new(upper_key, body, hashlib.sha256).hexdigest().upper()
    seed("upper", b" SHA256=" + upper.encode() + b"\t", body, key=upper_key)
    seed("wrong", b"sha256=" + ("0" * 64).encode(), body)
    seed("sha1", b"sha1=" + hashlib.sha1(body).hexdigest().encode(), body)
    seed("short", b"sha256=abc", body)
    seed("empty-header", b"", body)
    seed("empty-body", b"sha256=" + hmac.new(secret, b"", hashlib.sha256).hexdigest().encode(), b"")
    seed("no-secret", b"sha256=" + mac.encode(), body, key=b"")


def receiver_seeds(corpus, webhooks):
    for name, body in webhooks:
        corpus.add("receiver-request", "signed-" + name, b"\x01\n" + body)
    # the first body that names a number, so it can be routed
    first = next(body for name, body in webhooks if b'"metadata"' in body)
    obj = json.loads(first)
    change = obj["entry"][0]["changes"][0]
    variants = []
    for i, account in enumerate(RX_ACCOUNTS):
        change["value"]["metadata"]["phone_number_id"] = account
        for waba in RX_WABAS:
            obj["entry"][0]["id"] = waba
            variants.append(("pnid%d-waba%s" % (i, waba[-3:]), compact(obj)))
    template = {"object": "whatsapp_business_account",
                "entry": [{"id": RX_WABAS[0], "time": 1764288000,
                           "changes": [{"field": "message_template_status_update",
                                        "value": {"event": "APPROVED", "message_template_id": 1,
                                                  "message_template_name": "hello_world",
                                                  "message_template_language": "en_US"}}]}]}
    variants.append(("template-update", compact(template)))
    for name, body in variants:
        corpus.add("receiver-request", "signed-one-" + name, b"\x01\n" + body.encode())
        corpus.add("receiver-request", "signed-two-" + name, b"\x02\n" + body.encode())
    body = first
    mac = hmac.new(b"app-secret-one", body, hashlib.sha256).hexdigest()
    corpus.add("receiver-request", "header-given", b"\x00sha256=" + mac.encode() + b"\n" + body)
    corpus.add("receiver-request", "header-wrong", b"\x00sha256=" + b"0" * 64 + b"\n" + body)
    corpus.add("receiver-request", "unknown-secret", b"\x03\n" + body)
    corpus.add("receiver-request", "too-deep", b"\x01\n" + b"[" * 70 + b"]" * 70)
    corpus.add("receiver-request", "not-webhook", b"\x01\n" + b'{"object":"page"}')


def rxline_seeds(corpus, webhooks):
    import base64
    registration = {"account": RX_ACCOUNTS[0], "waba_id": RX_WABAS[0], "app_secret": "s",
                    "verify_token": "t", "bind": "127.0.0.1", "port": 8090, "path": "/webhook",
                    "public_key": base64.b64encode(b"\x01" * 32).decode(), "keep_running": True,
                    "tls_cert": "", "tls_key": "", "allow_public_http": False}
    sealed = base64.b64encode(webhooks[0][1][:120]).decode()
    lines = [
        "HELLO " + compact({"proto": 1, "client": "purple-wabiz 0.1.0"}),
        "OK " + compact({"proto": 1, "version": "0.1.0", "pid": 1234}),
        "REGISTER " + compact(registration),
        "OK " + compact({"account": RX_ACCOUNTS[0], "url": "http://127.0.0.1:8090/webhook",
                         "port": 8090, "pending": 0}),
        "SUBSCRIBE " + compact({"account": RX_ACCOUNTS[0]}),
        "EVENT " + compact({"account": RX_ACCOUNTS[0], "seq": 41, "received": 1751247548,
                            "sealed": sealed}),
        "ACK " + compact({"account": RX_ACCOUNTS[0], "seq": 41}),
        "NOTICE " + compact({"account": None, "code": "signature", "message": "Check the app secret."}),
        "ERR " + compact({"code": "syntax", "message": "a line is a verb"}),
        "STATUS",
        "STOP",
        "UNREGISTER " + compact({"account": RX_ACCOUNTS[0]}),
    ]
    for i, line in enumerate(lines):
        corpus.add("rxline", "line-%02d-%s" % (i, line.split(" ")[0]), "\x00" + line + "\n")
    corpus.add("rxline", "conversation", "\x05" + "\n".join(lines) + "\n")
    corpus.add("rxline", "unterminated", "\x03" + lines[0] + "\n" + lines[2])
    corpus.add("rxline", "crlf", "\x01HELLO {}\r\n")
    corpus.add("rxline", "bad-verb", "\x02hello {}\nTOOLONGVERBTOOLONGVERB {}\n")


def markup_seeds(corpus, examples):
    texts = [
        "<b>bold</b> <i>italic</i> <s>gone</s> <tt>mono</tt> <u>under</u>",
        "<a href='https://example.com/a?b=1&amp;c=2'>a link</a> <a href=\"mailto:x@y.z\">x@y.z</a>",
        "Line one<br>Line two<br/><p>para</p><div>div</div><li>item</li>",
        "&lt;script&gt; &amp; &#x1F600; &#128512; &nbsp;&copy;&reg; &bogus; &#0; &#xD800;",
        "<!-- comment --> < 3 <?pi?> </b> <b><i>nested</b></i> <font color=red>red</font>",
        "*bold* _italic_ ~strike~ ```mono``` *not closed _x_ ~a~b~ **",
        "a < b > c & d \" e ' f\r\nnext\nline",
        "see https://example.com and http://x",
        "Grüße 😀 " * 30,
        "word " * 200,
        ("para one. " * 20 + "\n\n") * 4 + "line\n" * 30,
    ]
    for name, body in examples:
        texts.extend(strings_in(json.loads(body), ("body", "caption", "text", "title")))
    for i, text in enumerate(texts):
        flags = (i * 37) % 256  # budgets from 32 units up, markup on and off
        corpus.add("markup", "text-%03d" % i, bytes([flags]) + text.encode("utf-8"))


def phone_seeds(corpus, examples):
    numbers = ["+49 170 1234567", "0049 170 1234567", "0170 1234567", "(650) 555-1234",
               "+1 (650) 555-1234", "6505551234", "491701234567", "+44 20 7946 0958",
               "  +358.40.123.4567  ", "US.13491208655302741918", "US.ENT.123456",
               "us.123", "+12", "1234567890123456", "+49 170 abc", "", "00", "0", "+"]
    for name, body in examples:
        numbers.extend(strings_in(json.loads(body), ("wa_id", "from", "to", "display_phone_number")))
    for i, number in enumerate(numbers):
        for cc in (0, 1, 2, 5):
            corpus.add("phone", "number-%03d-cc%d" % (i, cc), bytes([cc]) + number.encode("utf-8"))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spec", default=os.path.join(ROOT, "..", "shared", "spec"))
    parser.add_argument("--sim", help="the wabiz-sim binary, for seeds from the simulator")
    parser.add_argument("--out", default=os.path.join(HERE, "corpus"))
    args = parser.parse_args(argv[1:])

    webhooks, sends = [], []
    have_spec = os.path.isdir(args.spec)
    if have_spec:
        webhooks = read_examples(args.spec, "webhooks")
        sends = read_examples(args.spec, "send")
    else:
        print("Meta's examples are not at %s: their seeds (and the Graph answers of the "
              "OpenAPI file) are left out" % args.spec, file=sys.stderr)
    webhooks += [("fixture-" + name, body)
                 for name, body in read_folder(os.path.join(ROOT, "tests", "data", "webhooks"))]
    corpus = Corpus(args.out)
    corpus.reset()

    webhook_seeds(corpus, webhooks)
    signature_seeds(corpus, webhooks)
    receiver_seeds(corpus, webhooks)
    rxline_seeds(corpus, webhooks)
    markup_seeds(corpus, webhooks + sends)
    phone_seeds(corpus, webhooks + sends)
    if have_spec:
        graph_seeds(corpus, load_openapi(args.spec))
    records_seeds(corpus, webhooks)
    if args.sim:
        for name, body in sim_seeds(corpus, args.sim):
            corpus.add("receiver-request", "signed-" + name, b"\x01\n" + body.encode("utf-8"))

    for target in TARGETS:
        print("%-18s %4d seeds" % (target, corpus.counts[target]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

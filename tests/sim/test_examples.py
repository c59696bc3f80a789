#!/usr/bin/env python3
"""test_examples: wabiz-sim must accept every request example from Meta's
OpenAPI description (examples/send/*.json in the meta_examples folder),
placeholders aside.

Usage: test_examples.py WABIZ_SIM_BINARY EXAMPLES_SEND_DIR

EXAMPLES_SEND_DIR is examples/send of the meson option meta_examples; when it
is missing the test is skipped (exit status 77) with the reason.

Only placeholders are replaced ({{Recipient-Phone-Number}}, <AUDIO_OBJECT_ID>,
"http(s)://..." links, "template-name", ...); every other value is sent as
Meta wrote it. Each file must get 200 with a wamid (or {"success":true} for
the mark-as-read example, whose message_id is swapped for an inbound wamid
the simulator generated).
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simctl import Sim  # noqa: E402

RECIPIENT = "+16505551234"
# one upload per kind (unknown media ids are refused with 131053, as at Meta)
MEDIA = {
    "image": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    "video": (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00", "video/mp4"),
    "audio": (b"\xff\xfb\x90\x00", "audio/mpeg"),
    "document": (b"%PDF-1.4\n", "application/pdf"),
    "sticker": (b"RIFF\x16\x00\x00\x00WEBPVP8L", "image/webp"),
}
MEDIA_IDS = {}
WAMID_RE = re.compile(r"^wamid\.[A-Za-z0-9+/=_-]{10,}$")
TEMPLATE_NAME_RE = re.compile(r"^[a-z0-9_]+$")


def is_placeholder(value):
    return (value.startswith("{{") and value.endswith("}}")) or \
           (value.startswith("<") and value.endswith(">")) or \
           "http(s)://" in value


def fill(node, inbound_wamid, replaced, key=None, parent_key=None):
    """Return a copy of ``node`` with placeholders swapped for valid values."""
    if isinstance(node, dict):
        return {k: fill(v, inbound_wamid, replaced, k, key) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, inbound_wamid, replaced, key, parent_key) for v in node]
    if not isinstance(node, str):
        return node
    new = node
    if key == "to" and is_placeholder(node):
        new = RECIPIENT
    elif key == "link" and is_placeholder(node):
        new = "https://example.com/media/" + (parent_key or "file")
    elif key == "id" and parent_key in ("image", "video", "audio", "document", "sticker") \
            and is_placeholder(node):
        new = MEDIA_IDS[parent_key]
    elif key == "message_id" and parent_key == "context" and is_placeholder(node):
        new = inbound_wamid
    elif key == "flow_id" and is_placeholder(node):
        new = "1234567890123456"
    elif key == "flow_name" and is_placeholder(node):
        new = "order_flow"
    elif key == "name" and parent_key == "template" and not TEMPLATE_NAME_RE.match(node):
        # "template-name" and "<TEMPLATE_NAME>" are placeholders in Meta's examples
        new = "sample_template"
    elif key == "code" and parent_key == "language" and node == "language-and-locale-code":
        new = "en_US"
    elif key == "type" and parent_key == "header" and is_placeholder(node):
        new = "text"
    if new != node:
        replaced.append("%s: %r -> %r" % (key, node, new))
    return new


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, directory = sys.argv[1], sys.argv[2]
    if not os.path.isdir(directory):
        # meson counts exit status 77 as a skip
        print("SKIP: Meta's send examples are not at %s (meson option meta_examples)" % directory)
        return 77
    files = sorted(f for f in os.listdir(directory) if f.endswith(".json"))
    if not files:
        print("FAIL: no examples in %s" % directory)
        return 1
    failures = []
    sends = reads = 0
    with Sim.start(binary) as sim:
        # all examples go to one customer: lift the pair limit, keep its checks on
        sim.config(pair_burst=1000)
        for kind, (data, mime) in MEDIA.items():
            status, answer, _ = sim.upload(data, mime, "sample")
            if status != 200:
                print("FAIL: uploading a sample %s -> %s %s" % (kind, status, answer))
                return 1
            MEDIA_IDS[kind] = answer["id"]
        inbound = sim.inbound(**{"from": RECIPIENT.lstrip("+")}, name="Sheena", text="Hi")
        for name in files:
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                example = json.load(f)
            replaced = []
            body = fill(example, inbound["id"], replaced)
            if body.get("status") == "read":
                replaced.append("message_id: %r -> %r" % (body.get("message_id"), inbound["id"]))
                body["message_id"] = inbound["id"]
            status, answer, _ = sim.send(body)
            if body.get("status") == "read":
                ok = status == 200 and answer == {"success": True}
                reads += ok
            else:
                ids = [m.get("id", "") for m in (answer or {}).get("messages", [])]
                contacts = (answer or {}).get("contacts", [])
                ok = (status == 200 and len(ids) == 1 and WAMID_RE.match(ids[0]) is not None
                      and len(contacts) == 1 and contacts[0].get("input") == body.get("to"))
                sends += ok
            print("%s %s%s" % ("ok  " if ok else "FAIL", name,
                               "" if ok else " -> %s %s" % (status, json.dumps(answer))))
            for line in replaced:
                print("       " + line)
            if not ok:
                failures.append(name)
        logged_sends = len(sim.sent())
        logged_reads = len(sim.reads())
    print("%d examples: %d sends and %d mark-as-read accepted" % (len(files), sends, reads))
    if logged_sends != sends or logged_reads != reads:
        print("FAIL: the simulator logged %d sends and %d reads" % (logged_sends, logged_reads))
        failures.append("(logs)")
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

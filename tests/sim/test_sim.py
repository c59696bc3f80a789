#!/usr/bin/env python3
"""test_sim: behaviour checks for wabiz-sim, the Cloud API simulator.

Usage: test_sim.py WABIZ_SIM_BINARY [TEST_NAME...]

One simulator and one local webhook receiver serve all tests; the runner
resets the simulator between tests. Waiting is polling with deadlines; the
rate-limit tests freeze the simulator's clock and move it explicitly.
"""

import base64
import hashlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from simctl import (SAMPLE_SENDS, SAMPLE_TEMPLATES, Sim, SimConnectionError,  # noqa: E402
                    SimError, WebhookReceiver, kind_fields, messages_of, sign, sign_sha1,
                    statuses_of, wait_until)

BINARY = None
CUSTOMER = "4917012345678"
HREF = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"


# ---- small assertion helpers (each one can fail) --------------------------

SECOND_PNID = "106540352242933"
SECOND_DISPLAY = "+1 555-078-3882"


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def ok(condition, what):
    if not condition:
        raise AssertionError(what)


def graph_error(result, http_status, code, what, subcode=None, message=None, details=None):
    """Check a Graph error answer; return the error object."""
    status, body, headers = result
    eq(status, http_status, what + " HTTP status")
    ok(isinstance(body, dict) and "error" in body, what + ": no error envelope in %r" % (body,))
    err = body["error"]
    eq(err.get("code"), code, what + " error code")
    eq(err.get("error_subcode"), subcode, what + " error_subcode")
    if message is not None:
        eq(err.get("message"), message, what + " message")
    if details is not None:
        eq(err.get("error_data", {}).get("details"), details, what + " details")
    ok(str(err.get("fbtrace_id", "")).startswith("A"), what + ": fbtrace_id missing")
    ok("www-authenticate" in headers, what + ": no www-authenticate header")
    return err


def sent_ok(result, what):
    status, body, _ = result
    eq(status, 200, what + " HTTP status (%r)" % (body,))
    wamid = body["messages"][0]["id"]
    ok(wamid.startswith("wamid."), what + ": bad wamid %r" % wamid)
    return wamid


def open_window(sim, number=CUSTOMER, **extra):
    return sim.inbound(**{"from": number}, name="Anna", text="Hello", **extra)


def text(to, body="hello", **extra):
    request = {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}
    request.update(extra)
    return request


def received_with(hooks, needle, count=1):
    """Wait for ``count`` webhook POSTs whose raw body contains ``needle``."""
    needle = needle.encode() if isinstance(needle, str) else needle
    return hooks.wait_for(lambda got: len([r for r in got if needle in r.body]) >= count,
                          what="%d webhooks containing %r" % (count, needle))


def only_with(hooks, needle):
    needle = needle.encode() if isinstance(needle, str) else needle
    return [r for r in hooks.snapshot() if needle in r.body]


# ---- Graph: auth, routing, phone number node -----------------------------

def test_auth_errors(sim, hooks):
    path = "/v25.0/%s" % sim.pnid
    for token in (None, "WRONG-TOKEN"):
        result = sim.graph("GET", path, token=token)
        err = graph_error(result, 401, 190, "token %r" % token,
                          message="Invalid OAuth access token - Cannot parse access token")
        eq(err["type"], "OAuthException", "type")
        headers = result[2]
        ok("invalid_token" in headers["www-authenticate"], "www-authenticate names invalid_token")
        for name in ("x-fb-trace-id", "x-fb-request-id"):
            ok(headers.get(name), "header %s missing" % name)
        eq(headers.get("facebook-api-version"), "v25.0", "facebook-api-version")
        usage = json.loads(headers["x-business-use-case-usage"])
        ok(sim.waba_id in usage and "call_count" in usage[sim.waba_id][0],
           "x-business-use-case-usage is keyed by the WABA id: %r" % usage)
    graph_error(sim.send(text("+4917012345678"), token="WRONG"), 401, 190, "send with a bad token")
    eq(sim.sent(), [], "nothing is sent with a bad token")
    eq([r["authorization"] for r in sim.requests()], [False, True, True],
       "requests log: authorization present")


def test_expired_token(sim, hooks):
    sim.config(expired_tokens=[sim.token])
    graph_error(sim.graph("GET", "/v25.0/%s" % sim.pnid), 401, 190, "expired token", subcode=463,
                message="Error validating access token: Session has expired")


def test_version_and_paths(sim, hooks):
    graph_error(sim.graph("GET", "/v25/%s" % sim.pnid), 400, 2500, "version v25")
    graph_error(sim.graph("GET", "/25.0/%s" % sim.pnid), 400, 2500, "version 25.0")
    graph_error(sim.graph("POST", "/v25.0/%s/bogus" % sim.pnid, {}), 400, 2500, "unknown edge")
    status, body, headers = sim.graph("GET", "/v19.0/%s" % sim.pnid)
    eq(status, 200, "other version")
    eq(headers.get("facebook-api-version"), "v19.0", "facebook-api-version echoes the path")


def test_unknown_pnid(sim, hooks):
    err = graph_error(sim.graph("GET", "/v25.0/123456789"), 400, 100, "unknown pnid", subcode=33,
                      message="Unsupported get request. Object with ID '123456789' does not "
                              "exist, cannot be loaded due to missing permissions, or does not "
                              "support this operation.")
    eq(err["type"], "GraphMethodException", "type")
    err = graph_error(sim.graph("POST", "/v25.0/123456789/messages", text(CUSTOMER)), 400, 100,
                      "unknown pnid send", subcode=33)
    ok(err["message"].startswith("Unsupported post request. Object with ID '123456789'"),
       "post message: %r" % err["message"])


def test_no_permission(sim, hooks):
    token = sim.token_no_permission
    err = graph_error(sim.graph("GET", "/v25.0/%s" % sim.pnid, token=token), 403, 200, "GET",
                      message="(#200) Permissions error")
    ok("whatsapp_business_management" in err["error_data"]["details"], "GET details: %r" % err)
    err = graph_error(sim.send(text(CUSTOMER), token=token), 403, 200, "send",
                      message="(#200) Permissions error")
    ok("whatsapp_business_messaging" in err["error_data"]["details"], "send details: %r" % err)
    eq(sim.sent(), [], "nothing sent without permission")


def test_fields(sim, hooks):
    status, body, _ = sim.graph("GET", "/v25.0/%s" % sim.pnid)
    eq(status, 200, "default fields")
    eq(body, {"verified_name": "Jaspers Market", "display_phone_number": "+1 555-078-3881",
              "quality_rating": "GREEN", "id": sim.pnid}, "default fields")
    fields = ("display_phone_number,throughput,whatsapp_business_manager_messaging_limit,"
              "platform_type,status,account_mode,code_verification_status,name_status,"
              "is_official_business_account,messaging_limit_tier")
    status, body, _ = sim.graph("GET", "/v25.0/%s?fields=%s" % (sim.pnid, fields))
    eq(status, 200, "chosen fields")
    eq(body, {"display_phone_number": "+1 555-078-3881", "throughput": {"level": "STANDARD"},
              "whatsapp_business_manager_messaging_limit": "TIER_2K",
              "platform_type": "CLOUD_API", "status": "CONNECTED", "account_mode": "LIVE",
              "code_verification_status": "VERIFIED", "name_status": "APPROVED",
              "is_official_business_account": False, "messaging_limit_tier": "TIER_2K",
              "id": sim.pnid}, "chosen fields")
    graph_error(sim.graph("GET", "/v25.0/%s?fields=display_phone_number,colour" % sim.pnid),
                400, 100, "unknown field",
                message="(#100) Tried accessing nonexisting field (colour) on node type "
                        "(WhatsAppBusinessPhoneNumber)")


# ---- send validation -------------------------------------------------------

def test_text_limit(sim, hooks):
    sent_ok(sim.send(text(CUSTOMER, "\U0001F600" * 4096)), "4096 astral characters")
    sent_ok(sim.send(text(CUSTOMER, "é" * 4096)), "4096 two-byte characters")
    graph_error(sim.send(text(CUSTOMER, "a" * 4097)), 400, 100, "4097 characters",
                message="(#100) Invalid parameter",
                details="Param text['body'] must be at most 4096 characters long.")
    eq(len(sim.sent()), 2, "the long text was not sent")


def test_required_members(sim, hooks):
    graph_error(sim.send({"to": CUSTOMER, "type": "text", "text": {"body": "x"}}), 400, 100,
                "no messaging_product", message="(#100) The parameter messaging_product is required.")
    graph_error(sim.send({"messaging_product": "sms", "to": CUSTOMER, "type": "text",
                          "text": {"body": "x"}}), 400, 100, "messaging_product sms")
    graph_error(sim.send({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}),
                400, 131008, "no to", message="(#131008) Required parameter is missing",
                details="The parameter to is required.")
    graph_error(sim.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text"}),
                400, 131008, "no text object", details="The parameter text is required.")
    graph_error(sim.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "text",
                          "text": {}}), 400, 131008, "no text body",
                details="The parameter text['body'] is required.")
    graph_error(sim.send({"messaging_product": "whatsapp", "to": CUSTOMER, "type": "poll",
                          "poll": {}}), 400, 100, "unknown type")
    graph_error(sim.graph("POST", sim.messages_path(), raw="{\"messaging_product\":"), 400, 100,
                "malformed JSON")
    graph_error(sim.graph("POST", sim.messages_path(), raw="[1,2]"), 400, 100, "JSON array")
    graph_error(sim.graph("POST", sim.messages_path(), raw="[" * 5000 + "]" * 5000), 400, 100,
                "deeply nested JSON")
    graph_error(sim.send(text("+12ab5550000")), 400, 100, "letters in to")
    graph_error(sim.send(text("+1234567")), 400, 100, "7 digits")
    graph_error(sim.send(text("+1234567890123456")), 400, 100, "16 digits")
    graph_error(sim.send(text(CUSTOMER, biz_opaque_callback_data="x" * 513)), 400, 100,
                "biz_opaque_callback_data over 512")
    graph_error(sim.send(text("+1 555-078-3881")), 400, 131021, "message to ourselves",
                message="(#131021) Recipient cannot be sender")
    eq(sim.sent(), [], "no invalid request was accepted")


def _button(i, title=None, id_=None):
    return {"type": "reply", "reply": {"id": id_ or "b%d" % i, "title": title or "Button %d" % i}}


def _interactive(itype, action, body="Pick one", **extra):
    inter = {"type": itype, "body": {"text": body}, "action": action}
    inter.update(extra)
    return {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "interactive",
            "interactive": inter}


def _list(rows_per_section, **row):
    sections = []
    n = 0
    for count in rows_per_section:
        rows = []
        for _ in range(count):
            n += 1
            r = {"id": "row%d" % n, "title": "Row %d" % n}
            r.update(row)
            rows.append(r)
        sections.append({"title": "Section", "rows": rows})
    return _interactive("list", {"button": "Options", "sections": sections})


def test_media_and_interactive_rules(sim, hooks):
    def media(kind, **obj):
        return {"messaging_product": "whatsapp", "to": CUSTOMER, "type": kind, kind: obj}

    image_id = sim.upload(JPEG, "image/jpeg", "a.jpg")[1]["id"]
    audio_id = sim.upload(MP3, "audio/mpeg", "a.mp3")[1]["id"]
    good = [
        ("image by id", media("image", id=image_id, caption="c" * 1024)),
        ("document by link", media("document", link="https://example.com/a.pdf", filename="a.pdf")),
        ("audio", media("audio", id=audio_id)),
        ("3 buttons", _interactive("button", {"buttons": [_button(i) for i in range(3)]})),
        ("button title 20", _interactive("button", {"buttons": [_button(1, "t" * 20)]})),
        ("button body 1024", _interactive("button", {"buttons": [_button(1)]}, body="b" * 1024)),
        ("list 10 rows in 2 sections", _list([5, 5])),
        ("list body 4096", _interactive("list", {"button": "b", "sections": [
            {"rows": [{"id": "r", "title": "t"}]}]}, body="b" * 4096)),
        ("cta_url", _interactive("cta_url", {"name": "cta_url", "parameters": {
            "display_text": "d" * 20, "url": "https://example.com"}})),
        ("reaction removal", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "reaction",
                              "reaction": {"message_id": "wamid.x", "emoji": ""}}),
        ("location as strings", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "location",
                                 "location": {"latitude": "52.5", "longitude": "13.4"}}),
    ]
    for what, body in good:
        sent_ok(sim.send(body), what)

    bad = [
        ("image with id and link", media("image", id="1", link="https://x"), 100, None),
        ("image without id or link", media("image", caption="x"), 100, None),
        ("caption 1025", media("video", id="1", caption="c" * 1025), 100,
         "Param video['caption'] must be at most 1024 characters long."),
        ("audio caption", media("audio", id="1", caption="x"), 100, None),
        ("sticker caption", media("sticker", id="1", caption="x"), 100, None),
        ("4 buttons", _interactive("button", {"buttons": [_button(i) for i in range(4)]}), 131009, None),
        ("0 buttons", _interactive("button", {"buttons": []}), 131009, None),
        ("button title 21", _interactive("button", {"buttons": [_button(1, "t" * 21)]}), 100,
         "Param interactive['action']['buttons'][0]['reply']['title'] must be at most 20 characters long."),
        ("duplicate titles", _interactive("button", {"buttons": [_button(1, "Same"),
                                                                 _button(2, "Same")]}), 131009, None),
        ("button id 257", _interactive("button", {"buttons": [_button(1, id_="i" * 257)]}), 100, None),
        ("button body 1025", _interactive("button", {"buttons": [_button(1)]}, body="b" * 1025), 100, None),
        ("list 11 rows", _list([6, 5]), 131009, None),
        ("list row title 25", _list([1], title="t" * 25), 100, None),
        ("list row description 73", _list([1], description="d" * 73), 100, None),
        ("list 11 sections", _list([1] * 11), 131009, None),
        ("list image header", _interactive("list", {"button": "b", "sections": [
            {"rows": [{"id": "r", "title": "t"}]}]}, header={"type": "image", "image": {"id": "1"}}),
         131009, None),
        ("list button 21", _interactive("list", {"button": "b" * 21, "sections": [
            {"rows": [{"id": "r", "title": "t"}]}]}), 100, None),
        ("cta display_text 21", _interactive("cta_url", {"name": "cta_url", "parameters": {
            "display_text": "d" * 21, "url": "https://example.com"}}), 100, None),
        ("interactive without action", _interactive("button", None), 131008, None),
        ("reaction without message_id", {"messaging_product": "whatsapp", "to": CUSTOMER,
                                         "type": "reaction", "reaction": {"emoji": "x"}}, 131008, None),
        ("template name with dash", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                                     "template": {"name": "bad-name", "language": {"code": "en"}}}, 100, None),
        ("template without language", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
                                       "template": {"name": "ok_name"}}, 131008, None),
        ("contacts without name", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "contacts",
                                   "contacts": [{"phones": []}]}, 131008, None),
        ("location without latitude", {"messaging_product": "whatsapp", "to": CUSTOMER,
                                       "type": "location", "location": {"longitude": 1}}, 131008, None),
    ]
    for what, body, code, details in bad:
        if body["type"] == "interactive" and body["interactive"]["action"] is None:
            del body["interactive"]["action"]
        graph_error(sim.send(body), 400, code, what, details=details)
    eq(len(sim.sent()), len(good), "only the valid requests were accepted")


GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MTo="


def _reaction(message_id, emoji, to=CUSTOMER, **extra):
    request = {"messaging_product": "whatsapp", "to": to, "type": "reaction",
               "reaction": {"message_id": message_id, "emoji": emoji}}
    request.update(extra)
    return request


def test_reply_reaction_contact_request_rules(sim, hooks):
    """What the plugin's commands send: reply context, reactions, locations,
    request_contact_info; each refused the way Meta refuses it."""
    wamid = open_window(sim)["id"]
    ask = _interactive("request_contact_info", {"name": "request_contact_info"},
                       body="Please share your number")
    good = [
        ("reply context", text(CUSTOMER, "yes", context={"message_id": wamid})),
        ("reaction", _reaction(wamid, "\U0001F44D")),
        ("reaction with a skin tone", _reaction(wamid, "\U0001F44D\U0001F3FD")),
        ("reaction ZWJ family", _reaction(wamid, "\U0001F468\u200d\U0001F469\u200d\U0001F467")),
        ("reaction flag", _reaction(wamid, "\U0001F1E9\U0001F1EA")),
        ("reaction keycap", _reaction(wamid, "1\ufe0f\u20e3")),
        ("reaction removed", _reaction(wamid, "")),
        ("location at the edges", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "location",
                                   "location": {"latitude": -90, "longitude": 180, "name": "Pole"}}),
        ("request_contact_info", ask),
    ]
    for what, body in good:
        sent_ok(sim.send(body), what)
    no_action_name = _interactive("request_contact_info", {}, body="x")
    wrong_action_name = _interactive("request_contact_info", {"name": "cta_url"}, body="x")
    bad = [
        ("context id not a wamid", text(CUSTOMER, "x", context={"message_id": "12345"}), 100,
         'Param context[\'message_id\'] is not a valid message id: "12345".'),
        ("reaction id not a wamid", _reaction("12345", "\U0001F44D"), 100,
         'Param reaction[\'message_id\'] is not a valid message id: "12345".'),
        ("reaction with a word", _reaction(wamid, "ok"), 100,
         "Param reaction['emoji'] must be a single emoji, or empty to remove a reaction."),
        ("reaction with two emoji", _reaction(wamid, "\U0001F44D\U0001F44D"), 100, None),
        ("reaction with a half flag", _reaction(wamid, "\U0001F1E9"), 100, None),
        ("reaction with a lone digit", _reaction(wamid, "1"), 100, None),
        ("request_contact_info without action name", no_action_name, 131008, None),
        ("request_contact_info with another action", wrong_action_name, 131009,
         "Param interactive['action']['name'] must be 'request_contact_info'."),
        ("latitude 90.1", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "location",
                           "location": {"latitude": 90.1, "longitude": 0}}, 131009, None),
        ("longitude -181", {"messaging_product": "whatsapp", "to": CUSTOMER, "type": "location",
                            "location": {"latitude": 0, "longitude": -181}}, 131009, None),
    ]
    for what, body, code, details in bad:
        graph_error(sim.send(body), 400, code, what, details=details)
    eq(len(sim.sent()), len(good), "only the valid requests were accepted")


def test_group_send_rules(sim, hooks):
    """recipient_type group: only to a group the number is in; no reactions
    or interactive messages."""
    wamid = open_window(sim)["id"]
    graph_error(sim.send(text(GROUP, recipient_type="group")), 400, 131009, "unknown group",
                details="The group does not exist or this phone number is not in it.")
    sim.config(groups=[GROUP])
    status, body, _ = sim.send(text(GROUP, "hello all", recipient_type="group"))
    eq(status, 200, "group text (%r)" % (body,))
    eq(body["messages"][0].get("group_id"), GROUP, "the answer names the group")
    graph_error(sim.send(_reaction(wamid, "\U0001F44D", to=GROUP, recipient_type="group")), 400, 131009,
                "reaction in a group", details="Messages of type reaction cannot be sent to a group.")
    buttons = _interactive("button", {"buttons": [_button(1)]})
    buttons.update(to=GROUP, recipient_type="group")
    graph_error(sim.send(buttons), 400, 131009, "buttons in a group",
                details="Messages of type interactive cannot be sent to a group.")
    sent = sim.sent()
    eq([(m["to"], m["type"], m["request"]["recipient_type"]) for m in sent], [(GROUP, "text", "group")],
       "only the group text was accepted")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00" + b"\x00" * 64
MP3 = b"\xff\xfb\x90\x00" + b"\x00" * 64
OPUS = b"OggS\x00\x02" + b"\x00" * 22 + b"OpusHead\x01\x01"
PDF = b"%PDF-1.4\n%%EOF\n"


def webp(size, animated=False):
    head = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WEBPVP8X\x0a\x00\x00\x00"
    return head + (b"\x02" if animated else b"\x00") + b"\x00" * (size - len(head) - 1)


def test_uploads(sim, hooks):
    status, answer, _ = sim.upload(PDF, "application/pdf", "report.pdf")
    eq(status, 200, "pdf upload")
    ok(answer["id"].isdigit(), "a numeric media id: %r" % answer)
    log = sim.uploads()
    eq(len(log), 1, "one upload logged")
    eq((log[0]["id"], log[0]["type"], log[0]["filename"], log[0]["size"], log[0]["messaging_product"],
        log[0]["content_type"]),
       (answer["id"], "application/pdf", "report.pdf", len(PDF), "whatsapp", "application/pdf"), "the log")
    eq(sim.upload(OPUS, "audio/ogg; codecs=opus", "n.ogg")[0], 200, "ogg opus")
    eq(sim.upload(webp(100000), "image/webp", "s.webp")[0], 200, "static sticker of 100 KB")
    eq(sim.upload(webp(400000, True), "image/webp", "a.webp")[0], 200, "animated sticker of 400 KB")

    graph_error(sim.upload(PDF, "application/pdf", fields={"messaging_product": None}), 400, 100,
                "no messaging_product")
    graph_error(sim.upload(PDF, "application/pdf", fields={"messaging_product": "instagram"}), 400, 100,
                "another product")
    graph_error(sim.upload(PDF, "application/pdf", fields={"type": None}), 400, 100, "no type")
    graph_error(sim.upload(b"BM" + b"\x00" * 60, "image/bmp", "x.bmp"), 400, 131053, "an unsupported type")
    graph_error(sim.upload(PDF, "image/jpeg", "x.jpg"), 400, 131053, "a PDF declared as JPEG")
    graph_error(sim.upload(JPEG, "image/jpeg", "x.jpg", file_type="image/png"), 400, 131053,
                "the part's type differs")
    graph_error(sim.upload(JPEG + b"\x00" * 5000000, "image/jpeg", "big.jpg"), 400, 131053,
                "an image over 5 MB")
    graph_error(sim.upload(webp(100001), "image/webp", "s.webp"), 400, 131053, "a static sticker over 100 KB")
    graph_error(sim.upload(OPUS, "audio/ogg", "n.ogg"), 400, 131053, "ogg without the opus codec")
    graph_error(sim.upload(PDF, "application/pdf", token="wrong"), 401, 190, "a wrong token")
    eq(len(sim.uploads()), 4, "refused uploads are not logged")

    # faults on uploads are the general ones, by path
    sim.fault(path="/media", status=500, code=131016)
    graph_error(sim.upload(PDF, "application/pdf", "r.pdf"), 500, 131016, "a fault on /media")
    eq(sim.upload(PDF, "application/pdf", "r.pdf")[0], 200, "the fault was used up")


def test_media_sends_by_id(sim, hooks):
    def media(kind, **obj):
        return {"messaging_product": "whatsapp", "to": CUSTOMER, "type": kind, kind: obj}

    pdf = sim.upload(PDF, "application/pdf", "r.pdf")[1]["id"]
    jpeg = sim.upload(JPEG, "image/jpeg", "a.jpg")[1]["id"]
    opus = sim.upload(OPUS, "audio/ogg; codecs=opus", "n.ogg")[1]["id"]
    mp3 = sim.upload(MP3, "audio/mpeg", "a.mp3")[1]["id"]
    sticker = sim.upload(webp(1000), "image/webp", "s.webp")[1]["id"]
    sent_ok(sim.send(media("document", id=pdf, filename="r.pdf", caption="here")), "document")
    sent_ok(sim.send(media("image", id=jpeg)), "image")
    sent_ok(sim.send(media("audio", id=opus, voice=True)), "voice note")
    sent_ok(sim.send(media("audio", id=mp3)), "mp3 audio")
    sent_ok(sim.send(media("sticker", id=sticker)), "sticker")
    graph_error(sim.send(media("image", id="999999999")), 400, 131053, "an unknown id")
    graph_error(sim.send(media("image", id=pdf)), 400, 131053, "a PDF as an image")
    graph_error(sim.send(media("image", id=sticker)), 400, 131053, "a WebP as an image")
    graph_error(sim.send(media("audio", id=mp3, voice=True)), 400, 131053, "an mp3 voice note")
    graph_error(sim.send(media("audio", id=opus, voice="yes")), 400, 100, "voice not a boolean")
    graph_error(sim.send(media("image", id=jpeg, voice=True)), 400, 100, "voice on an image")
    graph_error(sim.send(media("document", id=pdf, link="https://x/a.pdf")), 400, 100, "id and link")
    sim.reset()
    graph_error(sim.send(media("document", id=pdf)), 400, 131053, "uploads end with a reset")


def test_wa_id_rules(sim, hooks):
    cases = [
        ("+55 11 91234-5678", "551112345678"),      # Brazil: the mobile 9 goes
        ("+52 55 1234 5678", "5215512345678"),      # Mexico: 521 + 10 digits
        ("+1 (650) 555-1234", "16505551234"),
    ]
    for to, wa_id in cases:
        status, body, _ = sim.send(text(to))
        eq(status, 200, to)
        eq(body["contacts"], [{"input": to, "wa_id": wa_id}], "contacts for %s" % to)
    sim.config(wa_id_rewrite={"4915112345678": "4915199999999"})
    status, body, _ = sim.send(text("+49 151 12345678"))
    eq(body["contacts"][0]["wa_id"], "4915199999999", "rewrite map")
    eq([m["wa_id"] for m in sim.sent()],
       ["551112345678", "5215512345678", "16505551234", "4915199999999"], "sent log wa_ids")


def test_bsuid(sim, hooks):
    bsuid = "US.13491208655302741918"
    r = sim.inbound(no_phone=True, user_id=bsuid, name="Sheena", username="@sheena", text="Hi")
    inbound = json.loads(r["body"])
    value = inbound["entry"][0]["changes"][0]["value"]
    eq(value["contacts"], [{"profile": {"name": "Sheena", "username": "@sheena"},
                            "user_id": bsuid}], "contacts of a username-only user")
    msg = value["messages"][0]
    ok("from" not in msg, "no from for a username-only user")
    eq(msg["from_user_id"], bsuid, "from_user_id")
    status, body, _ = sim.send({"messaging_product": "whatsapp", "recipient": bsuid, "type": "text",
                                "text": {"body": "hello"}})
    eq(status, 200, "send by BSUID")
    eq(body["contacts"], [{"input": bsuid, "user_id": bsuid}], "contacts of a BSUID send")
    wamid = body["messages"][0]["id"]
    st = hooks.wait_status(wamid, "sent")
    eq(st.get("recipient_user_id"), bsuid, "recipient_user_id")
    ok("recipient_id" not in st, "no recipient_id for a BSUID send")
    graph_error(sim.send({"messaging_product": "whatsapp", "recipient": "not-a-bsuid", "type": "text",
                          "text": {"body": "x"}}), 400, 100, "bad BSUID")


# ---- 24-hour window, statuses, pricing -------------------------------------

REENGAGEMENT = [{
    "code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
    "error_data": {"details": "Message failed to send because more than 24 hours have passed "
                              "since the customer last replied to this number."},
    "href": HREF}]


def test_window_closed(sim, hooks):
    number = "4917099990000"
    wamid = sent_ok(sim.send(text("+" + number, biz_opaque_callback_data="outbox-17")),
                    "send outside the window")
    failed = hooks.wait_status(wamid, "failed")
    eq(failed["errors"], REENGAGEMENT, "131047 error object")
    eq(failed["recipient_id"], number, "recipient_id")
    eq(failed["biz_opaque_callback_data"], "outbox-17", "biz_opaque_callback_data echoed")
    ok("pricing" not in failed and "conversation" not in failed, "failed has no pricing")
    eq([s["status"] for s in hooks.statuses() if s["id"] == wamid], ["failed"],
       "only a failed status")
    delivery = [r for r in hooks.snapshot() if wamid.encode() in r.body][0]
    ok(delivery.signed_ok(sim.app_secret), "X-Hub-Signature-256 matches the body")
    eq(delivery.headers.get("x-hub-signature"), sign_sha1(delivery.body, sim.app_secret),
       "X-Hub-Signature (sha1)")
    eq(delivery.headers.get("user-agent"), "facebookexternalua", "User-Agent")
    ok(delivery.headers.get("content-type", "").startswith("application/json"), "Content-Type")
    eq(sim.sent()[-1]["window_open"], False, "sent log records the closed window")

    # the customer writes: the window opens
    open_window(sim, number)
    wamid = sent_ok(sim.send(text("+" + number)), "send inside the window")
    hooks.wait_status(wamid, "delivered")
    eq(sim.sent()[-1]["window_open"], True, "sent log records the open window")

    # 24 hours later it is closed again, but templates still go out
    sim.clock_advance(24 * 3600 + 1)
    wamid = sent_ok(sim.send(text("+" + number)), "send after 24 h")
    eq(hooks.wait_status(wamid, "failed")["errors"][0]["code"], 131047, "131047 after 24 h")
    status, body, _ = sim.send_template("+" + number)
    eq(status, 200, "template outside the window")
    eq(body["messages"][0].get("message_status"), "accepted", "template message_status")
    st = hooks.wait_status(body["messages"][0]["id"], "sent")
    eq(st["pricing"], {"billable": True, "pricing_model": "PMP", "type": "regular",
                       "category": "utility"}, "template pricing outside the window")


def test_window_uses_message_timestamp(sim, hooks):
    number = "4917055550000"
    now = sim.clock()
    sim.inbound(**{"from": number}, text="old", timestamp=now - 25 * 3600)
    wamid = sent_ok(sim.send(text(number)), "send after a 25 h old message")
    hooks.wait_status(wamid, "failed")
    sim.inbound(**{"from": number}, text="recent", timestamp=now - 3600)
    sim.inbound(**{"from": number}, text="replayed", timestamp=now - 30 * 3600)
    wamid = sent_ok(sim.send(text(number)), "send after a 1 h old message")
    hooks.wait_status(wamid, "delivered")


def test_statuses_and_pricing(sim, hooks):
    open_window(sim)
    wamid = sent_ok(sim.send(text("+" + CUSTOMER, biz_opaque_callback_data="cb-1")), "send")
    sent = hooks.wait_status(wamid, "sent")
    delivered = hooks.wait_status(wamid, "delivered")
    service = {"billable": True, "pricing_model": "PMP", "type": "free_customer_service",
               "category": "service"}
    for st in (sent, delivered):
        eq(st.get("pricing"), service, "pricing on %s" % st["status"])
        ok("conversation" not in st, "no conversation object (v24+)")
        eq(st["recipient_id"], CUSTOMER, "recipient_id")
        eq(st["biz_opaque_callback_data"], "cb-1", "biz_opaque_callback_data")
        ok(isinstance(st["timestamp"], str) and st["timestamp"].isdigit(), "timestamp is a string")
    read = json.loads(sim.status(wamid, "read")["body"])
    st = statuses_of(read)[0]
    ok("pricing" not in st, "no pricing on read after delivered")
    hooks.wait_status(wamid, "read")
    value = read["entry"][0]["changes"][0]["value"]
    eq(read["object"], "whatsapp_business_account", "object")
    eq(read["entry"][0]["id"], sim.waba_id, "entry id is the WABA id")
    eq(read["entry"][0]["changes"][0]["field"], "messages", "field")
    eq(value["metadata"], {"display_phone_number": "15550783881", "phone_number_id": sim.pnid},
       "metadata")

    # read without delivered: the read carries the pricing
    sim.config(auto_statuses=["sent"])
    wamid = sent_ok(sim.send(text("+" + CUSTOMER)), "second send")
    hooks.wait_status(wamid, "sent")
    eq(statuses_of(sim.status(wamid, "read")["body"])[0].get("pricing"), service,
       "pricing on a read that came without delivered")
    ok("pricing" not in statuses_of(sim.status(wamid, "delivered")["body"])[0],
       "no pricing on a late delivered")
    # a category Meta may add tomorrow is reported as given
    st = statuses_of(sim.status(wamid, "sent", category="galactic_promo")["body"])[0]
    eq(st["pricing"]["category"], "galactic_promo", "pricing category set by the test")
    failed = statuses_of(sim.status(wamid, "failed", errors=[{"code": 131026}])["body"])[0]
    eq(failed["errors"], [{"code": 131026}], "errors passed through")
    try:
        sim.status("wamid.unknown", "read")
        raise AssertionError("status for an unknown wamid was accepted")
    except SimError:
        pass


def test_mark_read(sim, hooks):
    r = open_window(sim)
    status, body, _ = sim.mark_read(r["id"], typing=True)
    eq((status, body), (200, {"success": True}), "mark as read")
    reads = sim.reads()
    eq([(x["message_id"], x["typing_indicator"]) for x in reads], [(r["id"], True)], "reads log")
    eq(reads[0]["authorization"], "Bearer " + sim.token, "reads log authorization")
    graph_error(sim.mark_read("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUYzMjEzNDM2RTZGQ0MzMDJBRgA="),
                400, 131009, "unknown wamid", message="(#131009) Parameter value is not valid")
    outbound = sent_ok(sim.send(text(CUSTOMER)), "send")
    graph_error(sim.mark_read(outbound), 400, 131009, "our own message")
    graph_error(sim.send({"messaging_product": "whatsapp", "status": "read",
                          "message_id": r["id"], "typing_indicator": {"type": "audio"}}),
                400, 100, "typing_indicator audio")
    eq(len(sim.reads()), 1, "failed reads are not logged")


# ---- rate limits -------------------------------------------------------------

def test_throughput(sim, hooks):
    sim.clock_freeze()
    sim.config(throughput_mps=3)
    for i in range(3):
        sent_ok(sim.send(text("+49170000000%d" % i)), "send %d" % i)
    graph_error(sim.send(text("+4917000000009")), 400, 130429, "4th send in a second",
                subcode=2494055, message="(#130429) Rate limit hit",
                details="Cloud API message throughput has been reached.")
    sim.clock_advance(0.2)
    graph_error(sim.send(text("+4917000000009")), 400, 130429, "0.2 s later (0.6 tokens)",
                subcode=2494055)
    sim.clock_advance(0.2)
    sent_ok(sim.send(text("+4917000000009")), "0.4 s later (1.2 tokens)")
    graph_error(sim.send(text("+4917000000008")), 400, 130429, "the bucket is empty again",
                subcode=2494055)
    eq(len(sim.sent()), 4, "rate-limited sends are not recorded")


def test_connection_burst_waits_in_the_backlog(sim, hooks):
    """A client that opens many connections at once (a campaign at 1,000/s
    starts up to a hundred sends together): while the simulator is not
    accepting (stopped here), the kernel completes them all into the
    listening socket's backlog, and each is answered afterwards. With a
    short backlog the ones beyond it got no answer to their SYN: the client
    waited and the simulator never saw the request."""
    count = 300
    targets = [sim.base_url, sim.info()["graph_url"]]
    socks = []
    sim.proc.send_signal(signal.SIGSTOP)
    try:
        for url in targets:
            host, port = url.rsplit("/", 1)[-1].rsplit(":", 1)
            for _ in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex((host.strip("[]"), int(port)))
                socks.append(s)
        pending = {s.fileno(): s for s in socks}
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLOUT)
        deadline = time.monotonic() + 3
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(200):
                if pending[fd].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    del pending[fd]
                poller.unregister(fd)
        eq(len(pending), 0, "connections not completed while the simulator was not accepting")
    finally:
        sim.proc.send_signal(signal.SIGCONT)
    try:
        for s in socks:
            s.setblocking(True)
            s.settimeout(30)
            s.sendall(b"GET /_sim/info HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n\r\n")
        for s in socks:
            head = s.recv(64)
            ok(head.startswith(b"HTTP/1.1 200"), "each connection answered: %r" % head)
    finally:
        for s in socks:
            s.close()


def test_pair_limit(sim, hooks):
    sim.clock_freeze()
    sim.config(pair_burst=3, pair_refill_s=6)
    for i in range(3):
        sent_ok(sim.send(text(CUSTOMER)), "burst %d" % i)
    graph_error(sim.send(text(CUSTOMER)), 400, 131056, "4th to the same customer",
                message="(#131056) (Business Account, Consumer Account) pair rate limit hit")
    sent_ok(sim.send(text("+4917011112222")), "another customer")
    sim.clock_advance(5.9)
    graph_error(sim.send(text(CUSTOMER)), 400, 131056, "5.9 s later")
    sim.clock_advance(0.2)
    sent_ok(sim.send(text(CUSTOMER)), "6.1 s later")
    graph_error(sim.send(text(CUSTOMER)), 400, 131056, "right after the refill")


# ---- webhook emitter ---------------------------------------------------------

def test_escaping_and_signature(sim, hooks):
    r = sim.inbound(**{"from": CUSTOMER}, name="Zoë", text="café / 😀\n\"q\"")
    got = received_with(hooks, r["id"])
    raw = [x for x in got if r["id"].encode() in x.body][0]
    eq(raw.body, r["body"].encode("ascii"), "delivered bytes equal the reported body")
    for needle in (b"caf\\u00e9", b"\\/", b"\\ud83d\\ude00", b"Zo\\u00eb", b"\\n", b'\\"q\\"'):
        ok(needle in raw.body, "%r in %r" % (needle, raw.body))
    ok(all(b < 0x80 for b in raw.body), "body is pure ASCII")
    ok(b": " not in raw.body and b", " not in raw.body, "compact JSON")
    eq(raw.headers.get("x-hub-signature-256"), sign(raw.body, sim.app_secret), "sha256 signature")
    eq(raw.headers.get("x-hub-signature"), sign_sha1(raw.body, sim.app_secret), "sha1 signature")
    ok(not raw.signed_ok("another-secret"), "the signature depends on the secret")
    doc = json.loads(raw.body)
    value = doc["entry"][0]["changes"][0]["value"]
    eq(value["contacts"], [{"profile": {"name": "Zoë"}, "wa_id": CUSTOMER}], "contacts")
    msg = value["messages"][0]
    eq(list(msg.keys()), ["from", "id", "timestamp", "type", "text"], "message members")
    eq(msg["text"], {"body": "café / 😀\n\"q\""}, "text decodes back")
    eq(msg["from"], CUSTOMER, "from")
    ok(isinstance(msg["timestamp"], str), "timestamp is a string")


def test_inbound_types(sim, hooks):
    loc = {"latitude": 37.44221496582, "longitude": -122.16165924072, "name": "Philz Coffee"}
    r = sim.inbound(**{"from": CUSTOMER}, type="location", location=loc,
                    context={"from": "15550783881", "id": "wamid.prev"})
    msg = messages_of(r["body"])[0]
    eq(msg["location"], loc, "location passes through (numbers keep their digits)")
    eq(msg["context"], {"from": "15550783881", "id": "wamid.prev"}, "context")
    ok('"latitude":37.44221496582' in r["body"], "number printed as given")
    r = sim.inbound(**{"from": CUSTOMER}, type="reaction",
                    reaction={"message_id": "wamid.x", "emoji": ""})
    eq(messages_of(r["body"])[0]["reaction"], {"message_id": "wamid.x", "emoji": ""}, "reaction")
    r = sim.inbound(**{"from": CUSTOMER}, type="system",
                    system={"body": "changed", "type": "user_changed_number", "wa_id": "1"})
    ok("contacts" not in json.loads(r["body"])["entry"][0]["changes"][0]["value"],
       "system messages have no contacts")
    try:
        sim.inbound(**{"from": CUSTOMER}, type="image")
        raise AssertionError("inbound image without an image object was accepted")
    except SimError:
        pass


def test_inbound_kinds_and_calls(sim, hooks):
    for kind, extra in (("location", {"place": "Alexanderplatz"}), ("contacts", {}), ("button_reply", {}),
                        ("list_reply", {}), ("nfm_reply", {}), ("call_permission_reply", {}), ("button", {}),
                        ("order", {}), ("reaction", {"message_id": "wamid.x"}),
                        ("edit", {"message_id": "wamid.x", "new_text": "now"}), ("revoke", {"message_id": "wamid.x"}),
                        ("unsupported", {}), ("request_welcome", {}), ("from_ad", {}),
                        ("user_changed_user_id", {"user_id": "DE.Old0000000001", "new_user_id": "DE.New0000000002"})):
        r = sim.inbound_kind(kind, sender=CUSTOMER, **extra)
        msg = messages_of(r["body"])[0]
        eq(msg["type"], kind_fields(kind, **dict(extra))["type"], kind + ": its type")
    msg = messages_of(sim.inbound_kind("list_reply", sender=CUSTOMER)["body"])[0]
    eq(msg["interactive"]["list_reply"]["description"], "Delivery between 10 and 12", "list reply description")
    msg = messages_of(sim.inbound_kind("user_changed_user_id", sender=CUSTOMER, user_id="DE.Old0000000001",
                                       new_user_id="DE.New0000000002")["body"])[0]
    eq((msg["from_user_id"], msg["system"]["previous_user_id"], msg["system"]["user_id"]),
       ("DE.Old0000000001", "DE.Old0000000001", "DE.New0000000002"), "user ID change names both")
    r = sim.call(sender=CUSTOMER, name="Caller")
    change = json.loads(r["body"])["entry"][0]["changes"][0]
    eq(change["field"], "calls", "the calls field")
    call = change["value"]["calls"][0]
    eq((call["id"], call["from"], call["event"], call["direction"]), (r["id"], CUSTOMER, "connect", "USER_INITIATED"),
       "a customer's call")
    eq(change["value"]["contacts"][0]["profile"]["name"], "Caller", "the caller in contacts")
    ended = json.loads(sim.call(user_id="DE.Caller000001", event="terminate", status="FAILED", duration=0)["body"])
    call = ended["entry"][0]["changes"][0]["value"]["calls"][0]
    eq((call["from_user_id"], call["status"], "from" in call), ("DE.Caller000001", "FAILED", False), "terminate")
    for bad in ({"event": "ring", "from": CUSTOMER}, {}, {"from": "+49"}, {"from": CUSTOMER, "colour": "red"}):
        try:
            sim.call(**bad)
            raise AssertionError("call %r was accepted" % bad)
        except SimError:
            pass


def test_inbound_bulk(sim, hooks):
    senders = ["4917000000001", "4917000000002", "4917000000003"]
    now = sim.clock()
    r = sim.inbound_bulk(senders, 7, text="bulk {from} #{n}", first=10, per_body=3, name="Bulk",
                         timestamp=now - 60)
    eq((r["messages"], r["bodies"], len(r["deliveries"])), (7, 3, 3), "7 messages in 3 webhooks")
    got = hooks.wait_for(lambda got: len([x for x in got if b"bulk 4917" in x.body]) >= 3,
                         what="3 bulk webhooks")
    mine = [x for x in got if b"bulk 4917" in x.body]
    ok(all(x.signed_ok(sim.app_secret) for x in mine), "every bulk webhook is signed")
    values = sorted((json.loads(x.body)["entry"][0]["changes"][0]["value"] for x in mine),
                    key=lambda v: len(v["messages"]), reverse=True)
    eq(sorted(len(v["messages"]) for v in values), [1, 3, 3], "per_body messages per webhook")
    texts = sorted(m["text"]["body"] for v in values for m in v["messages"])
    eq(texts, sorted("bulk %s #%d" % (senders[n % 3], n) for n in range(10, 17)), "texts")
    for v in values:
        eq(v["metadata"]["phone_number_id"], sim.pnid, "metadata")
        eq([c["wa_id"] for c in v["contacts"]], list(dict.fromkeys(m["from"] for m in v["messages"])),
           "each sender once in contacts")
        ok(all(c["profile"]["name"] == "Bulk" for c in v["contacts"]), "profile name")
        for m in v["messages"]:
            eq(list(m.keys()), ["from", "id", "timestamp", "type", "text"], "message members")
            eq(m["timestamp"], str(now - 60), "timestamp")
    ids = [m["id"] for v in values for m in v["messages"]]
    eq(len(set(ids)), 7, "distinct wamids")
    # the ids are known for mark-as-read, like those of /_sim/inbound
    eq(sim.mark_read(ids[0])[0], 200, "a bulk message can be marked read")
    for bad in ({"count": 1}, {"from": [], "count": 1}, {"from": ["12a"], "count": 1},
                {"from": senders, "count": 0}, {"from": senders, "count": 1, "per_body": 101},
                {"from": senders, "count": 1, "extra": True}):
        try:
            sim.control("POST", "inbound_bulk", bad)
            raise AssertionError("bad bulk request accepted: %r" % bad)
        except SimError:
            pass
    sim.webhook(url=None)
    try:
        sim.inbound_bulk(senders, 1)
        raise AssertionError("bulk inbound without a webhook URL was accepted")
    except SimError:
        pass


def test_webhook_retry(sim, hooks):
    sim.webhook(retry_base_ms=50)
    hooks.set_answers([500, 503])
    r = open_window(sim)
    got = received_with(hooks, r["id"], 3)
    mine = [x for x in got if r["id"].encode() in x.body]
    eq([x.answered for x in mine], [500, 503, 200], "answers seen by the receiver")
    ok(all(x.body == mine[0].body for x in mine), "retries carry identical bytes")
    log = wait_until(lambda: [e for e in sim.webhooks() if e["delivery"] == r["delivery"]]
                     if len([e for e in sim.webhooks() if e["delivery"] == r["delivery"]]) >= 3
                     else None, what="3 logged attempts")
    eq([(e["attempt"], e["status"], e["final"]) for e in log],
       [(1, 500, False), (2, 503, False), (3, 200, True)], "delivery log")
    eq(log[0]["signature_256"], sign(log[0]["body"], sim.app_secret), "logged signature")


def test_webhook_gives_up(sim, hooks):
    sim.webhook(retry_base_ms=20, max_attempts=2)
    hooks.set_answers([500] * 10)
    r = open_window(sim)
    wait_until(lambda: any(e["final"] for e in sim.webhooks() if e["delivery"] == r["delivery"]),
               what="the final attempt")
    log = [e for e in sim.webhooks() if e["delivery"] == r["delivery"]]
    eq([(e["attempt"], e["status"]) for e in log], [(1, 500), (2, 500)], "two attempts")
    eq(len(only_with(hooks, r["id"])), 2, "the receiver saw two attempts")


def test_webhook_unreachable(sim, hooks):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    sim.webhook(url="http://127.0.0.1:%d/hook" % port, retry_base_ms=20, max_attempts=3)
    r = open_window(sim)
    wait_until(lambda: any(e["final"] for e in sim.webhooks() if e["delivery"] == r["delivery"]),
               what="the final attempt")
    log = [e for e in sim.webhooks() if e["delivery"] == r["delivery"]]
    eq([(e["attempt"], e["status"]) for e in log], [(1, 0), (2, 0), (3, 0)],
       "connection failures are retried")
    ok(all(e["error"] for e in log), "the error is logged")


def test_duplicate(sim, hooks):
    sim.webhook(duplicate=True)
    r = open_window(sim)
    got = received_with(hooks, r["id"], 2)
    mine = [x for x in got if r["id"].encode() in x.body]
    eq(mine[0].body, mine[1].body, "duplicates are byte-identical")
    wait_until(lambda: len([e for e in sim.webhooks() if r["id"] in e["body"]]) >= 2,
               what="two logged deliveries")
    log = [e for e in sim.webhooks() if r["id"] in e["body"]]
    eq(sorted(e.get("duplicate_of", 0) for e in log), [0, r["delivery"]], "duplicate_of")


def test_reorder(sim, hooks):
    open_window(sim)
    sim.webhook(reorder=True, reorder_batch=2)
    wamid = sent_ok(sim.send(text(CUSTOMER)), "send")
    hooks.wait_status(wamid, "sent")
    eq([s["status"] for s in hooks.statuses() if s["id"] == wamid], ["delivered", "sent"],
       "statuses arrive in reverse order")
    sim.webhook(reorder=True, reorder_batch=10)
    wamid = sent_ok(sim.send(text(CUSTOMER)), "send")
    wait_until(lambda: sim.webhook()["held"] == 2, what="two held statuses")
    eq([s for s in hooks.statuses() if s["id"] == wamid], [], "held statuses are not delivered")
    sim.webhook(flush=True)
    hooks.wait_status(wamid, "sent")
    eq([s["status"] for s in hooks.statuses() if s["id"] == wamid], ["delivered", "sent"],
       "flushed in reverse order")


def test_webhook_raw(sim, hooks):
    sim.webhook_raw('{"unsigned":1}', sign=False)
    sim.webhook_raw('{"other_secret":1}', secret="other")
    got = received_with(hooks, "other_secret")
    unsigned = received_with(hooks, "unsigned")
    u = [x for x in unsigned if b"unsigned" in x.body][0]
    ok("x-hub-signature-256" not in u.headers, "unsigned body has no signature")
    o = [x for x in got if b"other_secret" in x.body][0]
    eq(o.body, b'{"other_secret":1}', "raw body is sent as is")
    ok(o.signed_ok("other") and not o.signed_ok(sim.app_secret), "signed with the given secret")


# ---- faults ------------------------------------------------------------------

def test_faults(sim, hooks):
    sim.fault(path="/messages", status=503)
    status, body, _ = sim.send(text(CUSTOMER))
    eq((status, body), (503, None), "503 fault with an empty body")
    sent_ok(sim.send(text(CUSTOMER)), "count 1: the next send works")
    eq(len(sim.sent()), 1, "the faulted send was not processed")
    eq([r["fault"] for r in sim.requests()], [True, False], "requests log marks the fault")

    sim.fault(path="/messages", status=500, code=131016)
    err = graph_error(sim.send(text(CUSTOMER)), 500, 131016, "fault with a Graph code",
                      message="(#131016) Service unavailable")
    eq(err.get("is_transient"), True, "131016 is transient")
    sim.fault(path="/messages", code=130429)
    graph_error(sim.send(text(CUSTOMER)), 400, 130429, "fault with code 130429", subcode=2494055,
                message="(#130429) Rate limit hit",
                details="Cloud API message throughput has been reached.")
    sim.fault(path="/messages", status=400, code=131009, subcode=7, message="(#131009) Custom",
              details="custom details")
    graph_error(sim.send(text(CUSTOMER)), 400, 131009, "fault with overrides", subcode=7,
                message="(#131009) Custom", details="custom details")

    sim.fault(path="/messages", status=429, body='{"custom":true}', content_type="application/json")
    eq(sim.send(text(CUSTOMER))[:2], (429, {"custom": True}), "fault with a raw body")

    sim.fault(path="/messages", reset=True)
    try:
        sim.send(text(CUSTOMER))
        raise AssertionError("reset fault answered")
    except SimConnectionError:
        pass
    eq(len(sim.sent()), 1, "a reset request is not processed")
    eq(sim.requests()[-1]["reset"], True, "requests log marks the reset")
    sent_ok(sim.send(text(CUSTOMER)), "after the reset")

    sim.fault(path="/messages", reset=True, process=True)
    try:
        sim.send(text(CUSTOMER, "lost answer"))
        raise AssertionError("reset fault answered")
    except SimConnectionError:
        pass
    eq(sim.sent()[-1]["request"]["text"]["body"], "lost answer",
       "process=true: accepted although the answer was lost")

    sim.fault(path="/messages", status=503, count=2)
    eq([sim.send(text(CUSTOMER))[0] for _ in range(3)], [503, 503, 200], "count 2")

    sim.fault(path="/messages", status=503, count=-1)
    eq([sim.send(text(CUSTOMER))[0] for _ in range(3)], [503, 503, 503], "count -1")
    eq(len(sim.faults()), 1, "rule stays until cleared")
    sim.clear_faults()
    eq(sim.send(text(CUSTOMER))[0], 200, "cleared")

    sim.fault(method="GET", status=500)
    eq(sim.send(text(CUSTOMER))[0], 200, "method filter: POST is not faulted")
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid)[0], 500, "method filter: GET is")

    sim.fault(path="/", status=500, count=-1)
    ok(sim.clock() > 0, "faults never apply to /_sim/")
    sim.clear_faults()


def test_fault_delay(sim, hooks):
    sim.fault(path="/messages", delay_ms=2000)
    result = {}

    def slow():
        start = time.monotonic()
        result["answer"] = sim.send(text(CUSTOMER))
        result["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=slow)
    thread.start()
    wait_until(lambda: sim.control("GET", "fault")["paused"] == 1, what="the delayed send to arrive")
    status, _, _ = sim.graph("GET", "/v25.0/%s" % sim.pnid)
    eq(status, 200, "other requests are answered meanwhile")
    ok(thread.is_alive(), "the delayed request is still waiting")
    thread.join(15)
    eq(result["answer"][0], 200, "the delayed send is answered normally")
    ok(result["elapsed"] >= 1.9, "answer took %.2f s" % result["elapsed"])


def fault_pattern(sim, n, **rule):
    """Adds ``rule`` to a clean simulator and sends ``n`` texts: "x" for a
    faulted answer, "." for a normal one."""
    sim.reset()
    open_window(sim)
    sim.fault(path="/messages", count=-1, **rule)
    return "".join("x" if sim.send(text(CUSTOMER))[0] == 500 else "." for _ in range(n))


def test_fault_probability(sim, hooks):
    first = fault_pattern(sim, 60, status=500, probability=0.3, seed=7)
    ok(8 <= first.count("x") <= 30, "about 30 %% faulted: %s" % first)
    eq(fault_pattern(sim, 60, status=500, probability=0.3, seed=7), first,
       "the same seed gives the same faults")
    ok(fault_pattern(sim, 60, status=500, probability=0.3, seed=8) != first, "another seed, other faults")
    eq(fault_pattern(sim, 20, status=500, probability=0.0), "." * 20, "probability 0 never fires")
    eq(len(sim.sent()), 20, "requests a rule let pass are processed")
    listed = sim.faults()[0]
    eq((listed["probability"], listed["seed"], listed["remaining_ms"]), (0.0, 0, None), "listing")
    # count counts the requests the rule triggered; an unlucky draw tries the next rule
    sim.reset()
    open_window(sim)
    sim.fault(path="/messages", status=500, probability=0.5, seed=1, count=3)
    sim.fault(path="/messages", status=503, count=-1)
    answers = [sim.send(text(CUSTOMER))[0] for _ in range(40)]
    eq(answers.count(500), 3, "count 3 of a probabilistic rule")
    eq(answers.count(503), 37, "the others fell through to the next rule")
    for bad in ({"probability": 1.5}, {"probability": "half"}, {"seed": "x"}, {"duration_ms": -1},
                {"process_before_delay": True}):
        try:
            sim.fault(path="/messages", status=500, **bad)
            raise AssertionError("bad rule accepted: %r" % bad)
        except SimError:
            pass


def test_fault_duration(sim, hooks):
    sim.fault(path="/messages", reset=True, count=-1, duration_ms=1000)
    listed = sim.faults()[0]
    ok(0 < listed["remaining_ms"] <= 1000, "remaining_ms %r" % listed["remaining_ms"])
    try:
        sim.send(text(CUSTOMER))
        raise AssertionError("answered during the outage")
    except SimConnectionError:
        pass
    wait_until(lambda: sim.faults() == [], timeout=5, what="the rule to expire")
    sent_ok(sim.send(text(CUSTOMER)), "after the outage")


def test_fault_process_before_delay(sim, hooks):
    open_window(sim)
    sim.fault(path="/messages", status=500, delay_ms=1500, process_before_delay=True)
    result = {}
    thread = threading.Thread(target=lambda: result.update(answer=sim.send(text(CUSTOMER, "early"))))
    thread.start()
    wait_until(lambda: [m for m in sim.sent() if m["request"]["text"]["body"] == "early"], timeout=1.2,
               what="the send accepted on arrival")
    ok(thread.is_alive(), "the answer is still held")
    wamid = sim.sent()[-1]["wamid"]
    hooks.wait_status(wamid, "sent")
    thread.join(15)
    eq(result["answer"][0], 500, "then the late answer is the fault's")
    eq(len(sim.sent()), 1, "accepted once")
    eq(sim.faults(), [], "count 1 used up")


def test_fault_refuse(sim, hooks):
    graph = sim.graph_url
    ok(graph.startswith("http://127.0.0.1:") and graph != sim.base_url, "graph_url %r" % graph)
    host, port = graph[len("http://"):].split(":")
    port = int(port)
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid, base=graph)[0], 200, "the Graph port serves Graph routes")
    eq(sim.graph("GET", "/_sim/clock", base=graph)[0], 200, "and the control API")
    # a kept-alive connection, then a delayed send on another one
    keep = http.client.HTTPConnection(host, port, timeout=10)
    keep.request("GET", "/v25.0/%s" % sim.pnid, headers={"Authorization": "Bearer " + sim.token})
    answer = keep.getresponse()
    answer.read()
    eq((answer.status, answer.will_close), (200, False), "kept-alive connection")
    open_window(sim)
    sim.fault(path="/messages", delay_ms=800)
    result = {}

    def delayed():
        try:
            result["answer"] = sim.graph("POST", sim.messages_path(), text(CUSTOMER, "cut"), base=graph)
        except SimConnectionError as error:
            result["error"] = error

    thread = threading.Thread(target=delayed)
    thread.start()
    wait_until(lambda: sim.control("GET", "fault")["paused"] == 1, what="the delayed send")
    left = sim.refuse(1500)
    ok(0 < left <= 1500, "refusing_ms %r" % left)
    thread.join(15)
    ok("error" in result, "the request in flight got no answer: %r" % result)
    try:
        keep.request("GET", "/v25.0/%s" % sim.pnid, headers={"Authorization": "Bearer " + sim.token})
        keep.getresponse()
        raise AssertionError("the kept-alive connection still works")
    except (OSError, http.client.HTTPException):
        pass
    keep.close()
    try:
        socket.create_connection((host, port), timeout=5).close()
        raise AssertionError("a connection was accepted while refusing")
    except ConnectionRefusedError:
        pass
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid)[0], 200, "the main port works meanwhile")
    ok(sim.refusing_ms() > 0, "refusing_ms while refusing")
    # the delayed send still runs when its delay ends: Meta took it, the answer was lost
    wait_until(lambda: [m for m in sim.sent() if m["request"]["text"]["body"] == "cut"], timeout=5,
               what="the cut send processed")
    wait_until(lambda: sim.refusing_ms() == 0, timeout=10, what="the refusal to end")
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid, base=graph)[0], 200, "the same port listens again")
    # DELETE /_sim/fault ends a refusal at once; a refusal takes nothing else
    sim.refuse(60000)
    sim.clear_faults()
    eq(sim.refusing_ms(), 0, "ended by DELETE")
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid, base=graph)[0], 200, "listening again after DELETE")
    for bad in ({"refuse": True}, {"refuse": True, "duration_ms": 100, "path": "/messages"},
                {"refuse": True, "duration_ms": 100, "status": 500}):
        try:
            sim.control("POST", "fault", bad)
            raise AssertionError("bad refusal accepted: %r" % bad)
        except SimError:
            pass
    sim.refuse(60000)
    sim.reset()
    eq(sim.graph("GET", "/v25.0/%s" % sim.pnid, base=graph)[0], 200, "reset ends a refusal")


def test_webhook_retry_max(sim, hooks):
    sim.webhook(retry_base_ms=300, retry_max_ms=300, max_attempts=6)
    eq(sim.webhook()["retry_max_ms"], 300, "setting")
    hooks.set_answers([500] * 5)
    start = time.monotonic()
    r = open_window(sim)
    received_with(hooks, r["id"], 6)
    # uncapped: 0.3 + 0.6 + 1.2 + 2.4 + 4.8 = 9.3 s; capped: 5 x 0.3 = 1.5 s
    ok(time.monotonic() - start < 6, "retries at a steady pace (%.1f s)" % (time.monotonic() - start))
    try:
        sim.webhook(retry_max_ms=0)
        raise AssertionError("retry_max_ms 0 accepted")
    except SimError:
        pass


# ---- logs, templates, reset, process ----------------------------------------

def test_sent_and_request_logs(sim, hooks):
    body = text("+49 170 1234-5678", "logged", context={"message_id": "wamid.prev"})
    status, answer, _ = sim.send(body)
    eq(status, 200, "send")
    entry = sim.sent()[-1]
    eq(entry["request"], body, "the request as received")
    eq(entry["authorization"], "Bearer " + sim.token, "the raw Authorization header")
    eq((entry["to"], entry["wa_id"], entry["type"], entry["pnid"]),
       ("+49 170 1234-5678", "4917012345678", "text", sim.pnid), "sent entry")
    eq(entry["wamid"], answer["messages"][0]["id"], "sent entry wamid")
    ok(abs(entry["time"] - sim.clock()) <= 5, "sent entry time")
    req = sim.requests()[-1]
    eq((req["method"], req["path"], req["status"], req["error_code"], req["authorization"],
        req["user_agent"], req["content_type"]),
       ("POST", sim.messages_path(), 200, None, True, "simctl/1", "application/json"), "request entry")
    graph_error(sim.send(text("")), 400, 100, "empty text")
    eq(sim.requests()[-1]["error_code"], 100, "request log error code")
    first = sim.sent()[0]["seq"]
    sent_ok(sim.send(text(CUSTOMER)), "another")
    eq([e["seq"] for e in sim.sent(since=first)], [first + 1], "since")


def test_templates(sim, hooks):
    sim.config(templates_missing=["gone_template"])
    graph_error(sim.send_template(CUSTOMER, name="gone_template"), 404, 132001, "missing template",
                message="(#132001) Template name does not exist in the translation")
    sent_ok(sim.send_template(CUSTOMER, name="any_other"), "empty registry accepts all")
    sim.config(templates={"order_update": "MARKETING", "otp:en_US": "AUTHENTICATION"})
    graph_error(sim.send_template(CUSTOMER, name="any_other"), 404, 132001, "not in the registry")
    graph_error(sim.send_template(CUSTOMER, name="otp", language="de"), 404, 132001,
                "registered for another language")
    wamid = sent_ok(sim.send_template(CUSTOMER, name="order_update"), "registered template")
    eq(hooks.wait_status(wamid, "sent")["pricing"]["category"], "marketing", "category")
    wamid = sent_ok(sim.send_template(CUSTOMER, name="otp"), "registered with language")
    eq(hooks.wait_status(wamid, "sent")["pricing"]["category"], "authentication", "category")


def test_config_and_reset(sim, hooks):
    try:
        sim.config(throughput=5)
        raise AssertionError("unknown knob accepted")
    except SimError:
        pass
    try:
        sim.config(throughput_mps=5, auto_statuses=["bogus"])
        raise AssertionError("bad auto_statuses accepted")
    except SimError:
        pass
    eq(sim.config()["throughput_mps"], 80, "a rejected config changes nothing")
    sim.config(throughput_mps=5, status_delay_ms=10)
    sim.fault(path="/x", status=500, count=-1)
    open_window(sim)
    sent_ok(sim.send(text(CUSTOMER)), "send")
    sim.clock_advance(3600)
    sim.reset()
    eq((sim.sent(), sim.requests(), sim.reads(), sim.webhooks(), sim.faults()),
       ([], [], [], [], []), "reset clears logs and faults")
    eq(sim.config()["throughput_mps"], 80, "reset restores knobs")
    ok(abs(sim.clock() - time.time()) < 60, "reset restores the clock")
    eq(sim.webhook()["url"], None, "reset restores the command-line webhook URL (none)")


def test_process(sim, hooks):
    with tempfile.TemporaryDirectory() as tmp:
        ready = os.path.join(tmp, "ready")
        other = Sim.start(BINARY, ready_file=ready, pnid="999888777", webhook_url=hooks.url,
                          stderr=subprocess.DEVNULL)
        try:
            with open(ready) as f:
                eq(f.read(), other.base_url + "\n", "ready file holds the base URL")
            ok(other.base_url.startswith("http://127.0.0.1:"), "base URL %r" % other.base_url)
            ok(other.base_url != sim.base_url, "port 0 picks a free port")
            eq(other.graph("GET", "/v25.0/999888777")[0], 200, "--pnid")
            eq(other.webhook()["url"], hooks.url, "--webhook-url")
            r = other.inbound(**{"from": CUSTOMER}, text="via CLI URL")
            received_with(hooks, r["id"])
        finally:
            eq(other.stop(), 0, "clean exit on SIGTERM")
    for bad in ({"bind": "not-an-address"}, {"port": 70000}, {"no_such_option": 1},
                {"number": "106540352242999"}, {"number": "12ab=+1 555-0100"},
                {"number": ["777=+1 555-0100", "777=+1 555-0101"]}):
        try:
            Sim.start(BINARY, stderr=subprocess.DEVNULL, **bad)
            raise AssertionError("bad option accepted: %r" % bad)
        except SimError:
            pass


def test_second_number(sim, hooks):
    """A second phone number of the business (--number): its own GET, sends,
    windows, throughput and webhook metadata; the WABA's portfolio is shared."""
    first, second = sim.pnids
    status, body, _ = sim.graph("GET", "/v25.0/%s?fields=display_phone_number" % second)
    eq((status, body), (200, {"display_phone_number": SECOND_DISPLAY, "id": second}), "GET second")
    eq([n["pnid"] for n in sim.info()["numbers"]], [first, second], "info lists the numbers")
    number = "4917044440000"
    r = sim.inbound(**{"from": number}, text="to the second number", pnid=second)
    value = json.loads(r["body"])["entry"][0]["changes"][0]["value"]
    eq(value["metadata"], {"display_phone_number": "15550783882", "phone_number_id": second},
       "inbound metadata names the second number")
    # the window is the second number's only
    wamid = sent_ok(sim.graph("POST", sim.messages_path(pnid=second), text(number)), "send from second")
    st = hooks.wait_status(wamid, "delivered")
    eq(sim.sent()[-1]["pnid"], second, "sent log names the second number")
    delivery = [x for x in hooks.snapshot() if wamid.encode() in x.body][-1]
    eq(json.loads(delivery.body)["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"],
       second, "status metadata names the sending number")
    eq(st["recipient_id"], number, "recipient")
    wamid = sent_ok(sim.send(text(number)), "send from the first number")
    eq(hooks.wait_status(wamid, "failed")["errors"][0]["code"], 131047, "first number's window closed")
    # each number has its own throughput
    sim.clock_freeze()
    sim.config(throughput_mps=1)
    sent_ok(sim.send_template("+4917044440001"), "first number, first token")
    graph_error(sim.send_template("+4917044440002"), 400, 130429, "first number over its limit",
                subcode=2494055)
    sent_ok(sim.graph("POST", sim.messages_path(pnid=second),
                      {"messaging_product": "whatsapp", "to": "+4917044440003", "type": "template",
                       "template": {"name": "hello_world", "language": {"code": "en_US"}}}),
            "second number has its own bucket")
    # the portfolio is the business's: both numbers' templates count
    customers = sorted(e["customer"] for e in sim.portfolio()["recipients"])
    eq(customers, ["4917044440001", "4917044440003"], "one portfolio for both numbers")
    graph_error(sim.graph("GET", "/v25.0/106540352242999"), 400, 100, "unknown number",
                subcode=33)
    try:
        sim.inbound(**{"from": number}, text="x", pnid="106540352242999")
        raise AssertionError("inbound to an unknown number accepted")
    except SimError as error:
        ok("not a phone number of this business" in str(error), "unknown pnid: %s" % error)


# ---- media: registry, lookup, signed download ------------------------------

def _download(url, token):
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_media_lookup_and_download(sim, hooks):
    content = bytes(range(256)) * 300
    media = sim.media(content, mime_type="image/jpeg")
    eq(media["sha256"], base64.b64encode(hashlib.sha256(content).digest()).decode(), "webhook digest (base64)")
    status, body, _ = sim.graph("GET", "/%s/%s" % (sim.version, media["id"]))
    eq(status, 200, "lookup status")
    eq(body["mime_type"], "image/jpeg", "mime_type")
    eq(body["sha256"], hashlib.sha256(content).hexdigest(), "lookup digest (hex)")
    eq(body["file_size"], str(len(content)), "file_size")
    ok(body["url"].startswith(sim.base_url + "/_media/"), "URL on the sim's host: %r" % body["url"])
    # the token is required, the signature and the expiry too
    eq(_download(body["url"], None)[0], 401, "download without token")
    eq(_download(body["url"], "wrong")[0], 401, "download with another token")
    eq(_download(body["url"].replace("sig=", "sig=0"), sim.token)[0], 403, "altered signature")
    eq(_download(body["url"], sim.token), (200, content), "download")
    sim.clock_advance(301)
    eq(_download(body["url"], sim.token)[0], 403, "URL past 5 minutes")
    # media ids live 7 days; unknown ids get Meta's error
    sim.clock_advance(7 * 86400)
    graph_error(sim.graph("GET", "/%s/%s" % (sim.version, media["id"])), 400, 100, "expired media id", subcode=33)
    graph_error(sim.graph("GET", "/%s/123456" % sim.version), 400, 100, "unknown media id", subcode=33)
    eq(sim.graph("GET", "/%s/%s" % (sim.version, media["id"]), token="nope")[0], 401, "lookup without the token")


def test_media_faults_and_generated(sim, hooks):
    media = sim.media(size=3 * 65536 + 5, seed=3, mime_type="application/pdf", download_fail_next=2,
                      lookup_fail_next=1)
    graph_error(sim.graph("GET", "/%s/%s" % (sim.version, media["id"])), 500, 2, "lookup fault")
    status, body, _ = sim.graph("GET", "/%s/%s" % (sim.version, media["id"]))
    eq(status, 200, "lookup after the fault")
    eq(_download(body["url"], sim.token)[0], 500, "first download")
    eq(_download(body["url"], sim.token)[0], 500, "second download")
    status, data = _download(body["url"], sim.token)
    eq(status, 200, "third download")
    eq(len(data), 3 * 65536 + 5, "generated size")
    eq(hashlib.sha256(data).hexdigest(), media["sha256_hex"], "generated digest")
    listed = sim.media_list()[media["id"]]
    eq((listed["lookups"], listed["downloads"]), (2, 3), "counts")
    sim.media(id=media["id"], gone=True, wrong_digest=True)
    status, body, _ = sim.graph("GET", "/%s/%s" % (sim.version, media["id"]))
    eq(body["sha256"], "0" * 64, "a wrong digest on request")
    eq(_download(body["url"], sim.token)[0], 404, "gone")


# ---- template catalogue -------------------------------------------------------

def order_template(**extra):
    """A realistic positional utility template with every component kind."""
    t = {"name": "order_update", "language": "en_US", "category": "UTILITY",
         "components": [
             {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}",
              "example": {"header_text": ["#123"]}},
             {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships on {{3}}.",
              "example": {"body_text": [["Pablo", "#123", "Monday"]]}},
             {"type": "FOOTER", "text": "Jaspers Market"},
             {"type": "BUTTONS", "buttons": [
                 {"type": "QUICK_REPLY", "text": "Stop updates"},
                 {"type": "URL", "text": "Track", "url": "https://example.com/track/{{1}}",
                  "example": ["https://example.com/track/abc"]},
                 {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550783881"}]}]}
    t.update(extra)
    return t


def named_template(**extra):
    t = {"name": "appointment_named", "language": "de", "category": "UTILITY",
         "parameter_format": "NAMED",
         "components": [
             {"type": "BODY", "text": "Hallo {{first_name}}, Ihr Termin ist am {{date}}.",
              "example": {"body_text_named_params": [
                  {"param_name": "first_name", "example": "Anna"},
                  {"param_name": "date", "example": "Montag"}]}}]}
    t.update(extra)
    return t


def follow_next(sim, url):
    """GET a paging.next URL (it names the simulator's own host and port)."""
    base, _, rest = url.partition("/v25.0/")
    return sim.graph("GET", "/v25.0/" + rest, base=base)


def test_template_catalogue_shape(sim, hooks):
    tid = sim.add_template(order_template())
    sim.add_template(named_template(status="PAUSED", quality_score="YELLOW", id="987654321"))
    status, body, headers = sim.list_templates()
    eq(status, 200, "list status")
    ok("x-business-use-case-usage" in headers, "usage header on management calls")
    eq([list(t) for t in body["data"]][0],
       ["name", "parameter_format", "components", "language", "status", "category", "id"],
       "default fields and their order")
    first = body["data"][0]
    eq((first["id"], first["name"], first["status"], first["category"],
        first["parameter_format"], first["language"]),
       (tid, "order_update", "APPROVED", "UTILITY", "POSITIONAL", "en_US"), "first template")
    ok(isinstance(first["id"], str), "id is a string")
    eq(first["components"], order_template()["components"], "components as added")
    eq(body["data"][1]["id"], "987654321", "explicit id")
    ok("next" not in body["paging"] and "previous" not in body["paging"], "one page: no next")
    status, body, _ = sim.list_templates(fields="name,quality_score,status")
    eq(list(body["data"][1]), ["name", "quality_score", "status", "id"], "requested fields")
    eq(body["data"][1]["quality_score"]["score"], "YELLOW", "quality_score.score")
    ok(isinstance(body["data"][1]["quality_score"]["date"], int), "quality_score.date")
    eq([t["name"] for t in sim.list_templates(status="paused")[1]["data"]],
       ["appointment_named"], "status filter (any case)")
    eq([t["name"] for t in sim.list_templates(name="order")[1]["data"]], ["order_update"],
       "name filter (substring)")
    eq(sim.list_templates(language="fr")[1], {"data": []}, "no match: data only")
    graph_error(sim.list_templates(fields="name,colour"), 400, 100, "unknown field",
                message="(#100) Tried accessing nonexisting field (colour) on node type "
                        "(WhatsAppBusinessHSM)")
    graph_error(sim.list_templates(after="bm9wZQ=="), 400, 100, "bad cursor")
    graph_error(sim.list_templates(limit="0"), 400, 100, "bad limit")
    graph_error(sim.list_templates(token=sim.token_no_permission), 403, 200, "no permission")
    graph_error(sim.graph("POST", sim.templates_path(), {"name": "x"}), 400, 100,
                "create is not simulated", subcode=33)
    graph_error(sim.graph("GET", "/v25.0/999/message_templates"), 400, 100, "another WABA",
                subcode=33)
    # one template by id
    status, one, _ = sim.graph("GET", "/v25.0/%s?fields=name,status" % tid)
    eq((status, one), (200, {"name": "order_update", "status": "APPROVED", "id": tid}),
       "GET /{template-id}")
    eq(sim.graph("GET", "/v25.0/%s" % tid)[1]["components"], order_template()["components"],
       "GET /{template-id}: default fields")
    graph_error(sim.graph("GET", "/v25.0/%s?fields=x" % tid), 400, 100, "bad field by id")
    graph_error(sim.graph("GET", "/v25.0/%s" % tid, token=sim.token_no_permission), 403, 200,
                "template by id without permission")
    # replace keeps the id and the place; delete
    sim.add_template(order_template(category="MARKETING"))
    eq([(t["id"], t["category"]) for t in sim.templates()][0], (tid, "MARKETING"), "replaced")
    eq(sim.delete_template("order_update"), 1, "deleted")
    eq([t["name"] for t in sim.templates()], ["appointment_named"], "left")
    for bad in ({"name": "Bad-Name", "language": "en"}, {"name": "x"},
                {"name": "x", "language": "en", "status": "MAYBE"},
                {"name": "x", "language": "en", "colour": 1},
                {"name": "x", "language": "en", "components": [{"text": "no type"}]}):
        try:
            sim.add_template(bad)
        except SimError:
            continue
        raise AssertionError("accepted %r" % (bad,))


def test_template_paging(sim, hooks):
    sim.add_templates([{"name": "tpl_%03d" % i, "language": "en_US",
                        "status": "APPROVED" if i % 3 else "REJECTED",
                        "components": [{"type": "BODY", "text": "Message %d" % i}]}
                       for i in range(60)])
    status, body, _ = sim.list_templates(fields="name")
    eq(len(body["data"]), 25, "default limit 25")
    seen, pages = [t["name"] for t in body["data"]], 1
    while "next" in body["paging"]:
        ok("limit=25" in body["paging"]["next"] and "fields=name" in body["paging"]["next"],
           "next keeps the query: %s" % body["paging"]["next"])
        status, body, _ = follow_next(sim, body["paging"]["next"])
        eq(status, 200, "next page")
        ok("previous" in body["paging"], "later pages have previous")
        seen += [t["name"] for t in body["data"]]
        pages += 1
    eq(seen, ["tpl_%03d" % i for i in range(60)], "cursor walk sees each template once, in order")
    eq(pages, 3, "pages")
    # a template added while walking shows up at the end; deleted ones do not break a cursor
    _, page1, _ = sim.list_templates(limit=10, status="APPROVED")
    eq(len(page1["data"]), 10, "filtered page")
    ok(all(t["status"] == "APPROVED" for t in page1["data"]), "status filter across pages")
    sim.delete_template(page1["data"][-1]["name"])
    _, page2, _ = sim.list_templates(limit=10, status="APPROVED",
                                     after=page1["paging"]["cursors"]["after"])
    eq(page2["data"][0]["name"], "tpl_016", "after a deleted cursor template")
    _, back, _ = sim.list_templates(limit=10, status="APPROVED",
                                    before=page2["paging"]["cursors"]["before"])
    eq([t["name"] for t in back["data"]], [t["name"] for t in page1["data"][:-1]],
       "before cursor: the previous page")
    _, page, _ = sim.list_templates(base=sim.graph_url, limit=50)
    ok(page["paging"]["next"].startswith(sim.graph_url + "/v25.0/"),
       "next names the host and port asked: %s" % page["paging"]["next"])
    _, big, _ = sim.list_templates(limit=5000, fields="name")
    eq(len(big["data"]), 59, "a large limit returns everything")
    ok("next" not in big["paging"], "no next on the last page")


def test_template_webhooks(sim, hooks):
    hooks.clear()
    tid = sim.add_template(order_template(quality_score="GREEN"))
    r = sim.set_template_status("order_update", "en_US", "PAUSED", reason="NONE",
                                other_info={"title": "FIRST_PAUSE", "description": "low quality"})
    eq(r["template"]["status"], "PAUSED", "status changed")
    sim.set_template_quality("order_update", "en_US", "RED")
    sim.set_template_category("order_update", "en_US", "MARKETING")
    sim.set_template_components("order_update", "en_US",
                                [{"type": "BODY", "text": "New text {{1}}"}])
    got = hooks.wait_count(4)
    by_field = {}
    for x in got:
        ok(x.signed_ok(), "template webhook signed")
        entry = x.json["entry"][0]
        eq(entry["id"], sim.waba_id, "entry id is the WABA id")
        ok(isinstance(entry["time"], int), "entry.time")
        change = entry["changes"][0]
        ok("metadata" not in change["value"] and "messaging_product" not in change["value"],
           "no metadata in template webhooks")
        by_field[change["field"]] = change["value"]
    eq(by_field["message_template_status_update"],
       {"event": "PAUSED", "message_template_id": int(tid),
        "message_template_name": "order_update", "message_template_language": "en_US",
        "reason": "NONE", "message_template_category": "UTILITY",
        "other_info": {"title": "FIRST_PAUSE", "description": "low quality"}}, "status update")
    eq(by_field["message_template_quality_update"],
       {"previous_quality_score": "GREEN", "new_quality_score": "RED",
        "message_template_id": int(tid), "message_template_name": "order_update",
        "message_template_language": "en_US"}, "quality update")
    eq(by_field["template_category_update"],
       {"message_template_id": int(tid), "message_template_name": "order_update",
        "message_template_language": "en_US", "previous_category": "UTILITY",
        "new_category": "MARKETING"}, "category update")
    eq(by_field["message_template_components_update"]["message_template_element"],
       "New text {{1}}", "components update")
    t = sim.list_templates(fields="status,category,previous_category,quality_score")[1]["data"][0]
    eq((t["status"], t["category"], t["previous_category"], t["quality_score"]["score"]),
       ("PAUSED", "MARKETING", "UTILITY", "RED"), "the listing follows the changes")
    try:
        sim.set_template_status("order_update", "fr", "APPROVED")
        raise AssertionError("unknown template accepted")
    except SimError as e:
        ok("404" in str(e), "unknown template: 404")


def test_template_management_limit(sim, hooks):
    sim.clock_freeze()
    sim.add_template(order_template())
    sim.config(management_calls_per_hour=4)
    for i in range(4):
        status, _, headers = sim.list_templates()
        eq(status, 200, "call %d" % i)
    usage = json.loads(headers["x-business-use-case-usage"])[sim.waba_id][0]
    eq((usage["type"], usage["call_count"], usage["estimated_time_to_regain_access"]),
       ("whatsapp_business_management", 100, 0), "usage at the limit")
    result = sim.list_templates()
    graph_error(result, 400, 80008, "over the limit", subcode=2446079)
    ok(result[1]["error"]["message"].startswith("(#80008) There have been too many calls"),
       "80008 message")
    usage = json.loads(result[2]["x-business-use-case-usage"])[sim.waba_id][0]
    eq(usage["call_count"], 100, "call_count 100 when over")
    eq(usage["estimated_time_to_regain_access"], 60, "minutes until the hour has passed")
    sim.clock_advance(3601)
    eq(sim.list_templates()[0], 200, "an hour later")
    media = sim.media(content=JPEG, mime_type="image/jpeg")["id"]
    for i in range(4):
        eq(sim.graph("GET", "/v25.0/%s" % media)[0], 200, "media lookup %d" % i)
    eq(sim.list_templates()[0], 200, "media lookups are not management calls")
    eq([r["management"] for r in sim.requests()][-6:], [True] + [False] * 4 + [True],
       "requests log: management")
    sim.config(management_calls_per_hour=200, management_exhausted=True)
    graph_error(sim.list_templates(), 400, 80008, "exhausted by the knob", subcode=2446079)
    sent_ok(tsend(sim, "order_update", "en_US", order_components()),
            "sends are not management calls")


def tsend(sim, name, language, components=None, to=CUSTOMER, version=None):
    template = {"name": name, "language": {"code": language}}
    if components is not None:
        template["components"] = components
    return sim.send({"messaging_product": "whatsapp", "to": to, "type": "template",
                     "template": template}, version=version)


def body_params(*values, names=None):
    params = [{"type": "text", "text": v} for v in values]
    for p, n in zip(params, names or []):
        p["parameter_name"] = n
    return {"type": "body", "parameters": params}


def order_components(name="Pablo", header="#123", suffix="abc", extra_buttons=()):
    return [{"type": "header", "parameters": [{"type": "text", "text": header}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": name}, {"type": "text", "text": "#123"},
                {"type": "date_time", "date_time": {"fallback_value": "Monday"}}]},
            {"type": "button", "sub_type": "url", "index": "1",
             "parameters": [{"type": "text", "text": suffix}]}] + list(extra_buttons)


def test_template_send_checks(sim, hooks):
    sim.add_template(order_template())
    sim.add_template(named_template())
    # closed window: templates still go out, free-form is refused with 131047
    status, body, _ = tsend(sim, "order_update", "en_US", order_components())
    eq(status, 200, "valid positional send (%r)" % (body,))
    eq(body["messages"][0]["message_status"], "accepted", "message_status")
    wamid = body["messages"][0]["id"]
    hooks.wait_status(wamid, "delivered")
    record = sim.sent()[-1]["template"]
    eq(record, {"name": "order_update", "language": "en_US", "category": "UTILITY",
                "header": "Order #123", "body": "Hi Pablo, your order #123 ships on Monday.",
                "footer": "Jaspers Market",
                "text": "Order #123\nHi Pablo, your order #123 ships on Monday.\nJaspers Market"},
       "recorded rendering")
    eq(sim.sent()[-1]["window_open"], False, "sent with the window closed")
    wamid = sent_ok(sim.send(text(CUSTOMER)), "free-form accepted")
    eq(hooks.wait_status(wamid, "failed")["errors"][0]["code"], 131047, "free-form: 131047")
    named = [body_params("Anna", "Montag", names=["first_name", "date"])]
    sent_ok(tsend(sim, "appointment_named", "de", named), "valid named send")
    eq(sim.sent()[-1]["template"]["body"], "Hallo Anna, Ihr Termin ist am Montag.", "named render")
    sent_ok(tsend(sim, "appointment_named", "de",
                  [body_params("Montag", "Anna", names=["date", "first_name"])]),
            "named parameters in any order")

    e = "(#132001) Template name does not exist in the translation"
    graph_error(tsend(sim, "no_such", "en_US"), 404, 132001, "unknown name", message=e,
                details="template name (no_such) does not exist in en_US")
    graph_error(tsend(sim, "order_update", "de", order_components()), 404, 132001,
                "unknown language", message=e)
    count = "(#132000) Number of parameters does not match the expected number of params"
    graph_error(tsend(sim, "order_update", "en_US", order_components()[:1]
                      + [body_params("Pablo")] + order_components()[2:]), 400, 132000,
                "body count", message=count,
                details="body: number of localizable_params (1) does not match the expected "
                        "number of params (3)")
    graph_error(tsend(sim, "order_update", "en_US", order_components()[1:]), 400, 132000,
                "header missing", details="header: number of localizable_params (0) does not "
                "match the expected number of params (1)")
    graph_error(tsend(sim, "order_update", "en_US", order_components()[:2]), 400, 132000,
                "dynamic URL button missing")
    # a NAMED template sent without names: Meta's 100 on every version
    bad = [body_params("Anna", "Montag")]
    for version in (None, "v22.0"):
        graph_error(tsend(sim, "appointment_named", "de", bad, version=version), 400, 100,
                    "named without names (%s)" % version, message="(#100) Invalid parameter",
                    details="Parameter name is missing or empty")
    graph_error(tsend(sim, "appointment_named", "de",
                      [body_params("Anna", "Montag", names=["first_name", ""])]), 400, 100,
                "an empty parameter_name", details="Parameter name is missing or empty")
    # format errors: 132018 on v23 and later, 132012 before
    unknown = [body_params("Anna", "Montag", names=["first_name", "day"])]
    graph_error(tsend(sim, "appointment_named", "de", unknown), 400, 132018,
                "unknown parameter_name",
                message="(#132018) There was an issue with the parameters in your template.")
    graph_error(tsend(sim, "appointment_named", "de", unknown, version="v22.0"), 400, 132012,
                "unknown parameter_name (v22)",
                message="(#132012) Parameter format does not match format in the created "
                        "template")
    graph_error(tsend(sim, "order_update", "en_US", order_components(name="two\nlines")), 400,
                132018, "new line in a parameter",
                details="Param text cannot have new-line/tab characters or more than 4 "
                        "consecutive spaces")
    positional_named = order_components()
    positional_named[1]["parameters"][0]["parameter_name"] = "x"
    graph_error(tsend(sim, "order_update", "en_US", positional_named), 400, 132018,
                "parameter_name on a positional template")
    graph_error(tsend(sim, "order_update", "en_US", order_components(name="x" * 1000)), 400,
                132005, "rendered body too long", message="(#132005) Translated text too long")
    graph_error(tsend(sim, "order_update", "en_US", order_components(header="y" * 60)), 400,
                132005, "rendered header too long")
    # buttons
    graph_error(tsend(sim, "order_update", "en_US", order_components(extra_buttons=[
        {"type": "button", "sub_type": "quick_reply", "index": 5,
         "parameters": [{"type": "payload", "payload": "P"}]}])), 400, 131009,
        "no button at that index")
    graph_error(tsend(sim, "order_update", "en_US", order_components(extra_buttons=[
        {"type": "button", "sub_type": "url", "index": 0,
         "parameters": [{"type": "text", "text": "x"}]}])), 400, 131009,
        "sub_type does not fit the button")
    sent_ok(tsend(sim, "order_update", "en_US", order_components(extra_buttons=[
        {"type": "button", "sub_type": "quick_reply", "index": 0,
         "parameters": [{"type": "payload", "payload": "STOP"}]}])), "quick reply payload")
    # status
    sim.set_template_status("order_update", "en_US", "PAUSED")
    graph_error(tsend(sim, "order_update", "en_US", order_components()), 400, 132015, "paused",
                message="(#132015) Template is Paused")
    sim.set_template_status("order_update", "en_US", "DISABLED")
    graph_error(tsend(sim, "order_update", "en_US", order_components()), 400, 132016, "disabled",
                message="(#132016) Template is Disabled")
    for status in ("PENDING", "REJECTED", "IN_APPEAL", "LIMIT_EXCEEDED", "ARCHIVED"):
        sim.set_template_status("order_update", "en_US", status)
        graph_error(tsend(sim, "order_update", "en_US", order_components()), 404, 132001,
                    "status %s" % status)
    eq([m["template"]["name"] for m in sim.sent() if m["type"] == "template"],
       ["order_update", "appointment_named", "appointment_named", "order_update"],
       "only accepted sends are recorded")


def test_template_header_media(sim, hooks):
    sim.add_template({"name": "receipt", "language": "en", "components": [
        {"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Your receipt"}]})
    media_id = sim.upload(JPEG, "image/jpeg", "r.jpg")[1]["id"]
    header = lambda param: [{"type": "header", "parameters": [param]}]  # noqa: E731
    sent_ok(tsend(sim, "receipt", "en", header({"type": "image", "image": {"id": media_id}})),
            "uploaded image id")
    sent_ok(tsend(sim, "receipt", "en",
                  header({"type": "image", "image": {"link": "https://example.com/r.jpg"}})),
            "image link")
    graph_error(tsend(sim, "receipt", "en", header({"type": "image", "image": {"id": "4242"}})),
                400, 131053, "unknown media id")
    graph_error(tsend(sim, "receipt", "en",
                      header({"type": "document", "document": {"id": media_id}})),
                400, 132018, "wrong header format",
                details="header: Format mismatch, expected IMAGE, received document")
    graph_error(tsend(sim, "receipt", "en"), 400, 132000, "no header parameter")
    eq(sim.sent()[-1]["template"]["text"], "Your receipt", "media header: body text recorded")


def sample_template(name):
    return [t for t in SAMPLE_TEMPLATES if t["name"] == name][0]


def sample_components(name):
    """A deep copy of the sample's valid send components, to spoil one part."""
    return json.loads(json.dumps(SAMPLE_SENDS[(name, "en_US")]))


def test_template_carousel(sim, hooks):
    sim.add_template(sample_template("summer_picks"))
    send = lambda comps, version=None: tsend(sim, "summer_picks", "en_US", comps,  # noqa: E731
                                             version=version)
    good = sample_components("summer_picks")
    sent_ok(send(good), "valid carousel")
    eq(sim.sent()[-1]["template"]["body"],
       "Summer is here, Anna! Swipe through our picks of the week.", "body rendered")
    swapped = sample_components("summer_picks")
    swapped[1]["cards"].reverse()
    sent_ok(send(swapped), "cards in any order: card_index places them")
    media_id = sim.upload(JPEG, "image/jpeg", "hat.jpg")[1]["id"]
    by_id = sample_components("summer_picks")
    by_id[1]["cards"][0]["components"][0]["parameters"][0]["image"] = {"id": media_id}
    sent_ok(send(by_id), "card header by an uploaded id")

    count = "(#132000) Number of parameters does not match the expected number of params"
    graph_error(send(good[:1]), 400, 132000, "no carousel", message=count,
                details="carousel: number of cards (0) does not match the number of cards in "
                        "the template (2)")
    one = sample_components("summer_picks")
    del one[1]["cards"][1]
    graph_error(send(one), 400, 132000, "one card of two",
                details="carousel: number of cards (1) does not match the number of cards in "
                        "the template (2)")
    twice = sample_components("summer_picks")
    twice[1]["cards"][1]["card_index"] = 0
    graph_error(send(twice), 400, 131009, "card_index twice",
                message="(#131009) Parameter value is not valid",
                details="carousel: card_index 0 is given twice.")
    beyond = sample_components("summer_picks")
    beyond[1]["cards"][1]["card_index"] = 2
    graph_error(send(beyond), 400, 131009, "card_index out of range",
                details="carousel: there is no card at card_index 2; the template has 2.")
    video = sample_components("summer_picks")
    video[1]["cards"][1]["components"][0]["parameters"][0] = {
        "type": "video", "video": {"link": "https://example.com/towel.mp4"}}
    graph_error(send(video), 400, 132018, "video in an image card",
                message="(#132018) There was an issue with the parameters in your template.",
                details="card 1 header: Format mismatch, expected IMAGE, received video")
    graph_error(send(video, version="v22.0"), 400, 132012, "video in an image card (v22)",
                details="card 1 header: Format mismatch, expected IMAGE, received video")
    no_header = sample_components("summer_picks")
    del no_header[1]["cards"][0]["components"][0]
    graph_error(send(no_header), 400, 132000, "card without its header",
                details="card 0 header: number of localizable_params (0) does not match the "
                        "expected number of params (1)")
    short = sample_components("summer_picks")
    short[1]["cards"][0]["components"][1]["parameters"].pop()
    graph_error(send(short), 400, 132000, "card body count",
                details="card 0 body: number of localizable_params (1) does not match the "
                        "expected number of params (2)")
    no_url = sample_components("summer_picks")
    no_url[1]["cards"][1]["components"].pop()
    graph_error(send(no_url), 400, 132000, "card URL button missing",
                details="card 1 buttons: number of localizable_params (0) does not match the "
                        "expected number of params (1)")
    text_payload = sample_components("summer_picks")
    text_payload[1]["cards"][0]["components"][2]["parameters"] = [{"type": "text", "text": "x"}]
    graph_error(send(text_payload), 400, 132018, "quick reply with a text parameter",
                details="card 0 buttons: the QUICK_REPLY button at index 0 takes a payload "
                        "parameter, received text.")
    wrong_sub = sample_components("summer_picks")
    wrong_sub[1]["cards"][0]["components"][3]["sub_type"] = "quick_reply"
    graph_error(send(wrong_sub), 400, 131009, "card button sub_type",
                details="card 0 buttons: the button at index 1 is a URL button; sub_type "
                        "quick_reply does not fit it.")
    # the request's shape, before the catalogue
    no_index = sample_components("summer_picks")
    del no_index[1]["cards"][0]["card_index"]
    graph_error(send(no_index), 400, 131008, "card without card_index",
                message="(#131008) Required parameter is missing",
                details="The parameter template['components'][1]['cards'][0]['card_index'] is "
                        "required.")
    no_cards = sample_components("summer_picks")
    del no_cards[1]["cards"]
    graph_error(send(no_cards), 400, 131008, "carousel without cards",
                details="The parameter template['components'][1]['cards'] is required.")
    eq(len([m for m in sim.sent() if m["type"] == "template"]), 3, "only the valid sends recorded")


def test_template_limited_time_offer(sim, hooks):
    sim.add_template(sample_template("hot_deal"))
    send = lambda comps: tsend(sim, "hot_deal", "en_US", comps)  # noqa: E731
    now_ms = int(sim.clock_freeze()) * 1000

    def offer(ms=None, code="HOT25", **lto):
        comps = sample_components("hot_deal")
        if ms is not None:
            lto["expiration_time_ms"] = ms
        comps[2]["parameters"][0]["limited_time_offer"] = lto
        comps[3]["parameters"][0]["coupon_code"] = code
        return comps

    sent_ok(send(sample_components("hot_deal")), "the sample (ends in 2100)")
    sent_ok(send(offer(now_ms + 60000)), "ends in a minute")
    sent_ok(send(offer(now_ms + 60000, code="A" * 15)), "a 15-character coupon")
    graph_error(send(offer(now_ms - 1)), 400, 131009, "ended a moment ago",
                message="(#131009) Parameter value is not valid",
                details="limited_time_offer: expiration_time_ms (%d) is not in the future."
                % (now_ms - 1))
    sim.clock_advance(61)
    graph_error(send(offer(now_ms + 60000)), 400, 131009, "ended on the simulator's clock")
    count = "(#132000) Number of parameters does not match the expected number of params"
    graph_error(send([c for c in sample_components("hot_deal")
                      if c["type"] != "limited_time_offer"]), 400, 132000,
                "offer end missing", message=count,
                details="limited_time_offer: number of localizable_params (0) does not match "
                        "the expected number of params (1)")
    graph_error(send(offer()), 400, 131008, "no expiration_time_ms",
                message="(#131008) Required parameter is missing",
                details="The parameter limited_time_offer['expiration_time_ms'] is required: "
                        "the template's offer has an expiration.")
    graph_error(send(offer("4102444800000")), 400, 100, "milliseconds as a string",
                message="(#100) Invalid parameter",
                details="Param template['components'][2]['parameters'][0]['limited_time_offer']"
                        "['expiration_time_ms'] must be an integer (a UNIX time in "
                        "milliseconds).")
    graph_error(send(offer(4102444800000, code="A" * 16)), 400, 100, "a 16-character coupon",
                details="Param template['components'][3]['parameters'][0]['coupon_code'] must "
                        "be at most 15 characters long.")
    text_code = sample_components("hot_deal")
    text_code[3]["parameters"] = [{"type": "text", "text": "HOT25"}]
    graph_error(send(text_code), 400, 132018, "copy code as text",
                details="buttons: the COPY_CODE button at index 0 takes a coupon_code "
                        "parameter, received text.")
    # an offer without an expiration takes no end
    no_end = sample_template("hot_deal")
    no_end["components"][1] = {"type": "LIMITED_TIME_OFFER",
                               "limited_time_offer": {"text": "Expiring offer!",
                                                      "has_expiration": False}}
    sim.add_template(no_end)
    sent_ok(send([c for c in sample_components("hot_deal") if c["type"] != "limited_time_offer"]),
            "no expiration: no end needed")
    graph_error(send(sample_components("hot_deal")), 400, 132000, "no expiration: an end given",
                details="limited_time_offer: number of localizable_params (1) does not match "
                        "the expected number of params (0)")


def promo_template(**extra):
    t = {"name": "fall_sale", "language": "en_US", "category": "MARKETING",
         "components": [{"type": "BODY", "text": "Hi {{1}}, our Fall Sale is on!"},
                        {"type": "BUTTONS", "buttons": [
                            {"type": "QUICK_REPLY", "text": "Stop promotions"}]}]}
    t.update(extra)
    return t


def promo(to=CUSTOMER, name="Mark"):
    return {"messaging_product": "whatsapp", "to": to, "type": "template",
            "template": {"name": "fall_sale", "language": {"code": "en_US"},
                         "components": [body_params(name)]}}


def test_marketing_messages(sim, hooks):
    sim.add_template(promo_template())
    sim.add_template(order_template())
    status, body, _ = sim.send_marketing(promo())
    eq(status, 200, "marketing endpoint (%r)" % (body,))
    eq(body["messages"][0]["message_status"], "accepted", "message_status")
    eq(hooks.wait_status(body["messages"][0]["id"], "sent")["pricing"]["category"], "marketing",
       "pricing category")
    eq((sim.sent()[-1]["endpoint"], sim.sent()[-1]["template"]["text"]),
       ("marketing_messages", "Hi Mark, our Fall Sale is on!"), "recorded")
    graph_error(sim.graph("POST", sim.marketing_path(), {
        "messaging_product": "whatsapp", "to": CUSTOMER, "type": "template",
        "template": {"name": "order_update", "language": {"code": "en_US"},
                     "components": order_components()}}), 400, 131009, "utility template",
        details="Only marketing templates can be sent through the Marketing Messages API.")
    graph_error(sim.send_marketing(text(CUSTOMER)), 400, 100, "free-form on the endpoint")
    graph_error(sim.send_marketing(promo(), token=sim.token_no_permission), 403, 200,
                "no permission")
    graph_error(sim.send_marketing(dict(promo(), template={"name": "fall_sale",
                                                          "language": {"code": "en_US"}})),
                400, 132000, "the endpoint checks templates too")
    # marketing disabled on Cloud API: /messages refuses marketing templates only
    sim.config(marketing_disabled=True)
    graph_error(sim.send(promo()), 400, 131063, "marketing on /messages")
    sent_ok(tsend(sim, "order_update", "en_US", order_components()), "utility still goes")
    sent_ok(sim.send_marketing(promo()), "the marketing endpoint still goes")
    sim.config(marketing_disabled=False)
    sent_ok(sim.send(promo()), "marketing on /messages when allowed")


def test_marketing_refusals(sim, hooks):
    sim.add_template(promo_template())
    sim.add_template(order_template())
    sim.config(marketing_opted_out=["4917011110001"], marketing_limited=["4917011110002"])
    for number, code in (("4917011110001", 131050), ("4917011110002", 131049)):
        for send in (sim.send, sim.send_marketing):
            wamid = sent_ok(send(promo("+" + number)), "accepted for %s" % number)
            failed = hooks.wait_status(wamid, "failed")
            err = failed["errors"][0]
            eq(err["code"], code, "async failure for %s" % number)
            ok(err["title"] and err["error_data"]["details"] and err["href"] == HREF,
               "error object shape: %r" % err)
            ok(not any(s["id"] == wamid and s["status"] != "failed" for s in hooks.statuses()),
               "no sent/delivered for a refused marketing template")
    wamid = sent_ok(tsend(sim, "order_update", "en_US", order_components(),
                          to="+4917011110001"), "utility to an opted-out customer")
    hooks.wait_status(wamid, "delivered")
    # user_preferences: stop / resume
    r = sim.user_preferences("4917011110003", "stop")
    body = json.loads(r["body"])
    change = body["entry"][0]["changes"][0]
    eq(change["field"], "user_preferences", "field")
    eq(change["value"]["metadata"]["phone_number_id"], sim.pnid, "metadata")
    pref = change["value"]["user_preferences"][0]
    eq((pref["wa_id"], pref["value"], pref["category"], pref["detail"]),
       ("4917011110003", "stop", "marketing_messages",
        "User requested to stop marketing messages"), "preference")
    eq(change["value"]["contacts"][0]["wa_id"], "4917011110003", "contacts")
    got = hooks.wait_for(lambda g: any(x.body == r["body"].encode() for x in g),
                         what="user_preferences delivered")
    ok([x for x in got if x.body == r["body"].encode()][0].signed_ok(), "signed")
    eq(hooks.wait_status(sent_ok(sim.send(promo("+4917011110003")), "after stop"),
                         "failed")["errors"][0]["code"], 131050, "stop makes 131050")
    sim.user_preferences("4917011110003", "resume")
    hooks.wait_status(sent_ok(sim.send(promo("+4917011110003")), "after resume"), "delivered")
    for bad in ({"value": "stop"}, {"wa_id": "1", "value": "maybe"}, {"wa_id": "1", "x": 1}):
        try:
            sim.control("POST", "user_preferences", bad)
        except SimError:
            continue
        raise AssertionError("accepted %r" % (bad,))


def test_default_throughput_and_maintenance(sim, hooks):
    sim.clock_freeze()
    eq(sim.config()["throughput_mps"], 80, "default throughput")
    sim.config(maintenance=True)
    sim.add_template(promo_template())
    for result, what in ((sim.send(text(CUSTOMER)), "send"),
                         (sim.send_marketing(promo()), "marketing send")):
        graph_error(result, 400, 131057, "maintenance: " + what,
                    message="(#131057) Account in maintenance mode",
                    details="Business account is in maintenance mode")
    sim.config(maintenance=False)
    for i in range(80):
        sent_ok(sim.send(text("+491700000%04d" % i)), "send %d of 80 in one second" % i)
    graph_error(sim.send(text("+4917000009999")), 400, 130429, "the 81st", subcode=2494055,
                details="Cloud API message throughput has been reached.")
    eq(len(sim.sent()), 80, "refused sends are not recorded")


def test_portfolio_limit(sim, hooks):
    sim.clock_freeze()
    sim.add_template(order_template())
    sim.config(portfolio_limit=2)
    send = lambda number: tsend(sim, "order_update", "en_US", order_components(),  # noqa: E731
                                to="+" + number)
    a, b, c, d = "4917011120001", "4917011120002", "4917011120003", "4917011120004"
    hooks.wait_status(sent_ok(send(a), "a"), "delivered")
    sim.clock_advance(10)
    hooks.wait_status(sent_ok(send(b), "b"), "delivered")
    hooks.wait_status(sent_ok(send(a), "a again: not a new customer"), "delivered")
    open_window(sim, d)
    hooks.wait_status(sent_ok(send(d), "d inside its window: not counted"), "delivered")
    wamid = sent_ok(send(c), "c: accepted")
    err = hooks.wait_status(wamid, "failed")["errors"][0]
    eq((err["code"], err["title"]), (131048, "Spam rate limit hit"), "c over the limit")
    p = sim.portfolio()
    eq((p["limit"], p["used"], p["window_s"]), (2, 2, 86400), "counter")
    eq([r["customer"] for r in p["recipients"]], [a, b], "recipients, oldest first")
    eq(p["recipients"][1]["time"] - p["recipients"][0]["time"], 10, "times")
    sim.clock_advance(24 * 3600 - 10)
    eq([r["customer"] for r in sim.portfolio()["recipients"]], [b], "a left the 24 hours")
    hooks.wait_status(sent_ok(send(c), "c once a left"), "delivered")
    sim.config(portfolio_limit=0)
    for i in range(5):
        hooks.wait_status(sent_ok(send("49170111300%02d" % i), "unlimited"), "delivered")
    eq(sim.portfolio()["used"], 7, "unlimited still counts")


def test_latency(sim, hooks):
    sim.config(latency_ms=800)
    results = []
    threads = [threading.Thread(target=lambda i=i: results.append(
        sim.send(text("+49170111400%02d" % i)))) for i in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    # the main loop keeps serving while the answers wait
    wait_until(lambda: sim.control("GET", "fault")["paused"] == 4, what="4 sends held by the latency")
    eq(len(sim.sent()), 4, "taken on arrival")
    eq(results, [], "no answer before the latency")
    for t in threads:
        t.join(30)
    elapsed = time.monotonic() - start
    eq(len(results), 4, "all answered")
    for r in results:
        sent_ok(r, "answer after the latency")
    ok(elapsed >= 0.8, "answered after at least 800 ms (%.2f s)" % elapsed)
    if os.environ.get("WABIZ_SANITIZED") != "1":
        ok(elapsed < 3.0, "the four waited in parallel (%.2f s)" % elapsed)
    sim.config(latency_ms=0)
    eq(sim.control("GET", "fault")["paused"], 0, "nothing held")
    sent_ok(sim.send(text(CUSTOMER)), "no latency")


def test_sample_templates(sim, hooks):
    added = sim.add_sample_templates()
    eq(len(added), len(SAMPLE_TEMPLATES), "all samples added")
    eq(len(sim.list_templates(limit=1000)[1]["data"]), len(SAMPLE_TEMPLATES), "listed")
    for (name, language) in SAMPLE_SENDS:
        status, body, _ = sim.send(sim.sample_send(CUSTOMER, name, language))
        eq(status, 200, "sample send %s/%s: %r" % (name, language, body))
    eq(sim.sent()[-1]["template"]["text"], "*123456* is your verification code.\n"
       "This code expires in 10 minutes.", "OTP rendering")
    for name, code in (("spring_sale", 132015), ("old_promo", 132016), ("new_feature", 132001)):
        eq(tsend(sim, name, "en_US")[1]["error"]["code"], code, "sample %s" % name)
    graph_error(sim.send(sim.sample_send(CUSTOMER, "fall_sale", "en_US", template={
        "name": "fall_sale", "language": {"code": "en_US"},
        "components": SAMPLE_SENDS[("fall_sale", "en_US")][:2]})), 400, 132000,
        "copy code missing")


TESTS = [v for k, v in sorted(globals().items()) if k.startswith("test_")]


def main():
    global BINARY
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    BINARY = sys.argv[1]
    wanted = set(sys.argv[2:])
    failed = []
    with WebhookReceiver() as hooks, Sim.start(BINARY, number=[SECOND_PNID + "=" + SECOND_DISPLAY]) as sim:
        for test in TESTS:
            if wanted and test.__name__ not in wanted:
                continue
            # a clean simulator; stale deliveries of earlier tests are cancelled
            sim.reset()
            hooks.set_answers([])
            sim.webhook(url=hooks.url)
            start = time.monotonic()
            try:
                test(sim, hooks)
                print("PASS %s (%.2f s)" % (test.__name__, time.monotonic() - start))
            except Exception:
                failed.append(test.__name__)
                print("FAIL %s" % test.__name__)
                traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
            try:
                wait_until(lambda: sim.webhook(url=None)["pending"] == 0, timeout=10,
                           what="webhook deliveries to settle")
            except AssertionError:
                pass  # the reset before the next test cancels them
    print("%d tests, %d failed%s" % (len(TESTS) if not wanted else len(wanted), len(failed),
                                     (": " + ", ".join(failed)) if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""BitlBee scenarios: the test build of the plugin inside bitlbee-libpurple
(a forking daemon of our own on a loopback port), an IRC client on a plain
socket (ircctl.py) as the agent, the Cloud API simulator and the webhook
receiver, as the end-to-end suite has them for wabiz-host.

Environment (set by meson.build): WABIZ_BITLBEE (the bitlbee binary), or
WABIZ_BITLBEE_SKIP (why every scenario is skipped); WABIZ_PLUGIN (the
plugin .so), WABIZ_SIM, WABIZ_RECEIVER, WABIZ_SRC.

What the agent sees in BitlBee: connection progress and account notices as
lines from root in &bitlbee ("wabiz - ..."); a customer as the nick
_<number>, whose messages arrive as PRIVMSG to the agent; a reply is a
PRIVMSG to that nick.
"""

import os
import re
import socket
import struct
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("WABIZ_SRC", os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "e2e"))
sys.path.insert(0, HERE)

from bitlbeectl import BitlBee  # noqa: E402
from harness import DEFAULT_APP_SECRET, RECEIVER_ARGS, VERIFY_TOKEN, Receiving, main, wait_until  # noqa: E402
from ircctl import TIMEOUT_FACTOR, Irc, dcc_get, dcc_offer  # noqa: E402

NICK = "agent"
ANNA = "491701234567"
CONTROL = "&bitlbee"
# what the agent types to ask the plugin for help, in a customer's query
# (irssi: /say /help; WeeChat: //help): it must never reach the customer
HELP_COMMAND = "/help"
# BitlBee's own words once an account is connected (imcb_connected logs
# "Logged in" while the connection is still flagged as logging in)
LOGGED_IN = "wabiz - Logging in: Logged in"
# how long the issue 11 scenarios wait for a line that is not shown today
# (seconds, scaled by HOSTCTL_TIMEOUT_FACTOR): a local line, so short
ISSUE11_WAIT = 10


def nick_of(number):
    """BitlBee's nick for a customer: the buddy name with a leading _ (a
    nick cannot start with a digit)."""
    return "_" + number


def im_from(number, text=None):
    """A customer's message to the agent, as BitlBee delivers it."""
    def check(line):
        return (line.command == "PRIVMSG" and line.source == nick_of(number) and line.target == NICK
                and (text is None or line.text == text))
    check.__name__ = "im_from(%s, %r)" % (number, text)
    return check


def told(number, *parts):
    """A line of the plugin's own in the customer's query: from the
    customer's nick (BitlBee shows nothing else there), marked [wabiz] so it
    cannot be taken for the customer's words, containing every part."""
    def check(line):
        return (line.command == "PRIVMSG" and line.source == nick_of(number) and line.target == NICK
                and line.text.startswith("[wabiz] ") and all(part in line.text for part in parts))
    check.__name__ = "told(%s, %r)" % (number, parts)
    return check


def plugin_text(line):
    """The text of a line from the contact "wabiz": BitlBee shows a contact
    that is not a buddy in &bitlbee, addressed to the agent ("agent: ...")."""
    prefix = NICK + ": "
    return line.text[len(prefix):] if line.target == CONTROL and line.text.startswith(prefix) else line.text


def notice(text):
    """A line of the account's notices: from the contact "wabiz", to the
    agent or in &bitlbee addressed to the agent, containing text."""
    def check(line):
        return (line.command == "PRIVMSG" and line.source == "wabiz" and line.target in (NICK, CONTROL)
                and text in plugin_text(line))
    check.__name__ = "notice(%r)" % text
    return check


def from_root(text):
    """A line from root in the control channel containing text."""
    return {"command": "PRIVMSG", "source": "root", "target": CONTROL, "text": text}


class BitlBeeScenario(Receiving):
    """A simulator (Scenario), a BitlBee daemon whose plugin starts the
    receiver under the IRC user's purple dir (Receiving's user_dir), and an
    IRC connection as NICK."""

    def setUp(self):
        if not os.environ.get("WABIZ_BITLBEE"):
            raise unittest.SkipTest(os.environ.get("WABIZ_BITLBEE_SKIP", "WABIZ_BITLBEE is not set"))
        super().setUp()
        # the temporary dir Receiving made (and removes) holds BitlBee's
        # configuration, plugin dir and ConfigDir
        self.bee = BitlBee.start(self.user_dir, os.environ["WABIZ_PLUGIN"],
                                 binary=os.environ["WABIZ_BITLBEE"],
                                 env={"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"],
                                      "WABIZ_TEST_HOOKS": "1", "WABIZ_RECEIVER_ARGS": RECEIVER_ARGS,
                                      "WABIZ_DEBUG_HTTP": "1", "BITLBEE_DEBUG": "1"})
        self.addCleanup(self.stop_bitlbee)
        # libpurple's user dir in BitlBee: receiver_dir, receiver_status()
        # and stop_receiver() look there
        self.user_dir = self.bee.user_dir(NICK)
        self.irc = None

    def stop_bitlbee(self):
        if self.irc is not None:
            self.irc.quit()
            self.bee.wait_clients_gone()
        self.bee.stop()
        # for a failing test's log (meson --print-errorlogs shows it)
        if self.irc is not None:
            sys.stderr.write("--- IRC conversation\n%s\n" % self.irc.log_text())
        log = self.bee.log_text().splitlines()
        sys.stderr.write("--- bitlbee.log (last 150 lines)\n%s\n" % "\n".join(log[-150:]))

    # --- the agent's side ---------------------------------------------------------

    def connect(self):
        self.irc = Irc.connect("127.0.0.1", self.bee.port, NICK)
        self.irc.join(CONTROL)
        return self.irc

    def root(self, command):
        """Types a command into the control channel."""
        self.irc.say(CONTROL, command)

    def sign_on(self, options=None, token=None, wait_logged_in=True, before_on=None):
        """account add / set / on as an agent would (before_on() is called
        just before "on"); returns root's "Logged in" line (or None when not
        waiting for it)."""
        if self.irc is None:
            self.connect()
        self.root("account add wabiz %s %s" % (self.sim.pnid, token or self.sim.token))
        self.irc.wait_for(from_root("Account successfully added with tag wabiz"))
        opts = {"api_base_url": self.api_url(), "app_secret": DEFAULT_APP_SECRET,
                "verify_token": VERIFY_TOKEN, "webhook_port": 0,
                "send_retry_delay_ms": 50, "http_timeout": 10}
        opts.update(options or {})
        for key, value in opts.items():
            self.root("account wabiz set %s %s" % (key, value))
            self.irc.wait_for(from_root("%s = `%s'" % (key, value)))
        if before_on is not None:
            before_on()
        self.root("account wabiz on")
        if not wait_logged_in:
            return None
        return self.irc.wait_for(from_root(LOGGED_IN), timeout=60)

    def start_receiving(self):
        """Signs on and points the simulator's webhooks at the receiver
        (its URL from the receiver itself: `wabiz-receiver --status`)."""
        return self.start_receiving_with(None)

    def start_receiving_with(self, options):
        """start_receiving() with further account options."""
        self.sign_on(options=options)

        def url():
            status = self.receiver_status()
            accounts = status["accounts"] if status else []
            return accounts[0]["url"] if accounts and accounts[0].get("url") else None
        self.webhook_url = wait_until(url, timeout=30 * TIMEOUT_FACTOR, what="the receiver's webhook URL")
        self.sim.webhook(url=self.webhook_url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        return self.webhook_url

    def customer_writes(self, text, number=ANNA):
        """A customer's text through the simulator; returns the PRIVMSG."""
        self.sim.inbound(text, sender=number, name="Anna")
        return self.irc.wait_for(im_from(number, text), timeout=30)

    def accepted_bodies(self):
        return [sent["request"].get("text", {}).get("body") for sent in self.sim.sent()]


class BitlBeeIrc(BitlBeeScenario):

    # --- what works today ---------------------------------------------------------

    def test_sign_on(self):
        """The account connects, BitlBee says so in &bitlbee, and it lists
        the account as connected."""
        line = self.sign_on()
        self.assertEqual(line.text, LOGGED_IN)
        self.root("account list")
        listed = self.irc.wait_for(from_root("(wabiz)"))
        self.assertIn(self.sim.pnid, listed.text)
        self.assertIn("(connected)", listed.text)
        self.irc.expect_none(from_root("Error"), 0.5)
        phone = [r for r in self.sim.requests()
                 if r["method"] == "GET" and r["path"] == "/v25.0/" + self.sim.pnid]
        self.assertTrue(phone and phone[0]["authorization"], self.sim.requests())

    def test_refused_token_is_told_and_not_retried(self):
        """A refused token is an error line in &bitlbee with the reason and
        code; the account signs off and BitlBee does not retry it."""
        self.sign_on(token="WRONG-TOKEN", wait_logged_in=False)
        # BitlBee's words for an error while the account is logging in
        error = self.irc.wait_for(from_root("wabiz - Login error: "), timeout=60)
        self.assertIn("access token was refused", error.text)
        self.assertIn("190", error.text)
        self.assertNotIn("WRONG-TOKEN", error.text)
        self.irc.wait_for(from_root("wabiz - Logging in: Signing off.."))
        self.irc.expect_none(from_root("Reconnecting"), 2.0)
        self.irc.expect_none(from_root(LOGGED_IN), 0.1)

    def test_api_down_then_up_reconnects(self):
        """An API that cannot be reached at sign-on is a network error:
        BitlBee schedules a reconnect by itself, which signs in once the
        API is back."""
        # refused for 4 s from just before "on"; BitlBee retries after 5 s
        # (a later retry, 15 s on, would do too)
        self.sign_on(options={"api_base_url": self.sim.graph_url + "/v25.0"}, wait_logged_in=False,
                     before_on=lambda: self.sim.refuse(4000))
        error = self.irc.wait_for(from_root("wabiz - Login error: "), timeout=60)
        self.assertIn("Cannot reach the WhatsApp Business Platform", error.text)
        self.irc.wait_for(from_root("wabiz - Logging in: Reconnecting in "))
        self.irc.wait_for(from_root(LOGGED_IN), timeout=60)

    def test_inbound_message(self):
        """A customer's text arrives once, as a PRIVMSG from _<number>; what
        the customer typed as markup arrives as the characters typed."""
        self.start_receiving()
        self.customer_writes("Do you ship to Munich?")
        self.customer_writes('<img id="1"> <b>not bold</b> & more')
        self.irc.expect_none(im_from(ANNA), 1.0)

    def test_reply_reaches_the_api(self):
        """A PRIVMSG to the customer's nick is sent to the customer, with
        exactly the text typed."""
        self.start_receiving()
        self.customer_writes("Do you ship to Munich?")
        self.irc.say(nick_of(ANNA), "Yes, next day.")
        sent = self.sim.wait_for_sent(1)
        request = dict(sent[-1]["request"])
        self.assertRegex(request.pop("biz_opaque_callback_data"), r"^wabiz:[1-9][0-9]{0,15}$")
        self.assertEqual(request, {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+" + ANNA,
            "type": "text",
            "text": {"body": "Yes, next day."},
        })
        self.irc.expect_none(im_from(ANNA), 1.0)

    def test_dcc_send_reaches_the_api_as_a_document(self):
        """A DCC SEND from the IRC client to the customer's nick: BitlBee
        receives the file and hands it to the plugin's send_file, which
        uploads it and sends it as a document by its media id."""
        self.start_receiving()
        self.customer_writes("Can you send the invoice?")
        data = b"%PDF-1.4\n1 0 obj<<>>endobj\n" + b"%% invoice line\n" * 4000 + b"%%EOF\n"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(30 * TIMEOUT_FACTOR)
        port = listener.getsockname()[1]
        # classic DCC: the address as one 32-bit number, then the size
        self.irc.say(nick_of(ANNA), "\x01DCC SEND invoice.pdf %d %d %d\x01" % (0x7f000001, port, len(data)))
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(30 * TIMEOUT_FACTOR)
            conn.sendall(data)
            # the receiver acknowledges what it got (4-byte totals) until all is there
            got = 0
            while got < len(data):
                ack = conn.recv(4)
                if len(ack) < 4:
                    break
                got = struct.unpack(">I", ack)[0]
        sent = self.sim.wait_for_sent(1)
        uploads = self.sim.uploads()
        self.assertEqual([(u["type"], u["filename"], u["size"]) for u in uploads],
                         [("application/pdf", "invoice.pdf", len(data))])
        self.assertEqual(sent[-1]["request"]["document"], {"id": uploads[0]["id"], "filename": "invoice.pdf"})
        self.irc.wait_for(told(ANNA, "[Document] invoice.pdf"), timeout=30)

    def test_document_from_the_customer_offered_by_dcc(self):
        """A customer's document is offered to the IRC client as a DCC SEND
        from the customer's nick, carrying exactly the file the API served;
        a picture stays a line (with !save), never an offer."""
        self.start_receiving()
        self.customer_writes("hello")
        document = b"%PDF-1.4\n" + bytes(range(256)) * 300 + b"%%EOF\n"
        media = self.sim.media(document, mime_type="application/pdf")
        self.sim.inbound_media("document", media, filename="terms.pdf", sender=ANNA)
        self.irc.wait_for(told(ANNA, "Document 1 (terms.pdf", "received. Type !save 1"), timeout=30)
        offer_line = self.irc.wait_for(lambda l: l.command == "PRIVMSG" and l.source == nick_of(ANNA)
                                       and dcc_offer(l) is not None, timeout=30)
        offer = dcc_offer(offer_line)
        self.assertEqual((offer.name, offer.size), ("terms.pdf", len(document)))
        self.assertEqual(dcc_get(offer, timeout=30), document)
        picture = b"\xff\xd8\xff\xe0" + b"picture bytes " * 500
        self.sim.inbound_media("image", self.sim.media(picture, mime_type="image/jpeg"), caption="receipt",
                               sender=ANNA)
        self.irc.wait_for(told(ANNA, "Image 2 (7 KB) received. Type !save 2"), timeout=30)
        self.irc.expect_none(lambda l: l.command == "PRIVMSG" and dcc_offer(l) is not None, 2.0)
        self.assertEqual(self.sim.sent(), [])

    def test_template_sent_by_command(self):
        """!templates to the wabiz contact lists the catalogue; !template
        NAME values in the customer's query sends it, and the rendered
        template comes back as the agent's own line."""
        from test_templates import ORDER
        self.sim.add_templates([ORDER])
        self.start_receiving_with({"waba_id": self.sim.info()["waba_id"]})
        self.customer_writes("Where is my order?")
        self.irc.say("wabiz", "!templates")
        self.irc.wait_for(notice("order_update (en_US): APPROVED, UTILITY"), timeout=30)
        self.irc.say(nick_of(ANNA), "!template order_update #42")
        self.irc.wait_for(told(ANNA, "Not sent: Missing: {{1}}"), timeout=ISSUE11_WAIT)
        self.irc.say(nick_of(ANNA), "!template order_update #42 | Anna | A-7 | button1=A-7")
        sent = self.sim.wait_for_sent(1)
        template = sent[0]["request"]["template"]
        self.assertEqual((template["name"], template["language"]), ("order_update", {"code": "en_US"}))
        self.assertEqual(sent[0]["to"].lstrip("+"), ANNA)
        rendered = self.irc.wait_for(lambda l: l.command == "PRIVMSG" and l.source == NICK
                                     and l.target == nick_of(ANNA) and "[Template order_update, UTILITY]" in l.text,
                                     timeout=30)
        self.irc.wait_for(lambda l: l.command == "PRIVMSG" and l.source == NICK and l.time >= rendered.time
                          and "Hi Anna, order A-7 ships today." in l.text, timeout=ISSUE11_WAIT)
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 1)

    def test_notify_answered_with_yes_reports_in_its_chat(self):
        """!notify TEMPLATE CSV to the wabiz contact asks BitlBee's question
        (OK/Cancel, answered "yes" in &bitlbee); the campaign sends to those
        with consent and its lines come in a channel of its own."""
        from test_campaign import PROMO, number
        self.sim.add_templates([PROMO])
        path = os.path.join(self.bee.base, "customers.csv")
        with open(path, "w") as f:
            f.write("to,1,2,consent\n")
            for i in range(3):
                f.write("%s,C%d,5 %%,opt-in\n" % (number(i), i))
            f.write("%s,Nobody,5 %%,\n" % number(9))
        self.start_receiving_with({"waba_id": self.sim.info()["waba_id"]})
        self.irc.say("wabiz", "!notify spring_sale " + path)
        self.irc.wait_for(notice("Skipped: 1 no consent"), timeout=30)
        # BitlBee's query: the question from root, answered in &bitlbee
        self.irc.wait_for(from_root("to 3 customers"), timeout=30)
        self.root("yes")
        sent = self.sim.wait_for_sent(3)
        self.assertEqual(sorted(m["to"].lstrip("+") for m in sent), sorted(number(i) for i in range(3)))
        # the campaign's chat is a channel BitlBee joins the agent to, its lines from "wabiz"
        joined = self.irc.wait_for(lambda l: l.command == "JOIN" and l.source == NICK
                                   and l.text.startswith("#Campaign"), timeout=30)
        channel = joined.text
        self.irc.wait_for({"command": "PRIVMSG", "source": "wabiz", "target": channel,
                           "text": "[wabiz] Sending template spring_sale (en)"}, timeout=30)
        self.irc.wait_for({"command": "PRIVMSG", "source": "wabiz", "target": channel,
                           "text": "[wabiz] Campaign finished: 3 sent, 0 failed, 1 skipped"}, timeout=60)
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 3)

    def test_reply_with_markup_characters_unchanged(self):
        """What an agent types in IRC is plain text: < > & and quotes reach
        the customer as typed."""
        self.start_receiving()
        self.customer_writes("Price?")
        text = 'From 5 < 6 & "7" > 3 <b>euro</b>'
        self.irc.say(nick_of(ANNA), text)
        self.assertEqual(self.sim.wait_for_sent(1)[-1]["request"]["text"]["body"], text)

    def test_sign_off_and_on_again(self):
        """account wabiz off signs off (BitlBee's words), on signs in again,
        and the conversation carries on through the same receiver."""
        self.start_receiving()
        self.customer_writes("before")
        self.root("account wabiz off")
        self.irc.wait_for(from_root("wabiz - Signing off.."))
        self.root("account wabiz on")
        self.irc.wait_for(from_root(LOGGED_IN), timeout=60)
        self.customer_writes("after")
        self.irc.say(nick_of(ANNA), "welcome back")
        self.assertEqual(self.sim.wait_for_sent(1)[-1]["request"]["text"]["body"], "welcome back")
        self.irc.expect_none(from_root("Error"), 0.5)
        self.assertTrue(self.irc.connected)

    # --- issue 11: meant to fail until the plugin supports BitlBee ----------------

    def test_setup_notice_shown(self):
        """The account's notices (here: where the receiver listens) reach the
        agent from the contact "wabiz", as [wabiz] lines."""
        url = self.start_receiving()

        first = self.irc.wait_for(notice("webhook receiver listens on"))
        self.assertTrue(plugin_text(first).startswith("[wabiz] "), first.text)
        self.assertIn(url, first.text)
        # the notice's further lines (BitlBee sends one PRIVMSG a line)
        self.irc.wait_for(notice(VERIFY_TOKEN))
        # (BitlBee itself echoes "account wabiz set app_secret ..." from root)
        self.assertEqual(self.irc.lines(lambda l: l.source != "root" and DEFAULT_APP_SECRET in (l.text or "")), [])

    def test_refused_send_is_told(self):
        """A send the API refuses is told in the customer's query, as a
        [wabiz] line with the reason and code."""
        self.start_receiving()
        self.customer_writes("hi")
        self.sim.fault(path="/messages", status=400, code=131009, count=1)
        self.irc.say(nick_of(ANNA), "refused one")
        self.irc.wait_for(told(ANNA, "Not sent", "131009"), timeout=ISSUE11_WAIT)
        self.assertEqual(self.sim.sent(), [])

    def test_failed_status_is_told(self):
        """A "failed" status for a sent message is told in the customer's
        query with its reason and code."""
        self.start_receiving()
        self.sim.config(auto_statuses=[])
        self.customer_writes("hi")
        self.irc.say(nick_of(ANNA), "our offer")
        wamid = self.sim.wait_for_sent(1)[-1]["wamid"]
        self.sim.status(wamid, "failed", errors=[{
            "code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
            "message": "This message was not delivered to maintain healthy ecosystem engagement.",
            "error_data": {"details": "In order to maintain a healthy ecosystem engagement, "
                                      "the message failed to be delivered."}}])
        self.irc.wait_for(told(ANNA, "Not delivered", "131049"), timeout=ISSUE11_WAIT)

    def test_help_command_not_sent(self):
        """HELP_COMMAND typed in a customer's query is answered by the plugin
        with a [wabiz] line and never sent to the customer; the next line is."""
        self.start_receiving()
        self.customer_writes("hi")
        self.irc.say(nick_of(ANNA), HELP_COMMAND)
        self.irc.wait_for(told(ANNA), timeout=ISSUE11_WAIT)
        self.irc.say(nick_of(ANNA), "after help")
        self.sim.wait_for_sent(1)
        # one request in flight per customer, in order: had the command
        # gone out, it would be the first send
        self.assertEqual(self.accepted_bodies(), ["after help"])

    def test_reply_and_buttons_commands(self):
        """!reply and !buttons typed in the customer's query go out as a
        quoted reply and reply buttons, shown as the agent's own lines; a
        refusal comes back as a [wabiz] line and nothing is sent."""
        self.start_receiving()
        wamid = self.sim.inbound("Which shop is open?", sender=ANNA, name="Anna")["id"]
        self.irc.wait_for(im_from(ANNA, "Which shop is open?"), timeout=30)
        self.irc.say(nick_of(ANNA), "!reply Both, until 6 pm.")
        self.irc.say(nick_of(ANNA), "!buttons Which one? | Mitte | Kreuzberg")
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(sent[0]["request"]["context"], {"message_id": wamid})
        self.assertEqual(sent[0]["request"]["text"], {"body": "Both, until 6 pm."})
        self.assertEqual(sent[1]["request"]["interactive"]["action"]["buttons"],
                         [{"type": "reply", "reply": {"id": "b1", "title": "Mitte"}},
                          {"type": "reply", "reply": {"id": "b2", "title": "Kreuzberg"}}])
        # what went out comes back as the agent's own lines in the query
        for text in ("[Reply to: Which shop is open?] Both, until 6 pm.", "[Buttons] Which one? | Mitte | Kreuzberg"):
            self.irc.wait_for(lambda line, text=text: line.command == "PRIVMSG" and line.source == NICK
                              and line.target == nick_of(ANNA) and line.text == text, timeout=ISSUE11_WAIT)
        self.irc.say(nick_of(ANNA), "!buttons Which one? | A | B | C | D")
        self.irc.wait_for(told(ANNA, "Not sent", "at most 3 buttons"), timeout=ISSUE11_WAIT)
        time.sleep(0.5)
        self.assertEqual(len(self.sim.sent()), 2)

    def test_recovery_code_shown(self):
        """The new store's recovery code (shown once, when the store is
        created at the first sign-on) reaches the agent in IRC."""
        self.sign_on()
        line = self.irc.wait_for(notice("recovery code"), timeout=ISSUE11_WAIT)
        self.assertTrue(plugin_text(line).startswith("[wabiz] "), line.text)
        pattern = re.compile(r"[A-Z2-7]{4,}(?:-[A-Z2-7]+)+")

        def code():
            for later in self.irc.lines(lambda l: l.time >= line.time and l.command == "PRIVMSG"):
                found = pattern.search(later.text)
                if found:
                    return found.group(0)
            return None
        found = wait_until(code, timeout=10 * TIMEOUT_FACTOR, what="a recovery code in IRC")
        self.assertEqual(len(found.replace("-", "")), 52, found)
        # with a word on the logs IRC clients keep
        self.irc.wait_for(notice("IRC clients"))

    def test_commands_to_the_wabiz_contact(self):
        """Account commands typed to the contact "wabiz" run; other text
        typed there is refused, and nothing reaches a customer."""
        self.start_receiving()
        self.irc.say("wabiz", "!help")
        help_line = self.irc.wait_for(notice("Commands"))
        self.irc.wait_for(notice("!rotatekey"))
        self.irc.say("wabiz", "hello?")
        self.irc.wait_for(notice("This contact is the plugin itself"))
        self.irc.say("wabiz", "!resend")
        self.irc.wait_for(notice("No message is waiting for a decision"))
        self.assertEqual(self.sim.sent(), [])
        self.assertTrue(plugin_text(help_line).startswith("[wabiz] "))


if __name__ == "__main__":
    main()

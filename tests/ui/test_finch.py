"""Finch, as a person sees it: the plugin in Finch inside tmux against the
simulator and the webhook receiver. A customer's message arrives in Finch's
conversation window (markup shown as text), the agent types a reply with the
keyboard, and the simulated customer receives it.

Environment (tests/ui/meson.build): WABIZ_SIM, WABIZ_RECEIVER, WABIZ_PLUGIN,
WABIZ_SRC. Needs finch and tmux (the README's test command installs them)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

SRC = os.environ.get("WABIZ_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tools"))
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))

import demo  # noqa: E402  (its Finch configuration and receiver lookup)
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402

RECEIVER = os.environ.get("WABIZ_RECEIVER")


class Finch(unittest.TestCase):

    def setUp(self):
        for tool in ("finch", "tmux"):
            self.assertIsNotNone(shutil.which(tool), tool + " is not installed")
        self.conf = tempfile.mkdtemp(prefix="wabiz-ui-")
        self.addCleanup(shutil.rmtree, self.conf, True)
        self.sim = Sim.start(os.environ["WABIZ_SIM"], stderr=subprocess.DEVNULL)
        self.addCleanup(self.sim.stop)
        demo.write_config(self.conf, self.sim, os.environ["WABIZ_PLUGIN"])
        self.add_settings(self.SETTINGS.get(self._testMethodName, {}))
        self.session = "wabiz-ui-%d" % os.getpid()
        command = ("env TERM=xterm-256color LANG=C.UTF-8 WABIZ_RECEIVER=%s finch -c %s"
                   % (RECEIVER, self.conf))
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "150", "-y", "45",
                        command], check=True)
        self.addCleanup(self.stop_receiver)
        self.addCleanup(subprocess.run, ["tmux", "kill-session", "-t", self.session],
                        stderr=subprocess.DEVNULL)

    # account options of single tests (list options are stored as strings)
    SETTINGS = {"test_seen_conversation_marks_read": {"read_receipts": "seen"},
                "test_template_typed_and_the_dialog_with_the_keyboard": {"utility_consent": "not_required"}}

    def add_settings(self, settings):
        path = os.path.join(self.conf, "accounts.xml")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        lines = "".join("   <setting name='%s' type='string'>%s</setting>\n" % kv for kv in settings.items())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace("  </settings>\n", lines + "  </settings>\n", 1))

    def stop_receiver(self):
        subprocess.run([RECEIVER, "--dir", os.path.join(self.conf, "wabiz", "receiver"), "--stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def screen(self):
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session],
                              capture_output=True, text=True).stdout

    def keys(self, *keys):
        subprocess.run(["tmux", "send-keys", "-t", self.session] + list(keys), check=True)

    def wait_screen(self, text, timeout=20):
        """Waits until the screen shows @text; fails with the screen."""
        try:
            wait_until(lambda: text in self.screen(), timeout=timeout, what=text)
        except AssertionError:
            self.fail("the screen does not show %r:\n%s" % (text, self.screen()))

    def show_window_with(self, text, tries=8):
        """Cycles Finch's windows (Alt-n) until one shows @text."""
        for _ in range(tries):
            try:
                return wait_until(lambda: text in self.screen(), timeout=2, what=text)
            except AssertionError:
                self.keys("M-n")
        self.fail("no Finch window shows %r; screen:\n%s" % (text, self.screen()))

    def customer_writes(self, text):
        """Once Finch is signed in, a customer's message, shown in its window."""
        url = wait_until(lambda: demo.receiver_url(RECEIVER, self.conf), timeout=60,
                         what="Finch to sign in and register with the receiver")
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        self.sim.inbound(text, sender=demo.CUSTOMER, name="Anna")
        self.show_window_with(text)

    def test_customer_message_and_reply(self):
        url = wait_until(lambda: demo.receiver_url(RECEIVER, self.conf), timeout=60,
                         what="Finch to sign in and register with the receiver")
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        inbound = self.sim.inbound("Is the <b>blue</b> one in stock?", sender=demo.CUSTOMER, name="Anna")
        self.show_window_with("Is the <b>blue</b> one in stock?")
        screen = self.screen()
        self.assertIn("Anna (demo customer)", screen)
        # the agent answers with the keyboard
        self.keys("Yes, two left.", "Enter")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[-1]["request"]["text"]["body"], "Yes, two left.")
        self.assertEqual(sent[-1]["request"]["to"], "+" + demo.CUSTOMER)
        wait_until(lambda: "Yes, two left." in self.screen(), timeout=10, what="the echo")
        # the default receipt policy: the reply marks the customer's message read
        wait_until(lambda: self.sim.reads(), timeout=10, what="a read receipt")
        self.assertEqual([r["message_id"] for r in self.sim.reads()], [inbound["id"]])

    def test_seen_conversation_marks_read(self):
        """read_receipts "seen": Finch's conversation window taking focus (or
        a message arriving in the focused one) marks the message read."""
        url = wait_until(lambda: demo.receiver_url(RECEIVER, self.conf), timeout=60,
                         what="Finch to sign in and register with the receiver")
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        inbound = self.sim.inbound("Are you open on Sunday?", sender=demo.CUSTOMER, name="Anna")
        self.show_window_with("Are you open on Sunday?")
        wait_until(lambda: self.sim.reads(), timeout=20, what="a read receipt")
        self.assertEqual([(r["message_id"], r["typing_indicator"]) for r in self.sim.reads()],
                         [(inbound["id"], False)])
        self.assertEqual(self.sim.sent(), [])

    def test_sendfile_with_the_keyboard(self):
        self.customer_writes("Do you have a catalogue?")
        path = os.path.join(self.conf, "catalogue.pdf")
        with open(path, "wb") as f:
            f.write(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF\n")
        self.keys("/sendfile %s the spring one" % path, "Enter")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[-1]["request"]["type"], "document")
        self.assertEqual(sent[-1]["request"]["document"]["filename"], "catalogue.pdf")
        self.assertEqual(sent[-1]["request"]["document"]["caption"], "the spring one")
        self.show_window_with("[Document] catalogue.pdf, 33 bytes")

    def test_received_image_line_and_save_with_the_keyboard(self):
        """Finch draws no pictures: a customer's image is a line with its size
        and caption, and /save typed in the conversation writes it out."""
        self.customer_writes("Which one do you mean?")
        picture = b"\xff\xd8\xff\xe0" + b"a blue jacket " * 400
        media = self.sim.media(picture, mime_type="image/jpeg")
        self.sim.inbound_media("image", media, caption="this blue one", sender=demo.CUSTOMER, name="Anna")
        self.show_window_with("[Image] this blue one")
        self.wait_screen("Image 1 (6 KB) received. Type /save 1 to save it.")
        target = os.path.join(self.conf, "jacket.jpg")
        self.keys("/save 1 %s" % target, "Enter")
        self.wait_screen("Saved to %s" % target)
        with open(target, "rb") as f:
            self.assertEqual(f.read(), picture)
        self.assertEqual(self.sim.sent(), [])

    def test_resend_question_answered_with_the_keyboard(self):
        url = wait_until(lambda: demo.receiver_url(RECEIVER, self.conf), timeout=60,
                         what="Finch to sign in and register with the receiver")
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        self.sim.inbound("Has my parcel left?", sender=demo.CUSTOMER, name="Anna")
        self.show_window_with("Has my parcel left?")
        # the answer to the reply is lost before WhatsApp took it
        self.sim.fault(path="/messages", reset=True, count=1)
        self.keys("It leaves today.", "Enter")
        self.wait_screen("may or may not have been sent")
        self.assertEqual(self.sim.sent(), [])
        # the agent asks for the decision and takes the first button
        self.keys("/resend", "Enter")
        self.wait_screen("WhatsApp Business: messages th")  # its place in the task bar
        self.show_window_with("1 message may have been sent")
        screen = self.screen()
        for button in ("Resend all", "Drop", "List"):
            self.assertIn(button, screen)
        self.keys("Enter")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual([m["request"]["text"]["body"] for m in sent], ["It leaves today."])
        wait_until(lambda: "1 message may have been sent" not in self.screen(), timeout=10,
                   what="the dialog to close")
        self.assertEqual(len(self.sim.sent()), 1)

    def test_template_typed_and_the_dialog_with_the_keyboard(self):
        """A closed window: /template typed in the conversation goes; text is
        refused and the dialog is offered, then filled in with the keyboard."""
        self.sim.add_templates([{
            "name": "order_update", "language": "en_US", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} ships today."}]}])
        url = wait_until(lambda: demo.receiver_url(RECEIVER, self.conf), timeout=60,
                         what="Finch to sign in and register with the receiver")
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        self.sim.inbound("Where is my order?", sender=demo.CUSTOMER, name="Anna",
                         timestamp=int(time.time()) - 25 * 3600)
        self.show_window_with("Where is my order?")
        self.keys("/template order_update Anna | A-7", "Enter")
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(sent[-1]["request"]["template"]["name"], "order_update")
        self.wait_screen("[Template order_update, UTILITY]")
        self.wait_screen("Hi Anna, order A-7 ships today.")
        # text into the closed window: refused, and the dialog offered
        self.keys("are you there?", "Enter")
        self.show_window_with("Choose a template and language")
        self.keys("Tab", "Enter")  # Next, with the first (only) template
        self.show_window_with("order_update (en_US, UTILITY)")
        self.keys("Bea", "Tab", "B-9", "Tab", "Enter")  # the two values, Next
        self.show_window_with("Send this template to")
        self.assertIn("Hi Bea, order B-9 ships today.", self.screen())
        self.keys("Enter")  # Send
        sent = self.sim.wait_for_sent(2)
        self.assertEqual(sent[-1]["request"]["template"]["components"][0]["parameters"],
                         [{"type": "text", "text": "Bea"}, {"type": "text", "text": "B-9"}])
        self.assertEqual(len(self.sim.sent()), 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""The encrypted store at sign-on: created with a key file and a recovery code
shown once, unlocked at every sign-on, refused (with nothing changed) when the
key file is missing or wrong, and nothing a customer wrote is readable on
disk."""

import contextlib
import hashlib
import json
import os
import re
import signal
import sqlite3
import stat
import textwrap
import time

from harness import DEFAULT_APP_SECRET, VERIFY_TOKEN, Receiving, contains, has, main, regex, wait_until

ANNA = "491701234567"
BEN = "491709876543"
ROTATE_ACTION = "Rotate store key..."
RECOVERY_NOTE = {"event": "notify", "kind": "formatted", "text": contains("recovery code")}


def recovery_code(note):
    return re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"]).group(1)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Store(Receiving):

    def store_path(self):
        return os.path.join(self.user_dir, "wabiz", "store", self.sim.pnid + ".db")

    def key_path(self):
        return os.path.join(self.user_dir, "wabiz", "keys", self.sim.pnid + ".store-key")

    def restart(self, host, **kwargs):
        host.quit()
        self.hosts.remove(host)
        host.close()
        return self.start_host(user_dir=self.user_dir, **kwargs)

    def assert_nowhere_on_disk(self, host, secrets):
        """Stops `host` and the receiver, then checks that no file under the
        user dir (blist.xml and logs included) holds any of `secrets`."""
        host.quit()
        self.hosts.remove(host)
        host.close()
        self.stop_receiver()
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    data = f.read()
                for secret in secrets:
                    self.assertNotIn(secret.encode(), data, os.path.join(root, name))

    def test_created_with_a_recovery_code_shown_once(self):
        host = self.start_host(user_dir=self.user_dir)
        note = host.wait_for({"event": "notify", "kind": "formatted", "text": contains("recovery code")})
        code = re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"])
        self.assertIsNotNone(code, note["text"])
        self.assertEqual(len(code.group(1).replace("-", "")), 52)
        for path, mode in ((os.path.dirname(self.store_path()), 0o700), (self.store_path(), 0o600),
                           (self.key_path(), 0o600)):
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode, path)
        again = self.restart(host)
        again.expect_none({"event": "notify", "kind": "formatted"}, 1.0)
        # the code is nowhere on disk
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(code.group(1).encode(), f.read(), name)

    def test_missing_key_file_changes_nothing(self):
        host = self.start_host(user_dir=self.user_dir)
        host.quit()
        self.hosts.remove(host)
        host.close()
        os.unlink(self.key_path())
        before = digest(self.store_path())
        again = self.start_host(user_dir=self.user_dir, wait_signed_on=False)
        error = again.wait_for({"event": "disconnect"})
        self.assertTrue(error["fatal"])
        self.assertIn("is missing", error["description"])
        self.assertIn(self.key_path(), error["description"])
        self.assertFalse(os.path.exists(self.key_path()))
        self.assertEqual(digest(self.store_path()), before)

    def test_wrong_key_file_changes_nothing(self):
        host = self.start_host(user_dir=self.user_dir)
        host.quit()
        self.hosts.remove(host)
        host.close()
        with open(self.key_path(), "wb") as f:
            f.write(os.urandom(32))
        before = digest(self.store_path())
        again = self.start_host(user_dir=self.user_dir, wait_signed_on=False)
        error = again.wait_for({"event": "disconnect"})
        self.assertTrue(error["fatal"])
        self.assertIn("could not be unlocked", error["description"])
        self.assertEqual(digest(self.store_path()), before)

    def test_nothing_a_customer_wrote_is_readable_on_disk(self):
        host = self.start_receiving_host()
        body = "my order 4711 goes to Lindenstrasse 12"
        caption = "photo of the damaged parcel"
        wamid = self.sim.inbound(body, sender=ANNA, name="Anna Schmidt")["id"]
        self.sim.inbound(sender=ANNA, name="Anna Schmidt", type="image",
                         image={"id": "1003383421387256", "mime_type": "image/jpeg",
                                "sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=", "caption": caption})
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": body})
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": contains(caption)})
        host.send_im(ANNA, "thanks, we will check")
        self.sim.wait_for_sent(1)
        host.quit()
        self.hosts.remove(host)
        host.close()
        self.stop_receiver()
        found = []
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    data = f.read()
                for secret in (body, caption, wamid):
                    if secret.encode() in data:
                        found.append((path, secret))
                # the profile name may be a buddy alias in blist.xml (the README says so), nowhere else
                if name != "blist.xml" and b"Anna Schmidt" in data:
                    found.append((path, "profile name"))
        self.assertEqual(found, [])
        self.assertTrue(os.path.exists(self.store_path()))


    def test_pseudonymous_aliases_keep_names_out_of_the_buddy_list(self):
        # a customer named before the option is set ...
        host = self.start_receiving_host()
        self.sim.inbound("hello", sender=ANNA, name="Anna Schmidt")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        host.wait_for({"event": "buddy", "name": ANNA, "alias": "Anna Schmidt"})
        host = self.restart(host, options={"app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN,
                                           "webhook_port": 0, "pseudonymous_aliases": True},
                          env={"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1"})
        # ... loses the profile name as alias at sign-on; the tooltip still has it
        alias = host.wait_for({"event": "buddy", "name": ANNA, "alias": contains("Customer ")})["alias"]
        self.assertRegex(alias, r"^Customer [0-9A-F]{6}$")
        info = host.call({"cmd": "buddy_info", "who": ANNA})
        self.assertIn({"label": "Profile name", "value": "Anna Schmidt"}, info["tooltip"])
        # a new customer never gets one
        self.sim.inbound("hi there", sender=BEN, name="Ben Example")
        host.wait_for({"event": "write", "conv": BEN, "flags": has("recv")})
        host.wait_for({"event": "buddy", "name": BEN, "alias": contains("Customer ")})
        self.assert_nowhere_on_disk(host, ("Anna Schmidt", "Ben Example"))

    def test_window_survives_a_restart(self):
        host = self.start_receiving_host()
        self.sim.inbound("still there?", sender=ANNA, timestamp=int(time.time()) - 23 * 3600 - 1800)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "away"})
        again = self.restart(host)
        again.wait_for({"event": "buddy", "name": ANNA, "status_id": "away"})
        info = again.call({"cmd": "buddy_info", "who": ANNA})
        self.assertRegex(info["status_text"], r"^Service window open: (29|30) min left$")
        again.quit()
        with open(os.path.join(self.user_dir, "blist.xml"), encoding="utf-8") as f:
            blist = f.read()
        self.assertNotIn("wabiz-last-inbound", blist)
        self.assertRegex(blist, r"<setting name='wabiz-customer-id' type='string'>[0-9a-f]{32}</setting>")

    def test_history_when_a_conversation_opens(self):
        host = self.start_receiving_host()
        now = int(time.time())
        for i in range(3):
            self.sim.inbound("question %d" % i, sender=ANNA, timestamp=now - 300 + i)
        for i in range(3):
            host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "question %d" % i})
        again = self.restart(host)
        # opening the conversation (as a person would, by using it) shows the history
        again.call({"cmd": "command", "conv": ANNA, "text": "help"})
        lines = [again.wait_for({"event": "write", "conv": ANNA, "flags": has("recv", "delayed", "no-log")})
                 for _ in range(3)]
        self.assertEqual([line["message"] for line in lines], ["question 0", "question 1", "question 2"])
        self.assertEqual([line["time"] for line in lines], [now - 300, now - 299, now - 298])
        again.expect_none({"event": "write", "conv": ANNA, "flags": has("recv")}, 1.0)

    def test_echoes_are_stored_and_come_back_as_history(self):
        host = self.start_receiving_host()
        waba = self.sim.info()["waba_id"]
        echo = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                "message_echoes": [{"from": "15550783881", "to": ANNA, "id": "wamid.echo-store-1",
                                    "timestamp": str(int(time.time()) - 60), "type": "text",
                                    "text": {"body": "sent from the phone"}}]}}]}]}
        self.sim.webhook_raw(json.dumps(echo))
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("send", "remote-send"),
                       "message": "sent from the phone"})
        # the same echo again (Meta retries): stored once, shown once
        self.sim.webhook_raw(json.dumps(echo))
        host.expect_none({"event": "write", "conv": ANNA, "message": "sent from the phone"}, 1.0)
        again = self.restart(host)
        again.call({"cmd": "command", "conv": ANNA, "text": "help"})
        line = again.wait_for({"event": "write", "conv": ANNA, "flags": has("send", "remote-send", "delayed")})
        self.assertEqual(line["message"], "sent from the phone")

    def test_rotate_key_killed_half_way_resumes_and_keeps_history(self):
        slices = {"WABIZ_TEST_HOOKS": "1", "WABIZ_TEST_ROTATE_SLICE": "1"}
        host = self.start_receiving_host(env=dict(slices, WABIZ_TEST_CRASH="rotate-slice:1"))
        first_code = recovery_code(host.wait_for(RECOVERY_NOTE))
        now = int(time.time())
        for i, sender in enumerate((ANNA, ANNA, BEN)):
            self.sim.inbound("question %d" % i, sender=sender, timestamp=now - 300 + i)
        for i, sender in enumerate((ANNA, ANNA, BEN)):
            host.wait_for({"event": "write", "conv": sender, "flags": has("recv"), "message": "question %d" % i})
        host.call({"cmd": "account_action", "name": ROTATE_ACTION})
        request = host.wait_for({"event": "request", "kind": "action"})
        self.assertIn("recovery code", request["secondary"])
        host.answer(request["id"], action=0)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("Rotating the store key")})
        # killed after the first slice (one customer) committed
        wait_until(lambda: host.proc.poll() is not None or None, timeout=60, what="the host to be killed")
        self.assertEqual(host.proc.returncode, -signal.SIGKILL)
        self.assertIn("test crash at rotate-slice #1", host.stderr_text())
        self.hosts.remove(host)
        host.close()
        with contextlib.closing(sqlite3.connect(self.store_path())) as db:
            gens = dict(db.execute("SELECT key_gen, count(*) FROM customers GROUP BY key_gen").fetchall())
        self.assertEqual(gens, {1: 1, 2: 1})

        # the next sign-on goes on, shows the new code once, and the old one is gone
        again = self.start_host(user_dir=self.user_dir, env=slices)
        again.wait_for({"event": "write", "conv": "notices", "message": contains("interrupted rotation")})
        new_code = recovery_code(again.wait_for(RECOVERY_NOTE, timeout=60))
        self.assertNotEqual(new_code, first_code)
        again.wait_for({"event": "write", "conv": "notices", "message": contains("store key was rotated")})
        third = self.restart(again)
        third.expect_none(RECOVERY_NOTE, 1.0)
        # the history is still there
        third.call({"cmd": "command", "conv": ANNA, "text": "help"})
        lines = [third.wait_for({"event": "write", "conv": ANNA, "flags": has("recv", "delayed", "no-log")})
                 for _ in range(2)]
        self.assertEqual([line["message"] for line in lines], ["question 0", "question 1"])
        third.quit()
        self.hosts.remove(third)
        third.close()
        with contextlib.closing(sqlite3.connect(self.store_path())) as db:
            for table in ("customers", "messages"):
                self.assertEqual(db.execute("SELECT count(*) FROM %s WHERE key_gen <> 2" % table).fetchone()[0],
                                 0, table)
            self.assertEqual(db.execute("SELECT count(*) FROM meta WHERE name IN ('key_prev', 'recovery_pending')")
                             .fetchone()[0], 0)
            header = json.loads(db.execute("SELECT value FROM meta WHERE name = 'key_header'").fetchone()[0])
        self.assertEqual(header["mode"], "keyfile")
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                if not stat.S_ISREG(os.lstat(os.path.join(root, name)).st_mode):
                    continue  # the receiver's socket
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(new_code.encode(), f.read(), name)

    def test_rotate_key_without_the_key_file_changes_nothing(self):
        host = self.start_host(user_dir=self.user_dir)
        host.wait_for(RECOVERY_NOTE)
        os.unlink(self.key_path())
        host.call({"cmd": "account_action", "name": ROTATE_ACTION})
        host.answer(host.wait_for({"event": "request", "kind": "action"})["id"], action=0)
        note = host.wait_for({"event": "write", "conv": "notices", "message": contains("was not rotated")})
        self.assertIn("is missing", note["message"])
        # no new key file (it would not open the store) and no new code
        self.assertFalse(os.path.exists(self.key_path()))
        host.expect_none(RECOVERY_NOTE, 0.5)

    def test_export_then_erase(self):
        host = self.start_receiving_host()
        body = "please delete my data afterwards"
        self.sim.inbound(body, sender=ANNA, name="Anna Schmidt")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": body})
        host.send_im(ANNA, "of course, right after your order")
        self.sim.wait_for_sent(1)
        # one more reply stays queued (the API rate-limits): erasing drops it too
        self.sim.fault(path="/messages", status=400, code=130429, count=-1)
        host.send_im(ANNA, "queued when erased")
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("waiting, retrying")})
        export = os.path.join(self.user_dir, "anna-export.json")
        answer = host.call({"cmd": "command", "conv": ANNA, "text": "export " + export})
        self.assertEqual(answer["status"], "ok")
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("Exported everything")})
        self.assertEqual(stat.S_IMODE(os.stat(export).st_mode), 0o600)
        with open(export, encoding="utf-8") as f:
            data = json.load(f)
        self.assertEqual(data["customer"]["wa_id"], ANNA)
        self.assertEqual(data["customer"]["profile_name"], "Anna Schmidt")
        self.assertEqual([m["body"] for m in data["messages"]],
                         [body, "of course, right after your order", "queued when erased"])
        os.unlink(export)
        # erase asks first; Cancel keeps everything
        host.call({"cmd": "command", "conv": ANNA, "text": "erase"})
        request = host.wait_for({"event": "request", "kind": "action"})
        self.assertEqual(request["actions"], ["Erase", "Cancel"])
        host.answer(request["id"], action=1)
        host.expect_none({"event": "buddy-removed"}, 0.5)
        host.call({"cmd": "command", "conv": ANNA, "text": "erase"})
        request = host.wait_for({"event": "request", "kind": "action"})
        host.answer(request["id"], action=0)
        host.wait_for({"event": "buddy-removed", "name": ANNA})
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("was erased")})
        # the API answers again: the erased customer's queued reply is not sent
        self.sim.clear_faults()
        host.send_im("491709876543", "another customer")
        self.sim.wait_for_sent(2)
        self.assertEqual([m["request"]["text"]["body"] for m in self.sim.sent()],
                         ["of course, right after your order", "another customer"])
        self.assert_nowhere_on_disk(host, (body, "Anna Schmidt", "right after your order", "queued when erased"))

    def export_json(self, host, who, name):
        path = os.path.join(self.user_dir, name)
        host.call({"cmd": "command", "conv": who, "text": "export " + path})
        host.wait_for({"event": "write", "conv": who, "message": contains("Exported everything")})
        with open(path, encoding="utf-8") as f:
            data = f.read()
        os.unlink(path)
        return data

    def test_erasing_one_customer_of_a_shared_change_leaves_nothing_of_them(self):
        """Meta batches messages of several customers into one change: each
        customer's stored raw event holds only their own message, so after
        erasing Anna nothing of her is left in what is stored about Ben."""
        host = self.start_receiving_host()
        waba = self.sim.info()["waba_id"]
        now = str(int(time.time()))
        anna_text = "the parcel for Anna goes to Lindenstrasse 12"
        ben_text = "Ben asks about invoice 8815"
        change = {"object": "whatsapp_business_account", "entry": [{"id": waba, "time": int(now), "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                "contacts": [{"profile": {"name": "Anna Schmidt"}, "wa_id": ANNA},
                             {"profile": {"name": "Ben Example"}, "wa_id": BEN}],
                "messages": [
                    {"from": ANNA, "id": "wamid.shared-change-anna", "timestamp": now, "type": "text",
                     "text": {"body": anna_text}},
                    {"from": BEN, "id": "wamid.shared-change-ben", "timestamp": now, "type": "text",
                     "text": {"body": ben_text}}]}}]}]}
        self.sim.webhook_raw(json.dumps(change))
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": anna_text})
        host.wait_for({"event": "write", "conv": BEN, "flags": has("recv"), "message": ben_text})
        # and the business's answers, sent from the phone, in one change too
        anna_echo = "your parcel for Lindenstrasse leaves today"
        ben_echo = "invoice 8815 is paid"
        echoes = {"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
            "field": "smb_message_echoes", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": self.sim.pnid},
                "message_echoes": [
                    {"from": "15550783881", "to": ANNA, "id": "wamid.shared-echo-anna", "timestamp": now,
                     "type": "text", "text": {"body": anna_echo}},
                    {"from": "15550783881", "to": BEN, "id": "wamid.shared-echo-ben", "timestamp": now,
                     "type": "text", "text": {"body": ben_echo}}]}}]}]}
        self.sim.webhook_raw(json.dumps(echoes))
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("remote-send"), "message": anna_echo})
        host.wait_for({"event": "write", "conv": BEN, "flags": has("remote-send"), "message": ben_echo})
        anna_marks = (ANNA, "Anna Schmidt", anna_text, "wamid.shared-change-anna", anna_echo,
                      "wamid.shared-echo-anna")
        ben_marks = (BEN, "Ben Example", ben_text, "wamid.shared-change-ben", ben_echo, "wamid.shared-echo-ben")
        # each one's raw event is their own message, in Meta's envelope
        anna = json.loads(self.export_json(host, ANNA, "anna.json"))
        raw = json.loads(anna["messages"][0]["raw_event"])
        value = raw["entry"][0]["changes"][0]["value"]
        self.assertEqual(value["messages"], [change["entry"][0]["changes"][0]["value"]["messages"][0]])
        self.assertEqual(value["contacts"], [{"profile": {"name": "Anna Schmidt"}, "wa_id": ANNA}])
        self.assertEqual(value["metadata"]["phone_number_id"], self.sim.pnid)
        for mark in ben_marks:
            self.assertNotIn(mark, json.dumps(anna), "Ben in Anna's export")
        ben_before = self.export_json(host, BEN, "ben-before.json")
        for mark in anna_marks:
            self.assertNotIn(mark, ben_before, "Anna in Ben's export")
        host.call({"cmd": "command", "conv": ANNA, "text": "erase"})
        request = host.wait_for({"event": "request", "kind": "action"})
        host.answer(request["id"], action=0)
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("was erased")})
        # everything the store still holds about Ben, decrypted
        ben = self.export_json(host, BEN, "ben-after.json")
        self.assertEqual([m["body"] for m in json.loads(ben)["messages"]], [ben_text, ben_echo])
        for mark in anna_marks:
            self.assertNotIn(mark, ben, "Anna in Ben's export after she was erased")
        self.assert_nowhere_on_disk(host, anna_marks[1:])

    def test_export_from_the_buddy_menu(self):
        host = self.start_receiving_host()
        self.sim.inbound("menu export", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "menu export"})
        host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Export customer data..."})
        request = host.wait_for({"event": "request", "kind": "file"})
        self.assertTrue(request["savedialog"])
        export = os.path.join(self.user_dir, "from-menu.json")
        host.answer(request["id"], file=export)
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("Exported everything")})
        with open(export, encoding="utf-8") as f:
            self.assertEqual([m["body"] for m in json.load(f)["messages"]], ["menu export"])
        host.call({"cmd": "buddy_menu", "who": ANNA, "label": "Erase customer data..."})
        request = host.wait_for({"event": "request", "kind": "action"})
        self.assertEqual(request["actions"], ["Erase", "Cancel"])
        host.answer(request["id"], action=0)
        host.wait_for({"event": "buddy-removed", "name": ANNA})

    def test_export_replaces_only_our_own_regular_file(self):
        host = self.start_receiving_host()
        self.sim.inbound("export me", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "export me"})

        def export(path):
            host.consume_all()
            host.call({"cmd": "command", "conv": ANNA, "text": "export " + path})
            return host.wait_for({"event": "write", "conv": ANNA,
                                  "message": regex(r"^(Exported everything|The export failed)")})
        # an existing file of ours, readable by everyone: replaced whole, 0600
        existing = os.path.join(self.user_dir, "existing.json")
        with open(existing, "w", encoding="utf-8") as f:
            f.write("x" * 100000)
        os.chmod(existing, 0o644)
        # someone who opened it while it was readable never reads the export
        # through that descriptor: the export is a new file renamed over it
        reader = open(existing, encoding="utf-8")
        self.addCleanup(reader.close)
        line = export(existing)
        self.assertIn("Exported everything", line["message"])
        self.assertEqual(stat.S_IMODE(os.stat(existing).st_mode), 0o600)
        self.assertEqual(reader.read(), "x" * 100000)
        with open(existing, encoding="utf-8") as f:
            self.assertEqual([m["body"] for m in json.load(f)["messages"]], ["export me"])
        # a symbolic link: refused, its target untouched
        target = os.path.join(self.user_dir, "target.txt")
        with open(target, "w", encoding="utf-8") as f:
            f.write("not yours")
        os.chmod(target, 0o644)
        link = os.path.join(self.user_dir, "link.json")
        os.symlink(target, link)
        line = export(link)
        self.assertIn("The export failed", line["message"])
        self.assertIn("is a symbolic link", line["message"])
        self.assertTrue(os.path.islink(link))
        with open(target, encoding="utf-8") as f:
            self.assertEqual(f.read(), "not yours")
        self.assertEqual(stat.S_IMODE(os.stat(target).st_mode), 0o644)
        # a directory is no file to replace
        line = export(self.user_dir)
        self.assertIn("is not a regular file", line["message"])
        # nothing half-written is left beside the targets
        self.assertEqual(sorted(n for n in os.listdir(self.user_dir) if n.startswith(".")), [])
        if os.geteuid() != 0:
            self.skipTest("a file owned by another user needs root to create (chown)")
        theirs = os.path.join(self.user_dir, "theirs.json")
        with open(theirs, "w", encoding="utf-8") as f:
            f.write("their data")
        os.chown(theirs, 65534, 65534)
        line = export(theirs)
        self.assertIn("belongs to another user", line["message"])
        with open(theirs, encoding="utf-8") as f:
            self.assertEqual(f.read(), "their data")
        self.assertEqual(os.stat(theirs).st_uid, 65534)

    def test_retention_deletes_old_texts(self):
        host = self.start_receiving_host(options={"retention_days": 1})
        self.sim.inbound("from two days ago", sender=ANNA, timestamp=int(time.time()) - 2 * 24 * 3600)
        self.sim.inbound("from today", sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "from today"})
        # retention runs at sign-on (and daily)
        again = self.restart(host, options={"retention_days": 1})
        again.call({"cmd": "command", "conv": ANNA, "text": "help"})
        lines = [again.wait_for({"event": "write", "conv": ANNA, "flags": has("recv", "delayed")})["message"]
                 for _ in range(2)]
        self.assertEqual(lines, ["[text message, deleted after the retention period]", "from today"])

    def test_window_in_old_node_settings_moves_into_the_store(self):
        stamp = int(time.time()) - 3600
        # the account must exist before a buddy list naming it is read
        first = self.start_host(user_dir=self.user_dir)
        first.quit()
        self.hosts.remove(first)
        first.close()
        with open(os.path.join(self.user_dir, "blist.xml"), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(f"""\
                <?xml version='1.0' encoding='UTF-8' ?>
                <purple version='1.0'>
                 <blist>
                  <group name='WhatsApp Business'>
                   <contact>
                    <buddy account='{self.sim.pnid}' proto='prpl-wabiz'>
                     <name>{ANNA}</name>
                     <setting name='wabiz-last-inbound' type='string'>{stamp}</setting>
                    </buddy>
                   </contact>
                  </group>
                 </blist>
                </purple>
                """))
        host = self.start_host(user_dir=self.user_dir)
        host.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})
        again = self.restart(host)
        again.wait_for({"event": "buddy", "name": ANNA, "status_id": "available"})
        again.quit()
        with open(os.path.join(self.user_dir, "blist.xml"), encoding="utf-8") as f:
            blist = f.read()
        self.assertNotIn("wabiz-last-inbound", blist)
        self.assertNotIn(str(stamp), blist)


if __name__ == "__main__":
    main()

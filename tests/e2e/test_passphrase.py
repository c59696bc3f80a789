"""Passphrase protection of the encrypted store (store_protection=passphrase):
chosen twice at creation with a recovery code shown once, asked once per
process, a wrong passphrase refused with nothing changed, the recovery code
leading to a new passphrase, "Change store passphrase...", switching between
key file and passphrase, and the passphrase nowhere on disk or in the debug
output. Argon2id runs with the minimum limits here (FAST_KDF_ENV)."""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile

from harness import FAST_KDF_ENV, Receiving, answer_store_passphrase, contains, has, main

ANNA = "491701234567"
PASSPHRASE = "Kaffee-M\u00fchle 4711 \u2615"
NEW_PASSPHRASE = "blue teapot on the windowsill"
CHANGE_ACTION = "Change store passphrase..."


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def field_ids(*ids):
    return lambda fields: [f["id"] for f in fields] == list(ids)


# a new passphrase (typed twice), and the passphrase of a store (or its recovery code)
NEW_REQUEST = {"event": "request", "kind": "fields", "fields": field_ids("passphrase", "again")}
UNLOCK_REQUEST = {"event": "request", "kind": "fields", "fields": field_ids("passphrase", "recovery")}
RECOVERY_NOTE = {"event": "notify", "kind": "formatted", "text": contains("recovery code")}
ROTATE_ACTION = "Rotate store key..."


class Passphrase(Receiving):

    def store_path(self):
        return os.path.join(self.user_dir, "wabiz", "store", self.sim.pnid + ".db")

    def key_path(self):
        return os.path.join(self.user_dir, "wabiz", "keys", self.sim.pnid + ".store-key")

    def start(self, protection="passphrase", **kwargs):
        options = dict(kwargs.pop("options", {}), store_protection=protection)
        return self.start_host(user_dir=self.user_dir, options=options, env=FAST_KDF_ENV, **kwargs)

    def stop(self, host):
        self.assertEqual(host.quit(), 0)
        self.hosts.remove(host)
        host.close()

    def refused(self, passphrase):
        """A new process answers with passphrase: refused, account offline."""
        host = self.start(wait_signed_on=False)
        answer_store_passphrase(host, passphrase)
        error = host.wait_for({"event": "disconnect"})
        self.assertEqual(error["reason_name"], "AUTHENTICATION_FAILED")
        self.assertTrue(error["fatal"])
        host.expect_none("signed-on", 0.5)
        self.stop(host)
        return error

    def stored_header(self):
        db = sqlite3.connect("file:%s?mode=ro" % self.store_path(), uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE name = 'key_header'").fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row is not None and row[0] else None

    def test_created_asks_twice_and_shows_the_recovery_code_once(self):
        host = self.start(wait_signed_on=False)
        host.wait_for({"event": "progress", "text": contains("Waiting for the passphrase"), "step": 1})
        request = host.wait_for(NEW_REQUEST)
        self.assertTrue(all(f["masked"] and f["required"] for f in request["fields"]), request["fields"])
        self.assertIn("at least 8 characters", request["secondary"])
        host.answer(request["id"], fields={"passphrase": PASSPHRASE, "again": PASSPHRASE})
        note = host.wait_for({"event": "notify", "kind": "formatted", "text": contains("recovery code")})
        self.assertIn("passphrase", note["text"])
        self.assertIn("lost for good", note["text"])
        code = re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"])
        self.assertIsNotNone(code, note["text"])
        host.wait_for("signed-on")
        self.assertFalse(os.path.exists(self.key_path()))
        self.assertEqual(stat.S_IMODE(os.stat(self.store_path()).st_mode), 0o600)
        self.stop(host)
        header = self.stored_header()
        self.assertEqual(header["mode"], "passphrase")
        self.assertEqual(header["kdf"]["alg"], "argon2id13")
        # the header records the limits it was made with (the minimum here)
        self.assertEqual(header["kdf"]["opslimit"], 1)
        # a new process asks for it (once), and the code is not shown again
        again = self.start(passphrase=PASSPHRASE)
        again.expect_none({"event": "notify", "kind": "formatted"}, 1.0)
        self.assertEqual(len(again.events(UNLOCK_REQUEST)), 1)
        self.stop(again)
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    self.assertNotIn(code.group(1).encode(), f.read(), name)

    def test_mismatch_and_too_short_ask_again(self):
        host = self.start(wait_signed_on=False)
        request = host.wait_for(NEW_REQUEST)
        host.answer(request["id"], fields={"passphrase": PASSPHRASE, "again": PASSPHRASE + "x"})
        request = host.wait_for(NEW_REQUEST)
        self.assertIn("were not the same", request["secondary"])
        host.answer(request["id"], fields={"passphrase": "seven77", "again": "seven77"})
        request = host.wait_for(NEW_REQUEST)
        self.assertIn("too short", request["secondary"])
        self.assertIn("at least 8 characters", request["secondary"])
        # 8 characters (not bytes) are enough
        short_but_enough = "\u00e4\u00f6\u00fc\u00df\u00c4\u00d6\u00dc!"
        host.answer(request["id"], fields={"passphrase": short_but_enough, "again": short_but_enough})
        host.wait_for({"event": "notify", "kind": "formatted", "text": contains("recovery code")})
        host.wait_for("signed-on")
        self.stop(host)
        self.start(passphrase=short_but_enough)

    def test_cancel_leaves_the_account_offline(self):
        host = self.start(wait_signed_on=False)
        request = host.wait_for(NEW_REQUEST)
        host.answer(request["id"], action=1)
        error = host.wait_for({"event": "disconnect"})
        self.assertEqual(error["reason_name"], "AUTHENTICATION_FAILED")
        self.assertTrue(error["fatal"])
        self.assertIn("passphrase is needed", error["description"])
        host.wait_for("account-disabled")
        host.expect_none("signed-on", 0.5)
        host.expect_none({"event": "notify", "kind": "formatted"}, 0.1)
        self.stop(host)
        # only the empty store file: no key file, no key header
        made = sorted(os.path.relpath(os.path.join(root, name), self.user_dir)
                      for root, _, files in os.walk(os.path.join(self.user_dir, "wabiz")) for name in files)
        self.assertEqual([m for m in made if not m.startswith(os.path.join("wabiz", "store", self.sim.pnid + ".db"))],
                         [])
        self.assertIsNone(self.stored_header())

    def test_asked_once_per_process(self):
        host = self.start(passphrase=PASSPHRASE)
        host.consume_all()
        # sign off and on, twice, in the same process: not asked again
        host.cycle(2, timeout_ms=30000, timeout=60)
        host.consume_all()
        host.connect()
        host.wait_for("signed-on")
        self.assertEqual(len(host.events({"event": "request"})), 1)
        self.stop(host)
        # a new process asks
        again = self.start(wait_signed_on=False)
        request = again.wait_for(UNLOCK_REQUEST)
        again.wait_for({"event": "progress", "text": contains("Waiting for the passphrase")})
        self.assertIn("recovery code", request["secondary"])
        again.answer(request["id"], fields={"passphrase": PASSPHRASE})
        again.wait_for("signed-on")

    def test_cached_key_that_no_longer_fits_asks_again(self):
        host = self.start(passphrase=PASSPHRASE)
        host.disconnect()
        host.wait_for("signed-off")
        # meanwhile the store is replaced by another one (a backup restored, say)
        other_dir = tempfile.mkdtemp(prefix="wabiz-e2e-other-")
        self.addCleanup(shutil.rmtree, other_dir, True)
        other = self.start_host(user_dir=other_dir, options={"store_protection": "passphrase"}, env=FAST_KDF_ENV,
                                passphrase=NEW_PASSPHRASE)
        self.stop(other)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(self.store_path() + suffix):
                os.unlink(self.store_path() + suffix)
        shutil.copyfile(os.path.join(other_dir, "wabiz", "store", self.sim.pnid + ".db"), self.store_path())
        host.consume_all()
        host.connect()
        answer_store_passphrase(host, NEW_PASSPHRASE)
        host.wait_for("signed-on")
        host.expect_none({"event": "disconnect"}, 0.2)

    def test_wrong_passphrase_changes_nothing(self):
        host = self.start(passphrase=PASSPHRASE)
        self.stop(host)
        before = digest(self.store_path())
        error = self.refused("not the passphrase at all")
        self.assertIn("Wrong passphrase; nothing was changed", error["description"])
        self.assertNotIn("not the passphrase at all", error["description"])
        self.assertEqual(digest(self.store_path()), before)
        # and the right one still opens it
        self.start(passphrase=PASSPHRASE)

    def test_recovery_code_sets_a_new_passphrase(self):
        host = self.start(wait_signed_on=False, passphrase=PASSPHRASE)
        note = host.wait_for({"event": "notify", "kind": "formatted", "text": contains("recovery code")})
        code = re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"]).group(1)
        host.wait_for("signed-on")
        self.stop(host)
        before = digest(self.store_path())
        # a code that is not one: refused, nothing changed
        host = self.start(wait_signed_on=False)
        request = host.wait_for(UNLOCK_REQUEST)
        host.answer(request["id"], fields={"recovery": "AAAA-BBBB"})
        error = host.wait_for({"event": "disconnect"})
        self.assertEqual(error["reason_name"], "AUTHENTICATION_FAILED")
        self.assertIn("recovery code was not accepted", error["description"])
        self.stop(host)
        self.assertEqual(digest(self.store_path()), before)
        # the right code (any case, with spaces) unlocks; then a new passphrase
        host = self.start(wait_signed_on=False)
        request = host.wait_for(UNLOCK_REQUEST)
        host.answer(request["id"], fields={"recovery": code.lower().replace("-", " ")})
        request = host.wait_for(NEW_REQUEST)
        self.assertIn("recovery code unlocked", request["secondary"])
        host.answer(request["id"], fields={"passphrase": NEW_PASSPHRASE, "again": NEW_PASSPHRASE})
        host.wait_for({"event": "write", "conv": "notices", "message": contains("A new passphrase protects")})
        host.wait_for("signed-on")
        self.stop(host)
        self.refused(PASSPHRASE)
        self.start(passphrase=NEW_PASSPHRASE)

    def test_change_passphrase_action(self):
        host = self.start(passphrase=PASSPHRASE)
        host.call({"cmd": "account_action", "name": CHANGE_ACTION})
        request = host.wait_for(NEW_REQUEST)
        # cancelling changes nothing and keeps the account online
        host.answer(request["id"], action=1)
        host.expect_none({"event": "disconnect"}, 0.5)
        host.call({"cmd": "account_action", "name": CHANGE_ACTION})
        request = host.wait_for(NEW_REQUEST)
        host.answer(request["id"], fields={"passphrase": NEW_PASSPHRASE, "again": NEW_PASSPHRASE})
        host.wait_for({"event": "write", "conv": "notices",
                       "message": contains("was changed; the old one no longer works")})
        host.expect_none({"event": "disconnect"}, 0.2)
        self.stop(host)
        self.refused(PASSPHRASE)
        self.start(passphrase=NEW_PASSPHRASE)

    def test_rotate_key_action(self):
        host = self.start(wait_signed_on=False, passphrase=PASSPHRASE)
        old_code = re.search(r"<tt>([A-Z2-7-]+)</tt>", host.wait_for(RECOVERY_NOTE)["text"]).group(1)
        host.wait_for("signed-on")
        rotate = {"event": "request", "kind": "fields", "fields": field_ids("passphrase")}
        # a wrong passphrase: nothing changes, the account stays online
        host.call({"cmd": "account_action", "name": ROTATE_ACTION})
        host.answer(host.wait_for(rotate)["id"], fields={"passphrase": NEW_PASSPHRASE})
        host.wait_for({"event": "write", "conv": "notices", "message": contains("was not rotated")})
        host.expect_none({"event": "disconnect"}, 0.2)
        host.call({"cmd": "account_action", "name": ROTATE_ACTION})
        host.answer(host.wait_for(rotate)["id"], fields={"passphrase": PASSPHRASE})
        note = host.wait_for(RECOVERY_NOTE, timeout=60)
        self.assertIn("old one no longer works", note["text"])
        new_code = re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"]).group(1)
        self.assertNotEqual(new_code, old_code)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("store key was rotated")})
        # signing off and on in this process: the remembered key is the new one
        host.disconnect()
        host.wait_for("signed-off")
        host.connect()
        host.wait_for("signed-on")
        host.expect_none({"event": "request"}, 0.2)
        self.stop(host)
        # the old recovery code no longer opens the store, the passphrase and the new code do
        host = self.start(wait_signed_on=False)
        host.answer(host.wait_for(UNLOCK_REQUEST)["id"], fields={"recovery": old_code})
        error = host.wait_for({"event": "disconnect"})
        self.assertIn("recovery code was not accepted", error["description"])
        self.stop(host)
        self.stop(self.start(passphrase=PASSPHRASE))
        host = self.start(wait_signed_on=False)
        host.answer(host.wait_for(UNLOCK_REQUEST)["id"], fields={"recovery": new_code})
        host.wait_for(NEW_REQUEST)

    def test_switch_key_file_to_passphrase_and_back(self):
        host = self.start(protection="keyfile")
        host.wait_for({"event": "notify", "kind": "formatted", "text": contains("recovery code")})
        self.assertTrue(os.path.exists(self.key_path()))
        # no passphrase to change in key-file mode
        host.call({"cmd": "account_action", "name": CHANGE_ACTION}, expect_error=True)
        self.stop(host)

        host = self.start(wait_signed_on=False)
        request = host.wait_for(NEW_REQUEST)
        self.assertIn("Store protection is now Passphrase", request["secondary"])
        host.answer(request["id"], fields={"passphrase": PASSPHRASE, "again": PASSPHRASE})
        host.wait_for({"event": "write", "conv": "notices", "message": contains("now protected by your passphrase")})
        host.wait_for({"event": "write", "conv": "notices",
                       "message": contains("was overwritten and deleted")})
        host.wait_for("signed-on")
        self.assertFalse(os.path.exists(self.key_path()))
        host.expect_none({"event": "notify", "kind": "formatted"}, 0.1)
        self.stop(host)
        self.assertEqual(self.stored_header()["mode"], "passphrase")

        host = self.start(protection="keyfile", wait_signed_on=False)
        request = host.wait_for(UNLOCK_REQUEST)
        self.assertIn("Store protection is Key file", request["secondary"])
        host.answer(request["id"], fields={"passphrase": PASSPHRASE})
        host.wait_for({"event": "write", "conv": "notices", "message": contains("now protected by the key file")})
        host.wait_for("signed-on")
        self.assertEqual(stat.S_IMODE(os.stat(self.key_path()).st_mode), 0o600)
        self.assertEqual(os.path.getsize(self.key_path()), 32)
        self.stop(host)
        self.assertEqual(self.stored_header()["mode"], "keyfile")

        # from now on the key file alone opens it
        host = self.start(protection="keyfile")
        host.expect_none({"event": "request"}, 0.5)

    def test_passphrase_is_nowhere_on_disk_or_in_debug_output(self):
        host = self.start_receiving_host(options={"store_protection": "passphrase"}, env=FAST_KDF_ENV,
                                         passphrase=PASSPHRASE, debug=True)
        self.sim.inbound("is my order on its way?", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": "is my order on its way?"})
        host.send_im(ANNA, "yes, it left today")
        self.sim.wait_for_sent(1)
        host.call({"cmd": "account_action", "name": CHANGE_ACTION})
        answer_store_passphrase(host, NEW_PASSPHRASE)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("was changed")})
        # and a key rotation: neither its passphrase nor its new recovery code is written anywhere
        host.call({"cmd": "account_action", "name": ROTATE_ACTION})
        answer_store_passphrase(host, NEW_PASSPHRASE)
        note = host.wait_for({"event": "notify", "kind": "formatted", "text": contains("old one no longer works")})
        new_code = re.search(r"<tt>([A-Z2-7-]+)</tt>", note["text"]).group(1)
        host.wait_for({"event": "write", "conv": "notices", "message": contains("store key was rotated")})
        self.stop(host)
        self.stop_receiver()
        self.assertNotIn(new_code, host.stderr_text())
        secrets = [PASSPHRASE.encode(), NEW_PASSPHRASE.encode(), new_code.encode()]
        found = []
        for root, _, files in os.walk(self.user_dir):
            for name in files:
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    data = f.read()
                found += [(path, s) for s in secrets if s in data]
        self.assertEqual(found, [])
        debug = host.stderr_text()
        self.assertIn("wabiz", debug)  # the debug output was on
        for secret in (PASSPHRASE, NEW_PASSPHRASE):
            self.assertNotIn(secret, debug)
            # what the host reported (requests, errors, notices) does not hold it either
            self.assertNotIn(secret, json.dumps(host.events(), ensure_ascii=False))


if __name__ == "__main__":
    main()

"""Secrets and exposure: the access token, the app secret and the keys never
appear in debug output (purple debug on, WABIZ_DEBUG_HTTP=1), in the store,
in the receiver's files or in exports; files and sockets have the right
modes (checked directly: CI runs as root, so permissions would not stop a
read); the token goes only to the API; the receiver holds nothing of the
plugin's store or keys. (The passphrase has its own test in
test_passphrase.py.)"""

import base64
import json
import os
import stat

from harness import VERIFY_TOKEN, Receiving, contains, has, main

ANNA = "491701234567"
TOKEN = "EAAG-secret-token-7f3c9b1e5a0d4c2b"
APP_SECRET = "app-secret-5e8d1c7b3a9f4e2d"


def all_files(root):
    for base, dirs, files in os.walk(root):
        for name in dirs:
            yield os.path.join(base, name), True
        for name in files:
            yield os.path.join(base, name), False


class Secrets(Receiving):

    sim_opts = {"token": TOKEN, "app_secret": APP_SECRET}

    def start(self, **kwargs):
        host = self.start_host(
            options={"app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN, "webhook_port": 0},
            env={"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1"},
            user_dir=self.user_dir, debug=True, **kwargs)
        notice = host.wait_for({"event": "write", "conv": "notices", "message": contains("listens on")})
        url = notice["message"].split("listens on ")[1].split("<")[0].split()[0]
        self.sim.webhook(url=url, app_secret=APP_SECRET, retry_base_ms=100)
        return host

    def key_forms(self):
        """The store key file's bytes in every form they could leak in."""
        path = os.path.join(self.user_dir, "wabiz", "keys", self.sim.pnid + ".store-key")
        with open(path, "rb") as f:
            key = f.read()
        return [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
                base64.b64encode(key).rstrip(b"="), base64.urlsafe_b64encode(key).rstrip(b"=")]

    def test_token_secret_and_keys_never_leak(self):
        host = self.start()
        self.sim.inbound("my parcel?", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        host.send_im(ANNA, "on its way")
        self.sim.wait_for_sent(1)
        export = os.path.join(self.user_dir, "export.json")
        host.call({"cmd": "command", "conv": ANNA, "text": "export " + export})
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("Exported everything")})
        # the token went to the API, and nowhere else
        requests = self.sim.requests()
        self.assertTrue(requests and all(r["authorization"] for r in requests))
        keys = self.key_forms()
        debug = host.stderr_text().encode()
        events = json.dumps(host.events()).encode()
        host.quit()
        self.hosts.remove(host)
        host.close()
        self.stop_receiver()
        self.assertIn(b"wabiz", debug, "purple debug output was on")
        secrets = [TOKEN.encode(), APP_SECRET.encode()] + keys
        for name, blob in (("debug output", debug), ("host events", events)):
            for secret in secrets:
                self.assertNotIn(secret, blob, name)
        for path, is_dir in all_files(self.user_dir):
            if is_dir:
                continue
            with open(path, "rb") as f:
                data = f.read()
            for secret in secrets:
                if path.endswith(".store-key") and secret in keys:
                    continue  # the key file is the key
                if path.endswith("accounts.xml") and secret in (TOKEN.encode(), APP_SECRET.encode()):
                    continue  # libpurple keeps the account's password and options there
                self.assertFalse(secret in data, "%r found in %s" % (secret, path))

    def test_modes_of_every_file_and_socket(self):
        host = self.start()
        self.sim.inbound("hello", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        export = os.path.join(self.user_dir, "export.json")
        host.call({"cmd": "command", "conv": ANNA, "text": "export " + export})
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("Exported everything")})
        self.assertEqual(stat.S_IMODE(os.stat(export).st_mode), 0o600)
        wabiz = os.path.join(self.user_dir, "wabiz")
        seen = set()
        for path, is_dir in all_files(wabiz):
            st = os.lstat(path)
            if is_dir:
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o700, path)
            else:
                self.assertEqual(stat.S_IMODE(st.st_mode), 0o600, path)
            seen.add(os.path.relpath(path, wabiz))
        for expected in ("store", "keys", "receiver", os.path.join("receiver", "rx.sock"),
                         os.path.join("receiver", "journal.db")):
            self.assertIn(expected, seen)
        self.assertTrue(stat.S_ISSOCK(os.lstat(os.path.join(wabiz, "receiver", "rx.sock")).st_mode))

    def test_receiver_holds_nothing_of_the_plugin(self):
        host = self.start()
        self.sim.inbound("hello", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv")})
        pid = self.receiver_status()["pid"]
        wabiz = os.path.realpath(os.path.join(self.user_dir, "wabiz"))
        # its open files: its own directory, never the store or the keys
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith(wabiz):
                self.assertTrue(target.startswith(os.path.join(wabiz, "receiver")), target)
        # its command line and environment carry no token or secret
        for name in ("cmdline", "environ"):
            with open("/proc/%d/%s" % (pid, name), "rb") as f:
                data = f.read()
            self.assertNotIn(TOKEN.encode(), data, name)
            self.assertNotIn(APP_SECRET.encode(), data, name)
        # it binds loopback only
        self.assertEqual(self.receiver_status()["listeners"][0]["bind"], "127.0.0.1")


if __name__ == "__main__":
    main()

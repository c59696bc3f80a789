"""Where webhooks are received: a port another local user holds first is told
in the notices conversation (at sign-on and after the receiver restarts) and
never swapped for another port; a UNIX socket listener for a reverse proxy;
a verify token made for an account that has none."""

import grp
import http.client
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import time
import urllib.parse

from harness import (DEFAULT_APP_SECRET, RECEIVER_ARGS, VERIFY_TOKEN, Receiving, contains, has,
                     main, wait_until)
from rxctl import socket_group, squat, try_squat, unix_request
from simctl import sign as sign_body

ANNA = "491701234567"
RETRY_ENV = {"WABIZ_RECEIVER_ARGS": RECEIVER_ARGS + " --listen-retry 1"}
TAKEN = "because another program already holds that address"


def http_get(url):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path + "?" + parts.query)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def inbound_body(pnid, text, sender=ANNA, wamid="wamid.E2EUNIX0001"):
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": pnid},
             "contacts": [{"profile": {"name": "Anna"}, "wa_id": sender}],
             "messages": [{"from": sender, "id": wamid, "timestamp": str(int(time.time())),
                           "type": "text", "text": {"body": text}}]}
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]}
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


class Listen(Receiving):

    def notice(self, host, text, timeout=30):
        return host.wait_for({"event": "write", "conv": "notices", "message": contains(text)},
                             timeout=timeout)["message"]

    def start_plain(self, options, env=None, token=VERIFY_TOKEN, **kwargs):
        """A receiving host whose listener may not open: no wait for the set-up notice."""
        opts = {"app_secret": DEFAULT_APP_SECRET}
        if token is not None:
            opts["verify_token"] = token
        opts.update(options)
        environment = {"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1"}
        environment.update(RETRY_ENV)
        environment.update(env or {})
        return self.start_host(options=opts, env=environment, user_dir=self.user_dir, **kwargs)

    def test_squatted_port_is_told_at_sign_on_and_when_it_is_free(self):
        squatter = squat()
        self.addCleanup(squatter.close)
        port = squatter.getsockname()[1]
        url = "http://127.0.0.1:%d/webhook" % port
        host = self.start_plain({"webhook_port": port})
        text = self.notice(host, "cannot listen on " + url)
        self.assertIn(TAKEN, text)
        self.assertIn("another user", text)
        self.assertIn("never moves to another port", text)
        # not a word about a listener that is not there, and no other port
        host.expect_none({"event": "write", "conv": "notices",
                          "message": contains("webhook receiver listens on")}, 2.5)
        status = self.receiver_status()
        self.assertEqual([(a["url"], a["listening"], a["port_taken"]) for a in status["accounts"]],
                         [(None, False, True)])
        squatter.close()
        self.notice(host, "Receiving works again: the webhook receiver listens on " + url)
        self.notice(host, "webhook receiver listens on " + url)
        self.sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        self.sim.inbound("after the squatter left", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "message": "after the squatter left",
                       "flags": has("recv")})

    def test_squatted_port_after_a_receiver_restart_is_told(self):
        first = self.start_receiving_host(connect_sim=False, env=RETRY_ENV)
        port = int(re.search(r":(\d+)/", self.webhook_url).group(1))
        first.quit()
        self.hosts.remove(first)
        first.close()
        # the port asked for explicitly from now on
        host = self.start_receiving_host(options={"webhook_port": port}, env=RETRY_ENV)
        self.assertEqual(self.webhook_url, "http://127.0.0.1:%d/webhook" % port)
        pid = self.receiver_status()["pid"]
        os.kill(pid, signal.SIGKILL)
        # taken as soon as the killed receiver lets go of it (the plugin waits
        # a second before it starts another)
        squatter = wait_until(lambda: try_squat(port), timeout=30, interval=0.005,
                              what="the killed receiver's port to be free")
        self.addCleanup(squatter.close)
        # the plugin starts the receiver again; it loads the saved registration,
        # cannot listen, keeps running, and the plugin is told
        text = self.notice(host, "cannot listen on " + self.webhook_url, timeout=60)
        self.assertIn(TAKEN, text)
        status = self.receiver_status()
        self.assertNotEqual(status["pid"], pid)
        self.assertEqual([(a["listening"], a["port_taken"]) for a in status["accounts"]], [(False, True)])
        squatter.close()
        self.notice(host, "Receiving works again: the webhook receiver listens on " + self.webhook_url)
        self.sim.webhook(url=self.webhook_url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        self.sim.inbound("back on the same port", sender=ANNA, name="Anna")
        host.wait_for({"event": "write", "conv": ANNA, "message": "back on the same port",
                       "flags": has("recv")})

    def test_any_port_moved_at_a_restart_is_told(self):
        """webhook_port 0 (any free port) is the one case where the receiver takes
        another port, when the remembered one is taken at a start: not silently."""
        first = self.start_receiving_host(connect_sim=False)
        old_url = self.webhook_url
        port = int(re.search(r":(\d+)/", old_url).group(1))
        first.quit()
        self.hosts.remove(first)
        first.close()
        self.stop_receiver()
        squatter = wait_until(lambda: try_squat(port), timeout=30, interval=0.05,
                              what="the stopped receiver's port to be free")
        self.addCleanup(squatter.close)
        host = self.start_receiving_host()
        self.assertNotEqual(self.webhook_url, old_url)
        text = self.notice(host, "now listens on %s, no longer on %s" % (self.webhook_url, old_url))
        self.assertIn("another user", text)
        # said once: the next sign-on has nothing new to say
        host.quit()
        self.hosts.remove(host)
        host.close()
        again = self.start_receiving_host()
        again.expect_none({"event": "write", "conv": "notices", "message": contains("no longer on")}, 1.0)

    def test_unix_socket_delivery_reaches_the_conversation(self):
        run = tempfile.mkdtemp(prefix="wabiz-e2e-run-")
        self.addCleanup(shutil.rmtree, run, True)
        os.chmod(run, 0o750)
        path = os.path.join(run, "hook.sock")
        group = socket_group()
        host = self.start_plain({"webhook_bind": "unix:" + path, "webhook_socket_group": group})
        self.notice(host, "webhook receiver listens on http://unix:%s:/webhook" % path)
        st = os.lstat(path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_gid, grp.getgrnam(group).gr_gid)
        body = inbound_body(self.sim.pnid, "through the proxy socket")
        status, _ = unix_request(path, "POST", "/webhook", body,
                                 {"Content-Type": "application/json",
                                  "X-Hub-Signature-256": sign_body(body, DEFAULT_APP_SECRET)})
        self.assertEqual(status, 200)
        host.wait_for({"event": "write", "conv": ANNA, "message": "through the proxy socket",
                       "flags": has("recv")})
        # the receiver takes its socket along when it stops
        host.quit()
        self.assertTrue(os.path.lexists(path))
        self.stop_receiver()
        wait_until(lambda: not os.path.lexists(path), timeout=30, what="the socket to be removed")

    def test_verify_token_is_made_when_none_is_set(self):
        host = self.start_receiving_host(options={"verify_token": ""})
        text = host.events({"event": "write", "conv": "notices",
                            "message": contains("webhook receiver listens on")})[0]["message"]
        match = re.search(r"verify token ([A-Za-z0-9_-]+)", text)
        self.assertIsNotNone(match, text)
        token = match.group(1)
        self.assertEqual(len(token), 43)  # 32 random bytes, base64url
        challenge = "1158201444"
        query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.challenge": challenge,
                                        "hub.verify_token": token})
        self.assertEqual(http_get(self.webhook_url + "?" + query), (200, challenge.encode()))
        query = urllib.parse.urlencode({"hub.mode": "subscribe", "hub.challenge": challenge,
                                        "hub.verify_token": token[:-1]})
        self.assertEqual(http_get(self.webhook_url + "?" + query)[0], 403)
        # kept in the account: the next sign-on shows the same token
        host.quit()
        self.hosts.remove(host)
        host.close()
        again = self.start_plain({"webhook_port": 0}, token=None)
        text = self.notice(again, "webhook receiver listens on")
        self.assertIn(token, text)


if __name__ == "__main__":
    main()

"""harness: end-to-end scenarios: the built plugin in a real libpurple core
(wabiz-host) against the Cloud API simulator (wabiz-sim), over loopback HTTP.

Environment (set by tests/e2e/meson.build): WABIZ_SIM, WABIZ_HOST,
WABIZ_PLUGIN_DIR, WABIZ_RECEIVER, WABIZ_SRC (source root). WABIZ_VALGRIND=1 runs the host under
valgrind memcheck with our suppressions.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

SRC = os.environ.get("WABIZ_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))
sys.path.insert(0, os.path.join(SRC, "tests", "receiver"))

from hostctl import Host, HostError, contains, has, regex  # noqa: E402,F401
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402,F401

PROTOCOL = "prpl-wabiz"


def valgrind_wrapper():
    if os.environ.get("WABIZ_VALGRIND") != "1":
        return ()
    supp = os.path.join(SRC, "tests", "host", "valgrind.supp")
    return ("valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
            "--errors-for-leak-kinds=definite", "--error-exitcode=99",
            "--suppressions=" + supp, "--num-callers=30")


def refusing_port():
    """A loopback port that refuses connections while the socket lives: bound,
    never listening (no free-port race: we hold it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


# Argon2id with the minimum limits (store_protection=passphrase): see wabiz-passphrase.c
FAST_KDF_ENV = {"WABIZ_TEST_HOOKS": "1", "WABIZ_TEST_KDF": "minimum"}


def answer_store_passphrase(host, passphrase, timeout=None):
    """Answers the next store passphrase dialog with passphrase (typed twice
    when it asks for a new one); returns the request."""
    request = host.wait_for({"event": "request", "kind": "fields",
                             "fields": lambda fields: any(f["id"] == "passphrase" for f in fields)},
                            timeout=timeout)
    values = {"passphrase": passphrase}
    if any(f["id"] == "again" for f in request["fields"]):
        values["again"] = passphrase
    host.answer(request["id"], fields=values)
    return request


class Scenario(unittest.TestCase):
    """Starts a simulator per test; start_host() signs a business account in."""

    sim_opts = {}

    def setUp(self):
        self.sim = Sim.start(os.environ["WABIZ_SIM"], **self.sim_opts)
        self.addCleanup(self.sim.stop)
        self.hosts = []
        self.all_hosts = []  # including those a test stopped itself

    def tearDown(self):
        # under valgrind (WABIZ_VALGRIND=1) a host still running must exit
        # cleanly: 99 is valgrind's "errors or definite leaks"
        failures = []
        valgrind = os.environ.get("WABIZ_VALGRIND") == "1"
        for host in self.hosts:
            if valgrind and host.running:
                host.quit(timeout=120)
            host.close()
        for host in self.all_hosts if valgrind else ():
            if host.proc is not None and host.proc.returncode == 99:
                failures.append("valgrind found errors or definite leaks:\n%s" % host.stderr_text()[-6000:])
        self.assertEqual(failures, [])

    def api_url(self, sim=None):
        return (sim or self.sim).base_url + "/v25.0"

    def start_host(self, account=None, password=None, options=None, wait_signed_on=True,
                   reconnect_delay_ms=200, passphrase=None, **kwargs):
        opts = {"api_base_url": self.api_url(), "send_retry_delay_ms": 50, "http_timeout": 10}
        opts.update(options or {})
        host = Host()
        self.hosts.append(host)
        self.all_hosts.append(host)
        env = {"WABIZ_DEBUG_HTTP": "1"}
        env.update(kwargs.pop("env", {}))
        # the test build of the plugin unless a scenario names another
        plugin_dir = kwargs.pop("plugin_dir", os.environ["WABIZ_PLUGIN_DIR"])
        host.start(plugin_dir=plugin_dir, protocol=PROTOCOL,
                   account=account or self.sim.pnid,
                   password=self.sim.token if password is None else password,
                   options=opts, reconnect_delay_ms=reconnect_delay_ms,
                   env=env, **dict({"wrapper": valgrind_wrapper()}, **kwargs))
        if passphrase is not None:
            answer_store_passphrase(host, passphrase)
        if wait_signed_on:
            host.wait_for("signed-on", timeout=60)
        return host


    def add_second_number(self, host, **options):
        """Signs the business's second phone number (the simulator's
        SECOND_PNID, see TWO_NUMBERS) in as a second account of ``host``,
        without webhooks; returns its user name."""
        opts = {"api_base_url": self.api_url(), "send_retry_delay_ms": 50, "http_timeout": 10}
        opts.update(options)
        host.add_account(SECOND_PNID, password=self.sim.token, options=opts)
        host.wait_for({"event": "signed-on", "account": SECOND_PNID}, timeout=60)
        return SECOND_PNID


# a second phone number of the simulator's business: sim_opts = TWO_NUMBERS
SECOND_PNID = "106540352242933"
TWO_NUMBERS = {"number": [SECOND_PNID + "=+1 555-078-3882"]}

VERIFY_TOKEN = "e2e-verify-token"
# small receiver limits so tests never wait on production timeouts
RECEIVER_ARGS = "--header-timeout 5 --idle-timeout 10 --body-timeout 10"


class Receiving(Scenario):
    """Scenarios with webhooks: the plugin starts wabiz-receiver (from
    WABIZ_RECEIVER) under the host's user dir, on a free port; the simulator
    delivers its webhooks there. The receiver outlives a host (as it outlives
    Pidgin), so a user dir can be reused by a second host; it is stopped at
    the end of the test."""

    def setUp(self):
        super().setUp()
        self.user_dir = tempfile.mkdtemp(prefix="wabiz-e2e-")
        self.addCleanup(shutil.rmtree, self.user_dir, True)
        self.addCleanup(self.stop_receiver)
        self.webhook_url = None

    @property
    def receiver_dir(self):
        return os.path.join(self.user_dir, "wabiz", "receiver")

    def stop_receiver(self):
        if os.path.exists(os.path.join(self.receiver_dir, "rx.sock")):
            subprocess.run([os.environ["WABIZ_RECEIVER"], "--dir", self.receiver_dir, "--stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)

    def receiver_status(self):
        out = subprocess.run([os.environ["WABIZ_RECEIVER"], "--dir", self.receiver_dir, "--status"],
                             capture_output=True, text=True, timeout=30)
        import json
        return json.loads(out.stdout) if out.returncode == 0 else None

    def start_receiving_host(self, options=None, env=None, connect_sim=True, **kwargs):
        opts = {"app_secret": DEFAULT_APP_SECRET, "verify_token": VERIFY_TOKEN, "webhook_port": 0}
        opts.update(options or {})
        environment = {"WABIZ_RECEIVER": os.environ["WABIZ_RECEIVER"], "WABIZ_TEST_HOOKS": "1",
                       "WABIZ_RECEIVER_ARGS": RECEIVER_ARGS}
        environment.update(env or {})
        host = self.start_host(options=opts, env=environment, user_dir=self.user_dir, **kwargs)
        # the notices conversation ("wabiz" in BitlBee)
        notice = host.wait_for({"event": "write", "conv": regex("^(notices|wabiz)$"),
                                "message": contains("webhook receiver listens on")}, timeout=30)
        match = re.search(r"listens on (http://127\.0\.0\.1:\d+/[^\s<]*)", notice["message"])
        self.assertIsNotNone(match, notice["message"])
        self.webhook_url = match.group(1)
        if connect_sim:
            self.sim.webhook(url=self.webhook_url, app_secret=DEFAULT_APP_SECRET, retry_base_ms=100)
        return host

    def wait_delivered(self, count, timeout=30):
        """Waits until the simulator has had `count` webhook deliveries answered 200."""
        def done():
            ok = [d for d in self.sim.webhooks() if d.get("status") == 200]
            return len(ok) >= count
        wait_until(done, timeout=timeout, what="%d webhooks answered 200" % count)


def main():
    """Run the scenarios named on the command line. A run whose every
    scenario was skipped exits with 77, which meson reports as SKIP."""
    program = unittest.main(module="__main__", verbosity=2, exit=False)
    result = program.result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.testsRun > 0 and len(result.skipped) == result.testsRun:
        sys.exit(77)
    sys.exit(0)

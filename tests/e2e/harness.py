"""harness: end-to-end scenarios: the built plugin in a real libpurple core
(wabiz-host) against the Cloud API simulator (wabiz-sim), over loopback HTTP.

Environment (set by tests/e2e/meson.build): WABIZ_SIM, WABIZ_HOST,
WABIZ_PLUGIN_DIR, WABIZ_SRC (source root). WABIZ_VALGRIND=1 runs the host under
valgrind memcheck with our suppressions.
"""

import os
import socket
import sys
import unittest

SRC = os.environ.get("WABIZ_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))
sys.path.insert(0, os.path.join(SRC, "tests", "host"))

from hostctl import Host, HostError, contains, has, regex  # noqa: E402,F401
from simctl import Sim, wait_until  # noqa: E402,F401

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


class Scenario(unittest.TestCase):
    """Starts a simulator per test; start_host() signs a business account in."""

    sim_opts = {}

    def setUp(self):
        self.sim = Sim.start(os.environ["WABIZ_SIM"], **self.sim_opts)
        self.addCleanup(self.sim.stop)
        self.hosts = []

    def tearDown(self):
        for host in self.hosts:
            host.close()

    def api_url(self, sim=None):
        return (sim or self.sim).base_url + "/v25.0"

    def start_host(self, account=None, password=None, options=None, wait_signed_on=True,
                   reconnect_delay_ms=200, **kwargs):
        opts = {"api_base_url": self.api_url(), "send_retry_delay_ms": 50, "http_timeout": 10}
        opts.update(options or {})
        host = Host()
        self.hosts.append(host)
        env = {"WABIZ_DEBUG_HTTP": "1"}
        env.update(kwargs.pop("env", {}))
        host.start(plugin_dir=os.environ["WABIZ_PLUGIN_DIR"], protocol=PROTOCOL,
                   account=account or self.sim.pnid,
                   password=self.sim.token if password is None else password,
                   options=opts, reconnect_delay_ms=reconnect_delay_ms,
                   wrapper=valgrind_wrapper(), env=env, **kwargs)
        if wait_signed_on:
            host.wait_for("signed-on", timeout=60)
        return host


def main():
    unittest.main(module="__main__", verbosity=2)

"""test_confine.py: wabiz-receiver's confinement (plugin/receiver/rx-confine.c).

The kernel's own view of the running receiver (/proc/PID/status: NoNewPrivs,
Seccomp), a forbidden system call killing it (SIGSYS) and being reported, and,
where the kernel has Landlock, files outside its directory refused and a
registration with TLS files elsewhere restarting it with a wider ruleset.

The escapes are tried by wabiz-receiver-hooks (WABIZ_RECEIVER_HOOKS): the
same receiver built with a test hook (WABIZ_RX_TEST_ESCAPE), never installed.
A test that needs what this kernel lacks (Landlock) exits 77, which meson
shows as SKIP with the reason.

Usage: WABIZ_RECEIVER=... WABIZ_RECEIVER_HOOKS=... python3 test_confine.py [Class.test_name ...]
"""

import os
import re
import signal
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rxctl import (  # noqa: E402
    Account, Receiver, ReceiverCase, make_cert, post_webhook, tls_client_context, values_of, wait_until,
    webhook_body)

HOOKS = os.environ.get("WABIZ_RECEIVER_HOOKS")
# 0 in builds without confinement (sanitizers, -Dconfine=false): SKIP there
CONFINED_BUILD = os.environ.get("WABIZ_RECEIVER_CONFINED", "1") == "1"
SKIP = 77


def proc_status(pid):
    """/proc/PID/status as a dict."""
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


class ConfineTest(ReceiverCase):

    def start(self, binary=None, env=None, **opts):
        saved = {}
        for key, value in (env or {}).items():
            saved[key] = os.environ.get(key)
            os.environ[key] = value
        try:
            rx = Receiver.start(binary or self.binary, self.dir, **opts)
        finally:
            for key, value in saved.items():
                if value is None:
                    del os.environ[key]
                else:
                    os.environ[key] = value
        self.receivers.append(rx)
        return rx

    def client(self, rx):
        c = rx.client()
        self.clients.append(c)
        return c

    def require_confined(self, rx):
        if not CONFINED_BUILD:
            raise unittest.SkipTest("this build has no confinement (-Dconfine=false or a sanitizer)")
        if "confinement is off" in rx.log():
            self.fail("the receiver is not confined (a -Dconfine=false build?):\n" + rx.log())

    def require_landlock(self, rx):
        self.require_confined(rx)
        for line in rx.log().splitlines():
            if "Landlock is unavailable" in line:
                raise unittest.SkipTest(line.split(": ", 1)[1])
        self.assertIn("Landlock ABI", rx.log())

    def run_until_exit(self, steps):
        """wabiz-receiver-hooks trying @steps, which should end it before a
        test could talk to it; (exit status, log)."""
        log_path = self.dir + ".stderr"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen([HOOKS, "--dir", self.dir], stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=log, env=dict(os.environ, WABIZ_RX_TEST_ESCAPE=steps))
        try:
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(log_path, errors="replace") as f:
            return code, f.read()

    # ---- tests ----------------------------------------------------------

    def test_kernel_sees_it_confined(self):
        rx = self.start()
        self.require_confined(rx)
        worker = rx.status()["pid"]
        status = proc_status(worker)
        self.assertEqual(status["NoNewPrivs"].strip(), "1")
        self.assertEqual(status["Seccomp"].strip(), "2")  # a filter
        self.assertIn("confined: no new privileges, seccomp allow-list", rx.log())
        # the monitor it was started as stays unconfined by seccomp
        self.assertNotEqual(worker, rx.proc.pid)
        self.assertEqual(proc_status(rx.proc.pid)["Seccomp"].strip(), "0")
        # SIGTERM to the process started stops the confined one cleanly
        self.assertEqual(rx.stop(), 0)
        self.assertFalse(os.path.exists("/proc/%d" % worker))

    def test_switched_off_by_environment(self):
        rx = self.start(env={"WABIZ_RECEIVER_CONFINE": "off"})
        self.assertIn("confinement is off", rx.log())
        self.assertEqual(rx.status()["pid"], rx.proc.pid)  # no monitor
        self.assertEqual(proc_status(rx.proc.pid)["Seccomp"].strip(), "0")

    def test_execve_kills_it_and_is_reported(self):
        if not CONFINED_BUILD:
            raise unittest.SkipTest("this build has no confinement (-Dconfine=false or a sanitizer)")
        self.assertTrue(HOOKS, "WABIZ_RECEIVER_HOOKS must name wabiz-receiver-hooks")
        marker = os.path.join(self.dir, "stopped-by-confinement")
        code, log = self.run_until_exit("execve")
        self.assertIn("test hook: execve /bin/true", log)
        self.assertNotIn("test hook: execve /bin/true:", log)  # execve never returned
        self.assertEqual(code, -signal.SIGSYS, log)
        self.assertIn("was stopped by its confinement", log)
        self.assertTrue(os.path.exists(marker), "no %s for the plugin" % marker)
        self.assertEqual(os.stat(marker).st_mode & 0o777, 0o600)
        # what the plugin does next: start it again on the same directory
        rx = self.start()
        self.assertIn("pid", rx.status())

    def test_fork_kills_it(self):
        """clone() without CLONE_THREAD is outside the allow-list (threads are
        not: the journal and GLib start them all the time)."""
        if not CONFINED_BUILD:
            raise unittest.SkipTest("this build has no confinement (-Dconfine=false or a sanitizer)")
        code, log = self.run_until_exit("fork")
        self.assertEqual(code, -signal.SIGSYS, log)
        self.assertIn("test hook: fork\n", log)
        self.assertNotIn("test hook: fork:", log)
        self.assertIn("was stopped by its confinement", log)

    def test_no_outgoing_tcp(self):
        """Landlock ABI 4 (Linux 6.7) refuses TCP connections out; binding
        (its listeners) stays free."""
        self.assertTrue(HOOKS, "WABIZ_RECEIVER_HOOKS must name wabiz-receiver-hooks")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        rx = self.start(HOOKS, env={"WABIZ_RX_TEST_ESCAPE": "connect:%d" % port})
        self.require_landlock(rx)
        abi = int(re.search(r"Landlock ABI (\d+)", rx.log()).group(1))
        if abi < 4:
            raise unittest.SkipTest("Landlock ABI %d has no network rules (4 and later do)" % abi)
        wait_until(lambda: "test hook: connect" in rx.log(), what="the test hook")
        self.assertIn("test hook: connect %d: refused (Permission denied)" % port, rx.log())
        # its own listeners still bind and serve
        acct = Account()
        c = self.client(rx)
        url = c.register(acct.registration())["url"]
        self.assertEqual(post_webhook(url, webhook_body(), secret=acct.secret)[0], 200)

    def test_files_outside_its_directory_refused(self):
        self.assertTrue(HOOKS, "WABIZ_RECEIVER_HOOKS must name wabiz-receiver-hooks")
        outside = os.path.join(self.tmp, "outside.txt")
        with open(outside, "w") as f:
            f.write("not the receiver's")
        inside = os.path.join(self.dir, "inside.txt")
        os.makedirs(self.dir, mode=0o700)
        with open(inside, "w") as f:
            f.write("the receiver's")
        created = os.path.join(self.tmp, "created.txt")
        steps = ";".join(["open:" + inside, "open:" + outside, "create:" + created,
                          "open:/etc/hostname"])
        rx = self.start(HOOKS, env={"WABIZ_RX_TEST_ESCAPE": steps})
        self.require_landlock(rx)
        wait_until(lambda: "test hook: open /etc/hostname" in rx.log(), what="the test hook")
        log = rx.log()
        self.assertIn("test hook: open %s: allowed" % inside, log)
        self.assertIn("test hook: open %s: refused (Permission denied)" % outside, log)
        self.assertIn("test hook: create %s: refused (Permission denied)" % created, log)
        self.assertIn("test hook: open /etc/hostname: refused (Permission denied)", log)
        self.assertFalse(os.path.exists(created))
        # refused, not killed: it still serves
        self.assertIn("pid", rx.status())

    def test_tls_files_elsewhere_restart_it_wider(self):
        rx = self.start()
        self.require_landlock(rx)
        started = rx.proc.pid
        first_worker = rx.status()["pid"]
        cert, key = make_cert(os.path.join(self.tmp, "tls-a"))
        acct = Account()
        c = self.client(rx)
        answer = c.register(acct.registration(tls_cert=cert, tls_key=key))
        self.assertTrue(answer["url"].startswith("https://127.0.0.1:"), answer)
        self.assertEqual([n["code"] for n in c.notices], ["restart"])
        self.assertIn(os.path.join(self.tmp, "tls-a"), c.notices[0]["message"])
        self.assertIn("restarting: the TLS files or UNIX socket of a registration are in", rx.log())
        # the same process started (its monitor executed itself again), a new worker
        self.assertEqual(rx.proc.poll(), None)
        self.assertEqual(rx.proc.pid, started)
        second_worker = rx.status()["pid"]
        self.assertNotEqual(second_worker, first_worker)
        # under its own name in ps and top (not "exe")
        for pid in (started, second_worker):
            with open("/proc/%d/comm" % pid) as f:
                self.assertEqual(f.read().strip(), "wabiz-receiver")
        c.subscribe(acct.pnid)
        context = tls_client_context(cert)
        self.assertEqual(post_webhook(answer["url"], webhook_body(text="wider"), secret=acct.secret,
                                      context=context)[0], 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "wider")

        # a second account whose files are links into a third directory
        # (Let's Encrypt's live/ and archive/): both directories are added
        archive = os.path.join(self.tmp, "archive")
        live = os.path.join(self.tmp, "live")
        cert_b, key_b = make_cert(archive)
        os.makedirs(live)
        os.symlink(cert_b, os.path.join(live, "cert.pem"))
        os.symlink(key_b, os.path.join(live, "key.pem"))
        other = Account("106540352242933", secret="b")
        c2 = self.client(rx)
        answer_b = c2.register(other.registration(tls_cert=os.path.join(live, "cert.pem"),
                                                  tls_key=os.path.join(live, "key.pem")))
        self.assertEqual([n["code"] for n in c2.notices], ["restart"])
        self.assertNotEqual(rx.status()["pid"], second_worker)
        # the first account's saved registration is listening again without
        # registering anew: its directory is still in the ruleset
        self.assertEqual(len(rx.status()["listeners"]), 2)
        self.assertEqual(post_webhook(answer["url"], webhook_body(text="after"), secret=acct.secret,
                                      context=context)[0], 200)
        self.assertEqual(post_webhook(answer_b["url"], webhook_body(pnid=other.pnid, text="b"),
                                      secret="b", context=tls_client_context(cert_b))[0], 200)
        log = rx.log()
        self.assertIn(live, log)
        self.assertIn(archive, log)
        # registering the same files again needs no restart
        workers = rx.status()["pid"]
        c2.register(other.registration(tls_cert=os.path.join(live, "cert.pem"),
                                       tls_key=os.path.join(live, "key.pem")))
        self.assertEqual(rx.status()["pid"], workers)

    def test_saved_registration_with_tls_elsewhere_restarts_it_once(self):
        """A registration saved by an unconfined receiver (an older version, or
        WABIZ_RECEIVER_CONFINE=off) with TLS files outside: the confined one
        restarts itself once at start and then serves them."""
        cert, key = make_cert(os.path.join(self.tmp, "tls-saved"))
        acct = Account()
        rx = self.start(env={"WABIZ_RECEIVER_CONFINE": "off"})
        c = self.client(rx)
        port = c.register(acct.registration(tls_cert=cert, tls_key=key))["port"]
        c.close()
        self.assertEqual(rx.stop(), 0)
        os.unlink(rx.log_path)  # the next log alone
        rx = self.start()
        self.require_landlock(rx)
        url = "https://127.0.0.1:%d/webhook" % port

        def restarted():
            try:
                return "restarting (pid" in rx.log() and len(rx.status()["listeners"]) == 1
            except (OSError, ConnectionError, TimeoutError):
                return False  # between the two processes
        wait_until(restarted, what="a restart with the saved TLS directory")
        c = self.client(rx)
        c.subscribe(acct.pnid)
        self.assertEqual(post_webhook(url, webhook_body(text="saved"), secret=acct.secret,
                                      context=tls_client_context(cert))[0], 200)
        self.assertEqual(values_of(acct.open(c.next_event()))[0]["messages"][0]["text"]["body"], "saved")
        self.assertEqual(rx.log().count("restarting: the TLS files"), 1)

    def test_missing_tls_directory_does_not_loop(self):
        rx = self.start()
        self.require_landlock(rx)
        acct = Account()
        c = self.client(rx)
        missing = os.path.join(self.tmp, "nowhere")
        with self.assertRaises(Exception) as err:
            c.register(acct.registration(tls_cert=os.path.join(missing, "cert.pem"),
                                         tls_key=os.path.join(missing, "key.pem")))
        self.assertEqual(getattr(err.exception, "code", None), "tls", err.exception)
        self.assertEqual(rx.log().count("restarting: the TLS files"), 1)


def main():
    suite = unittest.defaultTestLoader.loadTestsFromNames(
        sys.argv[1:] or ["__main__"], module=sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and result.testsRun == len(result.skipped):
        for test, reason in result.skipped:
            print("SKIP %s: %s" % (test.id(), reason))
        sys.exit(SKIP)
    sys.exit(0)


if __name__ == "__main__":
    main()

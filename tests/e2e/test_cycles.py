"""Sign-on / sign-off cycles: run under AddressSanitizer (100 cycles, leak
check at exit) and valgrind memcheck (10 cycles): nothing may leak or touch
freed memory. The count comes from WABIZ_CYCLES. A message is sent in every
cycle so the HTTP client, Graph client and outbox are torn down with state."""

import os

from harness import Receiving, Scenario, has, main, wait_until


class Cycles(Scenario):

    def test_cycles(self):
        count = int(os.environ.get("WABIZ_CYCLES", "10"))
        host = self.start_host()
        host.send_im("491701234567", "before cycling")
        self.sim.wait_for_sent(1)
        host.cycle(count, timeout_ms=60000, timeout=60 + count * 10)
        # still usable after the cycles
        before = len(host.events("signed-on"))
        host.connect()
        wait_until(lambda: len(host.events("signed-on")) > before, timeout=60, what="sign-on")
        host.send_im("491701234567", "after cycling")
        self.sim.wait_for_sent(2)
        host.wait_for({"event": "write", "flags": has("send"), "message": "after cycling"})
        self.assertEqual(host.quit(timeout=120), 0, host.stderr_text()[-4000:])
        gets = [r for r in self.sim.requests() if r["path"].endswith("/" + self.sim.pnid)]
        self.assertGreaterEqual(len(gets), count + 2)


class CyclesReceiving(Receiving):
    """The same with receiving on: each sign-on registers with the receiver and
    each sign-off tears the link down, often in the middle of its handshake."""

    def test_cycles_receiving(self):
        count = int(os.environ.get("WABIZ_CYCLES", "10"))
        host = self.start_receiving_host()
        self.sim.inbound("before cycling", sender="491701234567")
        host.wait_for({"event": "write", "flags": has("recv"), "message": "before cycling"})
        host.cycle(count, timeout_ms=60000, timeout=60 + count * 10)
        before = len(host.events("signed-on"))
        host.connect()
        wait_until(lambda: len(host.events("signed-on")) > before, timeout=60, what="sign-on")
        self.sim.inbound("after cycling", sender="491701234567")
        host.wait_for({"event": "write", "flags": has("recv"), "message": "after cycling"}, timeout=30)
        host.expect_none({"event": "write", "flags": has("recv"), "message": "before cycling"}, 0.5)
        self.assertEqual(host.quit(timeout=120), 0, host.stderr_text()[-4000:])


if __name__ == "__main__":
    main()

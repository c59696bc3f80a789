"""Sending files end to end: Pidgin's Send File (the prpl's send_file) and
/sendfile: the upload the simulator receives (multipart, type by content),
the message that names the uploaded id, progress on the transfer, refusals
before anything is uploaded, a refused upload, and a queued file message
that survives a restart without a second upload."""

import os
import struct
import tempfile

from harness import Scenario, contains, has, main, wait_until

ANNA = "491701234567"


def jpeg(extra=0):
    return bytes.fromhex("ffd8ffe000104a46494600010100000100010000") + b"\x00" * extra + b"\xff\xd9"


def pdf(size=0):
    head = b"%PDF-1.4\n1 0 obj<<>>endobj\n"
    body = b"".join(b"%% filler line %08d\n" % i for i in range(max(0, size - len(head)) // 24 + 1))
    return (head + body)[:max(size, len(head))] + b"\n%%EOF\n"


def ogg_page(packet, flags, seq):
    segs = [255] * (len(packet) // 255) + [len(packet) % 255]
    return (b"OggS" + bytes([0, flags]) + struct.pack("<qIIIB", 0, 1, seq, 0, len(segs)) + bytes(segs)
            + packet)


def opus():
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    return ogg_page(head, 2, 0) + ogg_page(tags, 0, 1)


def bmp():
    return (b"BM" + struct.pack("<IHHI", 58, 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 0, 0, 0, 0) + b"\0\0\0\0")


class Files(Scenario):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="wabiz-files-")
        self.host = self.start_host()

    def file(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def uploads(self):
        return self.sim.uploads()

    def media_posts(self):
        return [r for r in self.sim.requests() if r["path"].endswith("/media")]

    def sent_line(self, text):
        return self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("send"),
                                   "message": contains(text)})

    def test_jpeg_goes_as_an_image_by_id(self):
        path = self.file("holiday.jpg", jpeg())
        self.host.send_file(ANNA, path)
        sent = self.sim.wait_for_sent(1)
        upload = self.uploads()[0]
        self.assertEqual((upload["type"], upload["content_type"], upload["filename"], upload["size"],
                          upload["messaging_product"]),
                         ("image/jpeg", "image/jpeg", "holiday.jpg", len(jpeg()), "whatsapp"))
        request = dict(sent[0]["request"])
        self.assertRegex(request.pop("biz_opaque_callback_data"), r"^wabiz:[0-9]+$")
        self.assertEqual(request, {"messaging_product": "whatsapp", "recipient_type": "individual",
                                   "to": "+" + ANNA, "type": "image", "image": {"id": upload["id"]}})
        self.sent_line("[Image] holiday.jpg, 22 bytes")
        done = self.host.wait_for({"event": "xfer", "what": "progress", "status": "done"})
        self.assertEqual((done["type"], done["who"], done["bytes_sent"], done["size"]),
                         ("send", ANNA, len(jpeg()), len(jpeg())))
        self.host.expect_none({"event": "write", "flags": has("error")}, 0.3)

    def test_pdf_goes_as_a_document_with_its_name_and_progress(self):
        data = pdf(3 * 1000 * 1000)
        # the name says image: the content decides
        path = self.file("Quarterly report.png", data)
        self.host.command(ANNA, '/sendfile "%s" the figures you asked for' % path)
        sent = self.sim.wait_for_sent(1)
        upload = self.uploads()[0]
        self.assertEqual((upload["type"], upload["filename"], upload["size"]),
                         ("application/pdf", "Quarterly report.png", len(data)))
        self.assertEqual(sent[0]["request"]["type"], "document")
        self.assertEqual(sent[0]["request"]["document"], {
            "id": upload["id"], "filename": "Quarterly report.png", "caption": "the figures you asked for"})
        self.sent_line("[Document] Quarterly report.png, %.1f MB" % (len(data) / 1e6))
        done = self.host.wait_for({"event": "xfer", "what": "progress", "status": "done"})
        self.assertEqual(done["bytes_sent"], len(data))
        progress = [e["bytes_sent"] for e in self.host.events({"event": "xfer", "what": "progress"})]
        self.assertEqual(progress, sorted(progress), "progress never goes back")
        self.assertEqual(progress[-1], len(data))
        # curl reads the file in 64 KiB pieces: the transfer moves on in between
        self.assertTrue(any(0 < b < len(data) for b in progress), progress)

    def test_opus_goes_as_a_voice_note(self):
        path = self.file("note.oga", opus())
        self.host.send_file(ANNA, path)
        sent = self.sim.wait_for_sent(1)
        upload = self.uploads()[0]
        self.assertEqual(upload["type"], "audio/ogg; codecs=opus")
        self.assertEqual(sent[0]["request"]["type"], "audio")
        self.assertEqual(sent[0]["request"]["audio"], {"id": upload["id"], "voice": True})
        self.sent_line("[Voice note] note.oga")

    def test_refusals_upload_nothing(self):
        big = self.file("big.jpg", jpeg(5 * 1000 * 1000))
        self.host.send_file(ANNA, big)
        too_big = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error")})
        self.assertIn("Not sent: big.jpg is 5.0 MB", too_big["message"])
        self.assertIn("up to 5.0 MB", too_big["message"])
        self.host.wait_for({"event": "xfer", "what": "cancel_local"})
        path = self.file("scan.pdf", bmp())
        self.host.command(ANNA, "/sendfile %s" % path)
        wrong = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                                    "message": contains("scan.pdf")})
        self.assertIn("image/bmp", wrong["message"])
        self.assertIn("JPEG or PNG", wrong["message"])
        missing = os.path.join(self.dir, "nothing-here.pdf")
        self.host.command(ANNA, "/sendfile %s" % missing)
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                            "message": contains("nothing-here.pdf")})
        self.host.command(ANNA, "/sendfile %s %s" % (self.file("c.jpg", jpeg()), "x" * 1025))
        self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error"),
                            "message": contains("at most 1024 characters")})
        self.assertEqual(self.media_posts(), [])
        self.assertEqual(self.sim.sent(), [])

    def test_refused_upload_is_reported(self):
        self.sim.fault(path="/media", status=400, code=131053, count=1)
        self.host.send_file(ANNA, self.file("a.pdf", pdf()))
        err = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error")})
        self.assertIn("Not sent:", err["message"])
        self.assertIn("131053", err["message"])
        self.host.wait_for({"event": "xfer", "what": "cancel_local"})
        self.host.expect_none({"event": "write", "flags": has("send"), "message": contains("[Document]")}, 0.3)
        self.assertEqual(self.sim.sent(), [])
        # the next one goes
        self.host.send_file(ANNA, self.file("b.pdf", pdf()))
        self.assertEqual(self.sim.wait_for_sent(1)[0]["request"]["document"]["filename"], "b.pdf")

    def test_queued_file_survives_a_restart_without_a_second_upload(self):
        self.host.close()
        self.hosts.remove(self.host)
        user_dir = tempfile.mkdtemp(prefix="wabiz-files-user-")
        host = self.start_host(user_dir=user_dir)
        # Meta's throughput error: provably not taken, the outbox keeps it
        self.sim.fault(path="/messages", status=400, code=130429, count=-1)
        host.send_file(ANNA, self.file("kept.pdf", pdf()))
        host.wait_for({"event": "write", "conv": ANNA, "message": contains("waiting, retrying")})
        host.quit()
        self.hosts.remove(host)
        host.close()
        self.sim.clear_faults()
        host = self.start_host(user_dir=user_dir)
        sent = self.sim.wait_for_sent(1)
        self.assertEqual(len(self.uploads()), 1)
        self.assertEqual(sent[0]["request"]["document"], {"id": self.uploads()[0]["id"], "filename": "kept.pdf"})
        wait_until(lambda: len(self.sim.sent()) == 1 or None, what="one send")
        self.assertEqual(len(self.media_posts()), 1)

    def test_cancelled_upload_sends_nothing(self):
        # the simulator holds the upload; the agent presses Cancel meanwhile
        self.sim.fault(path="/media", delay_ms=3000, count=1)
        self.host.send_file(ANNA, self.file("late.pdf", pdf()))
        self.host.wait_for({"event": "xfer", "what": "progress", "status": "started"})
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 1 or None,
                   what="the upload to be held by the simulator")
        self.assertEqual(self.host.call({"cmd": "xfer_cancel"})["cancelled"], 1)
        self.host.wait_for({"event": "xfer", "what": "cancel_local"})
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 0 or None,
                   what="the held upload to end", timeout=30)
        self.host.expect_none({"event": "write", "flags": has("send"), "message": contains("[Document]")}, 0.5)
        self.assertEqual(self.sim.sent(), [])
        # and the next file goes
        self.host.send_file(ANNA, self.file("next.pdf", pdf()))
        self.assertEqual(self.sim.wait_for_sent(1)[0]["request"]["document"]["filename"], "next.pdf")

    def test_sign_off_during_an_upload_is_told(self):
        self.sim.fault(path="/media", delay_ms=3000, count=1)
        self.host.send_file(ANNA, self.file("slow.pdf", pdf()))
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 1 or None,
                   what="the upload to be held by the simulator")
        self.host.disconnect()
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error")})
        self.assertIn("signed off during the upload", line["message"])
        self.host.wait_for("signed-off")
        self.host.wait_for({"event": "xfer", "what": "cancel_local"})
        wait_until(lambda: self.sim.control("GET", "fault")["paused"] == 0 or None,
                   what="the held upload to end", timeout=30)
        self.assertEqual(self.sim.sent(), [])

    def test_token_refused_at_upload_disconnects(self):
        self.sim.config(expired_tokens=[self.sim.token])
        self.host.send_file(ANNA, self.file("a.pdf", pdf()))
        line = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error")})
        self.assertIn("Not sent:", line["message"])
        ev = self.host.wait_for("disconnect", timeout=30)
        self.assertEqual(ev["reason_name"], "AUTHENTICATION_FAILED")
        self.assertTrue(ev["fatal"])
        self.assertEqual(self.sim.sent(), [])

    def test_large_document_streams_from_disk(self):
        # 40 MB (sparse on disk): the plugin's memory must not grow by the file
        size = 40 * 1000 * 1000
        path = self.file("archive.pdf", pdf())
        with open(path, "r+b") as f:
            f.truncate(size)
        before = self.peak_rss_kb()
        self.host.send_file(ANNA, path)
        sent = self.sim.wait_for_sent(1, timeout=120)
        self.assertEqual(self.uploads()[0]["size"], size)
        self.assertEqual(sent[0]["request"]["document"]["filename"], "archive.pdf")
        grown_mb = (self.peak_rss_kb() - before) / 1000
        self.assertLess(grown_mb, 15, "the host's peak memory grew by %.1f MB for a 40 MB upload" % grown_mb)

    def peak_rss_kb(self):
        with open("/proc/%d/status" % self.host.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        self.fail("no VmHWM")

    def test_pasted_images_go_in_order_with_the_text(self):
        first = self.host.call({"cmd": "imgstore_add", "path": self.file("shelf.jpg", jpeg())})["id"]
        second = self.host.call({"cmd": "imgstore_add", "path": self.file("door.png", bmp())})["id"]
        third = self.host.call({"cmd": "imgstore_add", "path": self.file("sign.jpg", jpeg(10))})["id"]
        self.host.send_im(ANNA, 'Here: <IMG ID="%d"> and <b>the door</b> <img id="%d"><br><img id="%d">'
                          % (first, second, third))
        # the BMP is refused (nothing uploaded for it); the rest goes in order
        refused = self.host.wait_for({"event": "write", "conv": ANNA, "flags": has("error")})
        self.assertIn("door.png", refused["message"])
        self.assertIn("image/bmp", refused["message"])
        sent = self.sim.wait_for_sent(4)
        uploads = self.uploads()
        self.assertEqual([u["filename"] for u in uploads], ["shelf.jpg", "sign.jpg"])
        self.assertEqual([(m["request"]["type"], m["request"].get("text") or m["request"].get("image"))
                          for m in sent],
                         [("text", {"body": "Here:"}), ("image", {"id": uploads[0]["id"]}),
                          ("text", {"body": "and *the door*"}), ("image", {"id": uploads[1]["id"]})])
        self.sent_line("[Image] sign.jpg, 32 bytes")

    def test_notices_take_no_files(self):
        # can_receive_file says no: the core does not even start a transfer
        self.host.send_file("notices", self.file("a.jpg", jpeg()))
        self.host.expect_none({"event": "xfer"}, 0.5)
        # and /sendfile there is refused in words
        self.host.command("notices", "/sendfile %s" % self.file("b.jpg", jpeg()))
        self.host.wait_for({"event": "write", "conv": "notices", "flags": has("error"),
                            "message": contains("only shows notices")})
        self.assertEqual(self.media_posts(), [])


if __name__ == "__main__":
    main()

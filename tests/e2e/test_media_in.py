"""Inbound media: a customer's attachment is recorded with its message,
downloaded from the simulator (lookup, then the signed URL with the token)
beside the inbound queue, kept encrypted, announced with "/save N", saved
decrypted by /save, retried after transient failures (also across a
restart), and given up with a reason when it cannot be had."""

import hashlib
import json
import os
import stat
import threading
import time

from harness import Receiving, contains, has, main, regex, wait_until

ANNA = "491701234567"
PICTURE = b"\xff\xd8\xff\xe0" + b"JFIF-PLAINTEXT-PICTURE-BYTES " * 4000 + b"\xff\xd9"


def rss_kib(pid):
    """The resident set of process pid, in KiB (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            for entry in f:
                if entry.startswith("VmRSS:"):
                    return int(entry.split()[1])
    except OSError:
        pass
    return 0


def line(who, text):
    return {"event": "write", "conv": who, "message": contains(text)}


class MediaIn(Receiving):

    def media_dir(self):
        return os.path.join(self.user_dir, "wabiz", "store", "media")

    def start(self, **options):
        opts = {"media_retry_delay_ms": 200}
        opts.update(options)
        return self.start_receiving_host(options=opts)

    def save(self, host, number, path):
        answer = host.call({"cmd": "command", "conv": ANNA, "text": "save %d %s" % (number, path)})
        self.assertEqual(answer["status"], "ok")
        return host.wait_for(line(ANNA, "Saved to "))

    def test_image_line_and_save_writes_identical_bytes(self):
        host = self.start()
        media = self.sim.media(PICTURE, mime_type="image/jpeg")
        self.sim.inbound_media("image", media, caption="my <b>receipt</b>", sender=ANNA, name="Anna")
        # the message at once, then the attachment's lines
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"), "message": contains("receipt")})
        host.wait_for(line(ANNA, "Image 1: downloading"))
        done = host.wait_for(line(ANNA, "Type /save 1 to save it"))
        self.assertIn("Image 1 (116 KB)", done["message"])
        listed = self.sim.media_list()[media["id"]]
        self.assertEqual((listed["lookups"], listed["downloads"]), (1, 1))
        # at rest: encrypted, private, named by the store
        files = []
        for root, dirs, names in os.walk(self.media_dir()):
            for d in dirs:
                self.assertEqual(stat.S_IMODE(os.stat(os.path.join(root, d)).st_mode), 0o700)
            files += [os.path.join(root, n) for n in names]
        self.assertEqual(len(files), 1, files)
        self.assertEqual(stat.S_IMODE(os.stat(files[0]).st_mode), 0o600)
        with open(files[0], "rb") as f:
            self.assertNotIn(b"PLAINTEXT-PICTURE", f.read())
        # nowhere under the user dir (store, receiver journal, logs) in plaintext
        for root, _, names in os.walk(self.user_dir):
            for name in names:
                path = os.path.join(root, name)
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue  # the receiver's socket
                with open(path, "rb") as f:
                    self.assertNotIn(b"PLAINTEXT-PICTURE", f.read(), path)
        # /save into a folder: the bytes as sent; a second save never overwrites
        out = os.path.join(self.user_dir, "out")
        os.mkdir(out)
        first = self.save(host, 1, out)
        second = self.save(host, 1, out)
        saved = sorted(os.listdir(out))
        self.assertEqual(saved, ["whatsapp-image-1 (1).jpg", "whatsapp-image-1.jpg"], (first, second))
        for name in saved:
            with open(os.path.join(out, name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).digest(), hashlib.sha256(PICTURE).digest())
        answer = host.call({"cmd": "command", "conv": ANNA, "text": "save 7"})
        self.assertEqual(answer["status"], "ok")
        host.wait_for(line(ANNA, "There is no attachment 7"))

    def test_pidgin_shows_the_picture_inline(self):
        # the host as Pidgin (UI id "gtk-gaim"), through the test hook
        host = self.start_receiving_host(env={"WABIZ_TEST_UI": "gtk-gaim"})
        media = self.sim.media(PICTURE, mime_type="image/jpeg")
        self.sim.inbound_media("image", media, caption="<img id=\"1\">", sender=ANNA)
        # the caption is text, even when it looks like markup
        caption = host.wait_for({"event": "write", "conv": ANNA, "flags": has("recv"),
                                 "message": contains("&lt;img id=")})
        self.assertNotIn("<img", caption["message"])
        picture = host.wait_for({"event": "write", "conv": ANNA, "flags": has("images"),
                                 "message": regex(r'^<img id="[1-9][0-9]*">$')})
        self.assertIn("recv", picture["flags"])
        host.wait_for(line(ANNA, "Image 1 (116 KB) received (shown above; /save 1 saves it)"))
        # a sticker (WebP) gets the line
        sticker = self.sim.media(b"RIFF....WEBPVP8 sticker", mime_type="image/webp")
        self.sim.inbound_media("sticker", sticker, sender=ANNA)
        host.wait_for(line(ANNA, "Sticker 2 (23 bytes) received. Type /save 2"))

    def test_pidgin_shows_a_sticker_when_its_loader_reads_webp(self):
        host = self.start_receiving_host(env={"WABIZ_TEST_UI": "gtk-gaim", "WABIZ_TEST_PIXBUF_FORMATS": "png,webp"})
        sticker = self.sim.media(b"RIFF....WEBPVP8 sticker", mime_type="image/webp")
        self.sim.inbound_media("sticker", sticker, sender=ANNA)
        host.wait_for({"event": "write", "conv": ANNA, "flags": has("images"), "message": regex(r'^<img id="[1-9]')})
        host.wait_for(line(ANNA, "Sticker 1 (23 bytes) received (shown above; /save 1 saves it)"))

    def test_voice_note_is_marked(self):
        host = self.start()
        note = self.sim.media(b"OggS voice", mime_type="audio/ogg; codecs=opus")
        self.sim.inbound_media("audio", note, voice=True, sender=ANNA)
        host.wait_for(line(ANNA, "Voice note 1 (10 bytes) received. Type /save 1"))
        out = os.path.join(self.user_dir, "voice")
        os.mkdir(out)
        self.save(host, 1, out)
        self.assertEqual(os.listdir(out), ["whatsapp-audio-1.ogg"])

    def test_document_keeps_a_safe_name(self):
        host = self.start()
        media = self.sim.media(b"%PDF-1.4 invoice", mime_type="application/pdf")
        self.sim.inbound_media("document", media, filename="../../etc/in\x1bvoice.pdf", sender=ANNA)
        done = host.wait_for(line(ANNA, "Type /save 1"))
        self.assertIn("Document 1 (invoice.pdf, 16 bytes)", done["message"])
        out = os.path.join(self.user_dir, "docs")
        os.mkdir(out)
        self.save(host, 1, out)
        self.assertEqual(os.listdir(out), ["invoice.pdf"])

    def test_document_offered_as_a_transfer(self):
        host = self.start()
        content = b"%PDF-1.4 " + b"transfer body " * 20000
        media = self.sim.media(content, mime_type="application/pdf")
        self.sim.inbound_media("document", media, filename="offer.pdf", sender=ANNA)
        host.wait_for(line(ANNA, "Document 1 (offer.pdf, 280 KB) received"))
        # libpurple asks whether to accept, then where to write it
        ask = host.wait_for({"event": "request", "kind": "action"})
        self.assertIn("offer.pdf", json.dumps(ask))
        host.answer(ask["id"], action=0)
        where = host.wait_for({"event": "request", "kind": "file"})
        target = os.path.join(self.user_dir, "received-offer.pdf")
        host.answer(where["id"], file=target)

        def complete():
            try:
                with open(target, "rb") as f:
                    return f.read() == content
            except OSError:
                return False
        wait_until(complete, what="the transferred file")
        # a picture (inline by default) is not offered; with the option it is
        self.sim.inbound_media("image", self.sim.media(PICTURE), sender=ANNA)
        host.wait_for(line(ANNA, "Image 2 (116 KB) received"))
        host.expect_none({"event": "request", "kind": "action"}, 1.0)

    def test_pictures_as_transfers_by_option(self):
        host = self.start(media_images="transfer")
        self.sim.inbound_media("image", self.sim.media(PICTURE), sender=ANNA)
        host.wait_for(line(ANNA, "Image 1 (116 KB) received. Type /save 1"))
        ask = host.wait_for({"event": "request", "kind": "action"})
        host.answer(ask["id"], action=1)  # declined: nothing is written, the attachment stays
        host.expect_none({"event": "request", "kind": "file"}, 0.5)
        out = os.path.join(self.user_dir, "later")
        os.mkdir(out)
        self.save(host, 1, out)
        with open(os.path.join(out, "whatsapp-image-1.jpg"), "rb") as f:
            self.assertEqual(f.read(), PICTURE)

    def test_backlog_is_listed_not_offered(self):
        host = self.start()
        media = self.sim.media(b"%PDF old", mime_type="application/pdf")
        self.sim.inbound_media("document", media, filename="old.pdf", sender=ANNA,
                               timestamp=int(time.time()) - 3600)
        host.wait_for(line(ANNA, "Document 1 (old.pdf, 8 bytes) received. Type /save 1"))
        host.expect_none({"event": "request", "kind": "action"}, 1.0)

    def test_download_failing_twice_then_succeeding(self):
        host = self.start()
        media = self.sim.media(PICTURE, mime_type="image/jpeg", download_fail_next=1, lookup_fail_next=1)
        self.sim.inbound_media("image", media, sender=ANNA)
        host.wait_for(line(ANNA, "Type /save 1"), timeout=60)
        host.expect_none(line(ANNA, "could not be downloaded"), 0.5)
        listed = self.sim.media_list()[media["id"]]
        self.assertEqual((listed["lookups"], listed["downloads"]), (3, 2))

    def test_gone_media_is_not_downloaded(self):
        host = self.start()
        media = self.sim.media(PICTURE, gone=True)
        self.sim.inbound_media("image", media, sender=ANNA)
        failed = host.wait_for(line(ANNA, "could not be downloaded"))
        self.assertIn("404", failed["message"])
        host.expect_none(line(ANNA, "Type /save"), 1.0)
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 1)
        host.call({"cmd": "command", "conv": ANNA, "text": "save 1"})
        host.wait_for(line(ANNA, "Attachment 1 could not be downloaded"))

    def test_unknown_media_id_is_not_found(self):
        host = self.start()
        fake = {"id": "987654321", "mime_type": "image/jpeg", "sha256": "x"}
        self.sim.inbound_media("image", fake, sender=ANNA)
        failed = host.wait_for(line(ANNA, "could not be downloaded"))
        self.assertIn("media lookup failed", failed["message"])

    def test_token_never_goes_to_another_host(self):
        host = self.start()
        media = self.sim.media(PICTURE, foreign_url=True)
        self.sim.inbound_media("image", media, sender=ANNA)
        failed = host.wait_for(line(ANNA, "could not be downloaded"))
        self.assertIn("localhost", failed["message"])
        self.assertIn("the access token is not sent there", failed["message"])
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 0)

    def test_digest_mismatch_is_tried_once_more_then_given_up(self):
        host = self.start()
        media = self.sim.media(PICTURE)
        media["sha256"] = media["sha256"][::-1]  # the webhook's digest is not the file's
        self.sim.inbound_media("image", media, sender=ANNA)
        failed = host.wait_for(line(ANNA, "could not be downloaded"))
        self.assertIn("SHA-256", failed["message"])
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 2)
        for _, _, names in os.walk(self.media_dir()):
            self.assertEqual(names, [])

    def test_over_the_size_limit(self):
        host = self.start(media_max_mb=1)
        media = self.sim.media(size=2 * 1024 * 1024, mime_type="video/mp4")
        self.sim.inbound_media("video", media, sender=ANNA)
        failed = host.wait_for(line(ANNA, "could not be downloaded"))
        self.assertIn("limit of 1 MB", failed["message"])
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 0)

    def test_stalled_download_is_cut_and_retried(self):
        # a stall is as long as an API request may take (http_timeout: 2 s here)
        host = self.start(http_timeout=2)
        media = self.sim.media(size=8 * 65536, seed=9, mime_type="video/mp4", chunk_delay_ms=10000)
        self.sim.inbound_media("video", media, sender=ANNA)
        # the first 64 KiB come at once, then nothing for 10 s
        wait_until(lambda: self.sim.media_list()[media["id"]]["downloads"] == 1, what="the download to start")
        self.sim.media(id=media["id"], chunk_delay_ms=0)
        host.wait_for(line(ANNA, "Video 1 (524 KB) received"), timeout=60)
        # cut after about 4 s and fetched again, rather than waiting out the stall
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 2)

    def test_pending_download_resumes_after_a_restart(self):
        host = self.start(media_retry_delay_ms=60000)
        media = self.sim.media(PICTURE, download_fail_next=1)
        self.sim.inbound_media("image", media, sender=ANNA)
        wait_until(lambda: self.sim.media_list()[media["id"]]["downloads"] == 1, what="the first download")
        host.expect_none(line(ANNA, "Type /save"), 1.0)
        host.quit()
        self.hosts.remove(host)
        host.close()
        # the retry was due in a minute; a new session tries at once
        again = self.start()
        again.wait_for(line(ANNA, "Type /save 1"))
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 2)

    def test_erased_while_downloading_leaves_no_file(self):
        host = self.start()
        # about 3 s of download: 48 pieces of 64 KiB, 60 ms apart
        media = self.sim.media(size=48 * 65536, mime_type="video/mp4", chunk_delay_ms=60)
        self.sim.inbound_media("video", media, sender=ANNA)
        host.wait_for(line(ANNA, "Video 1: downloading"))
        wait_until(lambda: self.sim.media_list()[media["id"]]["downloads"] == 1, what="the download to start")
        host.call({"cmd": "command", "conv": ANNA, "text": "erase"})
        request = host.wait_for({"event": "request", "kind": "action"})
        host.answer(request["id"], action=0)
        host.wait_for(line(ANNA, "was erased"))
        # the erasure removed the partial file; the download then ends
        # (about 3 s) and is neither retried nor leaves a file behind
        host.expect_none(line(ANNA, "received"), 6.0)
        self.assertEqual([n for _, _, ns in os.walk(self.media_dir()) for n in ns], [])
        self.assertEqual(self.sim.media_list()[media["id"]]["lookups"], 1)

    def test_100_mib_document_memory_stays_flat(self):
        """A document at the 100 MiB limit: streamed through the encrypted
        file, so the host's resident memory grows by far less than the file;
        /save gives the same bytes."""
        size = 100 * 1024 * 1024
        host = self.start()
        media = self.sim.media(size=size, seed=11, mime_type="application/pdf")
        pid = host.proc.pid
        baseline = rss_kib(pid)
        peak = [baseline]
        done = threading.Event()

        def sample():
            while not done.is_set():
                value = rss_kib(pid)
                if value:
                    peak[0] = max(peak[0], value)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            self.sim.inbound_media("document", media, filename="catalogue.pdf", sender=ANNA)
            host.wait_for(line(ANNA, "Document 1: downloading 104.9 MB..."), timeout=60)
            # long work shows progress: a line at each quarter, in order
            for percent in (25, 50, 75):
                host.wait_for(line(ANNA, "Document 1: %d%% downloaded (" % percent), timeout=120)
            host.wait_for(line(ANNA, "Document 1 (catalogue.pdf, 104.9 MB) received"), timeout=240)
        finally:
            done.set()
            sampler.join()
        grown_mib = (peak[0] - baseline) / 1024
        if os.environ.get("WABIZ_SANITIZED") != "1" and os.environ.get("WABIZ_VALGRIND") != "1":
            self.assertLess(grown_mib, 32, "resident memory grew by %.1f MiB" % grown_mib)
        stored = [os.path.join(r, n) for r, _, ns in os.walk(self.media_dir()) for n in ns]
        self.assertEqual(len(stored), 1)
        self.assertGreater(os.path.getsize(stored[0]), size)
        out = os.path.join(self.user_dir, "big")
        os.mkdir(out)
        self.save(host, 1, out)
        digest = hashlib.sha256()
        with open(os.path.join(out, "catalogue.pdf"), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        self.assertEqual(digest.hexdigest(), media["sha256_hex"])

    def test_export_writes_the_attachments_beside_the_json(self):
        host = self.start()
        media = self.sim.media(PICTURE, mime_type="image/jpeg")
        self.sim.inbound_media("image", media, caption="receipt", sender=ANNA)
        host.wait_for(line(ANNA, "Type /save 1"))
        export = os.path.join(self.user_dir, "anna.json")
        host.call({"cmd": "command", "conv": ANNA, "text": "export " + export})
        host.wait_for(line(ANNA, "1 attachment exported to " + export + ".attachments"))
        with open(export, encoding="utf-8") as f:
            data = json.load(f)
        self.assertEqual([(a["number"], a["type"], a["state"], a["size"], a["sha256"]) for a in data["attachments"]],
                         [(1, "image", "done", len(PICTURE), media["sha256"])])
        folder = export + ".attachments"
        self.assertEqual(stat.S_IMODE(os.stat(folder).st_mode), 0o700)
        self.assertEqual(os.listdir(folder), ["1-whatsapp-image-1.jpg"])
        saved = os.path.join(folder, "1-whatsapp-image-1.jpg")
        self.assertEqual(stat.S_IMODE(os.stat(saved).st_mode), 0o600)
        with open(saved, "rb") as f:
            self.assertEqual(f.read(), PICTURE)

    def test_quit_mid_download_resumes_at_the_next_sign_on(self):
        host = self.start()
        media = self.sim.media(size=40 * 65536, seed=5, mime_type="video/mp4", chunk_delay_ms=100)
        self.sim.inbound_media("video", media, sender=ANNA)
        wait_until(lambda: self.sim.media_list()[media["id"]]["downloads"] == 1, what="the download to start")
        host.quit()
        self.hosts.remove(host)
        host.close()
        # nothing half-written stays behind
        self.assertEqual([n for _, _, ns in os.walk(self.media_dir()) for n in ns], [])
        self.sim.media(id=media["id"], chunk_delay_ms=0)
        again = self.start()
        again.wait_for(line(ANNA, "Video 1 (2.6 MB) received"))
        self.assertEqual(self.sim.media_list()[media["id"]]["downloads"], 2)
        out = os.path.join(self.user_dir, "video")
        os.mkdir(out)
        self.save(again, 1, out)
        with open(os.path.join(out, "whatsapp-video-1.mp4"), "rb") as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), media["sha256_hex"])

    def test_erase_deletes_the_files(self):
        host = self.start()
        media = self.sim.media(PICTURE)
        self.sim.inbound_media("image", media, sender=ANNA)
        host.wait_for(line(ANNA, "Type /save 1"))
        names = [n for _, _, ns in os.walk(self.media_dir()) for n in ns]
        self.assertEqual(len(names), 1)
        host.call({"cmd": "command", "conv": ANNA, "text": "erase"})
        request = host.wait_for({"event": "request", "kind": "action"})
        host.answer(request["id"], action=0)
        host.wait_for(line(ANNA, "was erased"))
        names = [n for _, _, ns in os.walk(self.media_dir()) for n in ns]
        self.assertEqual(names, [])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""pidgin-shot: a by-hand check of what Pidgin shows, as a screenshot.

Starts the simulator and a real Pidgin (under Xvfb, no window manager) with
the built plugin, lets a demo customer write and send a picture, puts the
conversation window beside the buddy list and saves the screen as a PNG.

    tools/pidgin-shot.py [--build build] [--picture FILE.png] [--out shot.png]

Needs pidgin, xvfb, xdotool and imagemagick (apt-get install pidgin xvfb
xdotool imagemagick); not part of the test suite. The README's screenshot
of a picture shown inline was made with it."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(SRC, "tools"))
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))

import demo  # noqa: E402
from simctl import DEFAULT_APP_SECRET, Sim, wait_until  # noqa: E402

DISPLAY = ":97"
# each conversation in a window of its own, so it can be found by its title
PREFS = """<?xml version='1.0' encoding='UTF-8' ?>
<pref version='1' name='/'>
 <pref name='pidgin'>
  <pref name='conversations'>
   <pref name='placement' type='string' value='new'/>
  </pref>
 </pref>
</pref>
"""


def xdotool(*args):
    env = dict(os.environ, DISPLAY=DISPLAY)
    return subprocess.run(["xdotool"] + list(args), env=env, capture_output=True, text=True).stdout.split()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"))
    ap.add_argument("--picture", help="a PNG the customer sends (default: one drawn here)")
    ap.add_argument("--out", default="pidgin-shot.png")
    args = ap.parse_args()
    for tool in ("pidgin", "Xvfb", "xdotool", "import", "convert"):
        if shutil.which(tool) is None:
            sys.exit("%s is not installed (apt-get install pidgin xvfb xdotool imagemagick)" % tool)
    work = tempfile.mkdtemp(prefix="wabiz-pidgin-shot-")
    conf = os.path.join(work, "conf")
    receiver = os.path.join(args.build, "plugin", "receiver", "wabiz-receiver")
    picture = args.picture
    if picture is None:
        picture = os.path.join(work, "jacket.png")
        subprocess.run(["convert", "-size", "160x120", "xc:#2a5db0", "-fill", "white", "-draw",
                        "rectangle 50,20 110,100", "-fill", "#2a5db0", "-draw", "rectangle 60,30 100,60",
                        picture], check=True)
    sim = Sim.start(os.path.join(args.build, "tests", "sim", "wabiz-sim"), stderr=subprocess.DEVNULL)
    demo.write_config(conf, sim, os.path.join(args.build, "plugin", "purple", "libwabiz.so"))
    accounts = os.path.join(conf, "accounts.xml")
    with open(accounts, encoding="utf-8") as f:
        text = f.read().replace("<settings ui='gnt-purple'>", "<settings ui='gtk-gaim'>")
    with open(accounts, "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(conf, "prefs.xml"), "w", encoding="utf-8") as f:
        f.write(PREFS)
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1100x700x24"], stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=DISPLAY, WABIZ_RECEIVER=receiver, LANG="C.UTF-8")
    pidgin = subprocess.Popen(["pidgin", "-c", conf], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        url = wait_until(lambda: demo.receiver_url(receiver, conf), timeout=60, what="Pidgin to sign in")
        sim.webhook(url=url, app_secret=DEFAULT_APP_SECRET)
        sim.inbound("Hello! Do you have this jacket in blue?", sender=demo.CUSTOMER, name="Anna")
        with open(picture, "rb") as f:
            media = sim.media(f.read(), mime_type="image/png")
        sim.inbound_media("image", media, caption="this one, size M", sender=demo.CUSTOMER, name="Anna")
        window = wait_until(lambda: xdotool("search", "--onlyvisible", "--name", "Anna"), timeout=30,
                            what="the conversation window")[0]
        for other in xdotool("search", "--onlyvisible", "--name", "recovery code"):
            xdotool("windowmove", other, "3000", "3000")
        xdotool("windowmove", window, "260", "0")
        xdotool("windowsize", window, "830", "690")
        xdotool("windowraise", window)
        time.sleep(5)  # the download, and Pidgin drawing it
        subprocess.run(["import", "-display", DISPLAY, "-window", "root", args.out], check=True)
        print("saved", args.out)
    finally:
        pidgin.terminate()
        try:
            pidgin.wait(5)
        except subprocess.TimeoutExpired:
            pidgin.kill()
        subprocess.run([receiver, "--dir", os.path.join(conf, "wabiz", "receiver"), "--stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        xvfb.terminate()
        sim.stop()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()

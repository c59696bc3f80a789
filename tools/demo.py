#!/usr/bin/env python3
"""demo.py: Finch signed in to the bundled Cloud API simulator.

Started by `./run demo`. It starts wabiz-sim on a free loopback port, writes a
throw-away Finch configuration (one business account, one customer buddy, the
plugin from the build tree), and opens a tmux session "wabiz-demo": Finch on
the left, on the right the simulated customer's phone: what it received, and
a prompt where you type as the customer (sent to the business through the
simulator's signed webhooks, wabiz-receiver and the plugin).

  --build DIR        meson build directory (default: build)
  --no-attach        set everything up and print how to attach, then wait
  --customer-view U  (internal) the right-hand pane: simulator U, with
  --conf DIR         (internal) Finch's config dir, to find the receiver
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SRC, "tests", "sim"))

from simctl import DEFAULT_APP_SECRET, Sim  # noqa: E402

SESSION = "wabiz-demo"
CUSTOMER = "491701234567"
CUSTOMER_ALIAS = "Anna (demo customer)"
VERIFY_TOKEN = "demo-verify-token"


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("'", "&apos;").replace('"', "&quot;"))


def write_config(conf, sim, plugin):
    os.makedirs(os.path.join(conf, "plugins"), mode=0o700)
    os.symlink(plugin, os.path.join(conf, "plugins", os.path.basename(plugin)))
    account = xml_escape(sim.pnid)
    with open(os.path.join(conf, "accounts.xml"), "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(f"""\
            <?xml version='1.0' encoding='UTF-8' ?>
            <account version='1.0'>
             <account>
              <protocol>prpl-wabiz</protocol>
              <name>{account}</name>
              <password>{xml_escape(sim.token)}</password>
              <alias>{xml_escape(sim.verified_name)}</alias>
              <settings>
               <setting name='api_base_url' type='string'>{xml_escape(sim.base_url)}/v25.0</setting>
               <setting name='default_country_code' type='string'>49</setting>
               <setting name='waba_id' type='string'>{xml_escape(sim.waba_id)}</setting>
               <setting name='app_secret' type='string'>{xml_escape(DEFAULT_APP_SECRET)}</setting>
               <setting name='verify_token' type='string'>{VERIFY_TOKEN}</setting>
               <setting name='webhook_port' type='int'>0</setting>
               <setting name='receiver_keep_running' type='bool'>0</setting>
              </settings>
              <settings ui='gnt-purple'>
               <setting name='auto-login' type='bool'>1</setting>
              </settings>
             </account>
            </account>
            """))
    with open(os.path.join(conf, "blist.xml"), "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(f"""\
            <?xml version='1.0' encoding='UTF-8' ?>
            <purple version='1.0'>
             <blist>
              <group name='WhatsApp Business'>
               <contact>
                <buddy account='{account}' proto='prpl-wabiz'>
                 <name>{CUSTOMER}</name>
                 <alias>{xml_escape(CUSTOMER_ALIAS)}</alias>
                 <setting name='show_offline' type='bool'>1</setting>
                </buddy>
               </contact>
              </group>
             </blist>
            </purple>
            """))
    os.chmod(conf, 0o700)


def receiver_url(receiver, conf):
    """The webhook URL the plugin registered, from `wabiz-receiver --status`."""
    rx_dir = os.path.join(conf, "wabiz", "receiver")
    out = subprocess.run([receiver, "--dir", rx_dir, "--status"], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    for account in json.loads(out.stdout).get("accounts", []):
        if account.get("url"):
            return account["url"]
    return None


def show_received(url, opener):
    since = 0
    while True:
        try:
            with opener.open(f"{url}/_sim/sent?since={since}", timeout=5) as r:
                messages = json.load(r)["messages"]
        except OSError:
            print("(simulator gone)")
            return
        for m in messages:
            since = max(since, m["seq"])
            req = m["request"]
            body = (req.get("text") or {}).get("body", "")
            stamp = time.strftime("%H:%M:%S", time.localtime(m.get("time", time.time())))
            print(f"\n[{stamp}] business -> +{m.get('wa_id') or m.get('to')}:")
            for line in body.splitlines() or [""]:
                print("    " + line)
            print("  " + json.dumps(req, ensure_ascii=False)[:300])
            print("customer> ", end="", flush=True)
        time.sleep(0.5)


def customer_view(url, conf, receiver):
    """The right-hand pane: the customer's phone. Shows every message the
    simulator accepted (with the JSON Meta received); what you type is sent
    to the business as the customer's message."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    print("The customer's phone (Cloud API simulator)\n")
    print("Waiting for Finch to sign in and start the webhook receiver...", flush=True)
    webhook = None
    for _ in range(600):
        webhook = receiver_url(receiver, conf)
        if webhook:
            break
        time.sleep(0.5)
    if webhook is None:
        print("The receiver did not start; the customer can only receive.")
    else:
        settings = json.dumps({"url": webhook, "app_secret": DEFAULT_APP_SECRET}).encode()
        request = urllib.request.Request(f"{url}/_sim/webhook", data=settings, method="POST",
                                         headers={"Content-Type": "application/json"})
        opener.open(request, timeout=5).read()
        print(f"Webhooks go to {webhook}.")
    print("Type a line and press Enter to write to the business as Anna.\n")
    threading.Thread(target=show_received, args=(url, opener), daemon=True).start()
    while True:
        print("customer> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            return
        text = line.strip()
        if not text or webhook is None:
            continue
        body = json.dumps({"from": CUSTOMER, "name": "Anna", "text": text}).encode()
        request = urllib.request.Request(f"{url}/_sim/inbound", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            opener.open(request, timeout=5).read()
        except OSError as e:
            print(f"(not sent: {e})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--no-attach", action="store_true")
    ap.add_argument("--customer-view")
    ap.add_argument("--conf")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    receiver = os.path.join(build, "plugin", "receiver", "wabiz-receiver")
    if args.customer_view:
        customer_view(args.customer_view, args.conf, receiver)
        return 0

    sim_bin = os.path.join(build, "tests", "sim", "wabiz-sim")
    plugin = os.path.join(build, "plugin", "purple", "libwabiz.so")
    for path in (sim_bin, plugin, receiver):
        if not os.path.exists(path):
            print(f"missing {path}: build first (./run demo does)", file=sys.stderr)
            return 1
    for tool in ("finch", "tmux"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (./run demo installs it)", file=sys.stderr)
            return 1

    conf = tempfile.mkdtemp(prefix="wabiz-demo-")
    log = open(os.path.join(conf, "simulator.log"), "w")
    sim = Sim.start(sim_bin, stderr=log)
    try:
        write_config(conf, sim, plugin)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], stderr=subprocess.DEVNULL)
        env_finch = f"TERM=xterm-256color LANG=C.UTF-8 WABIZ_RECEIVER={receiver} finch -c {conf}"
        subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "200", "-y", "50", env_finch],
                       check=True)
        subprocess.run(["tmux", "split-window", "-h", "-t", SESSION, "-l", "70",
                        f"python3 {os.path.abspath(__file__)} --build {build} --customer-view {sim.base_url} "
                        f"--conf {conf}"], check=True)
        subprocess.run(["tmux", "select-pane", "-t", f"{SESSION}:0.0"], check=True)
        print(textwrap.dedent(f"""\
            purple-wabiz demo
              simulator : {sim.base_url} (log: {conf}/simulator.log)
              Finch     : config in {conf}, account {sim.pnid} ({sim.verified_name})
              In Finch, select "{CUSTOMER_ALIAS}" in the buddy list, press Enter, type, press Enter.
              As the customer: type in the right-hand pane (Ctrl-b o switches panes); it arrives in Finch.
              Leave: quit Finch (Alt-q) or press Ctrl-b d, then: tmux kill-session -t {SESSION}
            """))
        if args.no_attach or not sys.stdin.isatty():
            print(f"attach with: tmux attach -t {SESSION}   (Ctrl-C here stops the simulator)")
            try:
                while subprocess.run(["tmux", "has-session", "-t", SESSION],
                                     stderr=subprocess.DEVNULL).returncode == 0:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        else:
            subprocess.run(["tmux", "attach", "-t", SESSION])
            while subprocess.run(["tmux", "has-session", "-t", SESSION],
                                 stderr=subprocess.DEVNULL).returncode == 0:
                time.sleep(0.5)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], stderr=subprocess.DEVNULL)
        subprocess.run([receiver, "--dir", os.path.join(conf, "wabiz", "receiver"), "--stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sim.stop()
        log.close()
        shutil.rmtree(conf, ignore_errors=True)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    sys.exit(main())

"""bitlbeectl: run BitlBee (bitlbee-libpurple) for tests, with the plugin under test.

Standard library only. BitlBee runs libpurple only in ForkDaemon (or inetd)
mode; this module starts it as a forking daemon that stays in the foreground
(-n), listening on 127.0.0.1, with a configuration and directories of its own
under one base directory:

    base/bitlbee.conf       the configuration (see write_config)
    base/plugins/purple/    PluginDir/purple: a symlink to the plugin under test
    base/config/            ConfigDir: BitlBee's per-nick files; libpurple's
                            user dir becomes config/purple/<nick>
    base/bitlbee.log        BitlBee's stdout and stderr, and those of every
                            per-client process (the plugin's debug output)

The daemon is given DaemonPort 0, so the kernel picks a free port when
BitlBee binds; the port is then read from /proc: the listening TCP socket
among the daemon's file descriptors. No port is chosen before BitlBee binds
it, so there is no race with other tests.

    bee = BitlBee.start(base, plugin="/path/libwabiz.so", env={...})
    ... connect an IRC client to 127.0.0.1:bee.port ...
    bee.stop()

By hand (tests/bitlbee/README.md): ``python3 bitlbeectl.py BASE PLUGIN``
starts the same set-up, prints the port and keeps BitlBee up until Ctrl-C.
"""

import argparse
import os
import signal
import subprocess
import time

__all__ = ["BitlBee", "BitlBeeError", "write_config"]

TIMEOUT_FACTOR = float(os.environ.get("HOSTCTL_TIMEOUT_FACTOR", "1"))


class BitlBeeError(AssertionError):
    """BitlBee did not start, or did not stop."""


def write_config(path, base, port=0):
    """Writes a bitlbee.conf for a forking daemon on 127.0.0.1:port whose
    directories are under base. No User setting: the daemon keeps the current
    user (root in CI) instead of switching to the packaged 'bitlbee' user."""
    text = "\n".join([
        "[settings]",
        "RunMode = ForkDaemon",
        "DaemonInterface = 127.0.0.1",
        "DaemonPort = %d" % port,
        "AuthMode = Open",
        "ConfigDir = " + os.path.join(base, "config"),
        "PluginDir = " + os.path.join(base, "plugins"),
        "PidFile = " + os.path.join(base, "bitlbee.pid"),
        "MotdFile = /dev/null",
        # a test talks all the time; no PING rounds to get in the way
        "PingInterval = 0",
        "PingTimeOut = 0",
        "",
    ])
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def _listening_ports(pid):
    """Ports of the listening IPv4/IPv6 TCP sockets among pid's file
    descriptors."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:["):-1])
    except OSError:
        return []
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    # local_address is HEXADDR:HEXPORT; state 0A is LISTEN
                    if fields[3] == "0A" and fields[9] in inodes:
                        ports.append(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def _children(pid):
    """Pids of the processes whose parent is pid (BitlBee's per-client
    processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="ascii", errors="replace") as stat:
                # pid (comm) state ppid ...: comm may hold spaces, so split after ")"
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry))
    return found


class BitlBee:
    """One BitlBee forking daemon and its base directory."""

    def __init__(self, base, proc, port, log_path):
        self.base = base
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self._children_seen = set()

    @classmethod
    def start(cls, base, plugin, env=None, binary="bitlbee", timeout=20.0):
        """Writes the configuration under base, links plugin (a built .so)
        into PluginDir/purple, starts the daemon with env added to this
        process's environment, and waits until it listens."""
        plugins = os.path.join(base, "plugins", "purple")
        os.makedirs(plugins, exist_ok=True)
        os.makedirs(os.path.join(base, "config"), mode=0o700, exist_ok=True)
        link = os.path.join(plugins, os.path.basename(plugin))
        if os.path.islink(link):
            os.unlink(link)  # a base dir used before (by hand)
        os.symlink(os.path.abspath(plugin), link)
        conf = os.path.join(base, "bitlbee.conf")
        write_config(conf, base)
        log_path = os.path.join(base, "bitlbee.log")
        full_env = dict(os.environ)
        full_env.update(env or {})
        with open(log_path, "ab") as log:
            # -n: no fork into the background (we own the process); -v: its
            # log lines on stderr; the mode and address come from the file
            proc = subprocess.Popen([binary, "-c", conf, "-n", "-v"], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                    cwd=base)
        bee = cls(base, proc, None, log_path)
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while True:
            if proc.poll() is not None:
                raise BitlBeeError("bitlbee exited with %s before it listened:\n%s"
                                   % (proc.returncode, bee.log_text()))
            ports = _listening_ports(proc.pid)
            if ports:
                bee.port = ports[0]
                return bee
            if time.monotonic() >= deadline:
                bee.stop()
                raise BitlBeeError("bitlbee did not listen within %.0f s:\n%s"
                                   % (timeout * TIMEOUT_FACTOR, bee.log_text()))
            time.sleep(0.05)

    def user_dir(self, nick):
        """libpurple's user dir for the IRC user nick (BitlBee sets it when
        that user's first account is loaded)."""
        return os.path.join(self.base, "config", "purple", nick)

    def clients(self):
        """Pids of the per-client processes running now."""
        pids = _children(self.proc.pid) if self.proc.poll() is None else []
        self._children_seen.update(pids)
        return pids

    def wait_clients_gone(self, timeout=20.0):
        """Waits until no per-client process is left (after the IRC clients
        quit); True if so."""
        deadline = time.monotonic() + timeout * TIMEOUT_FACTOR
        while self.clients():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def log_text(self):
        """Everything BitlBee and its client processes wrote so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as log:
                return log.read()
        except OSError:
            return ""

    def stop(self, timeout=20.0):
        """Stops the client processes still running (SIGTERM, then SIGKILL)
        and the daemon. Returns the daemon's exit status."""
        limit = timeout * TIMEOUT_FACTOR
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.clients()
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            if not pids or self.wait_clients_gone(limit / 2):
                break
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(limit)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Start BitlBee with the tests' set-up under BASE and keep it up until Ctrl-C. "
                    "The environment is passed on to the plugin (WABIZ_RECEIVER, WABIZ_TEST_HOOKS, ...).")
    parser.add_argument("base", help="directory for the configuration, plugin link, ConfigDir and log")
    parser.add_argument("plugin", help="the plugin to load (a built libwabiz.so)")
    parser.add_argument("--binary", default="bitlbee", help="the bitlbee executable")
    args = parser.parse_args(argv)
    os.makedirs(args.base, exist_ok=True)
    bee = BitlBee.start(os.path.abspath(args.base), args.plugin, binary=args.binary)
    print("bitlbee listens on 127.0.0.1:%d; log: %s" % (bee.port, bee.log_path))
    print("connect with:  irssi -c 127.0.0.1 -p %d -n agent" % bee.port, flush=True)
    try:
        bee.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        bee.stop()


if __name__ == "__main__":
    main()

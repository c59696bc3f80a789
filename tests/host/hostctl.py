"""hostctl: drive wabiz-host, the headless libpurple test host, from Python.

Stdlib only.  End-to-end tests use it like this::

    from hostctl import Host, has

    with Host() as host:
        host.start(plugin_dir=..., account="+15550001111", password="token",
                   options={"base_url": sim.url})
        host.wait_for("signed-on")
        host.send_im("15551234567", "hello <b>there</b>")
        host.wait_for({"event": "write", "flags": has("send")})
        assert host.quit() == 0

Events
    Every line the host prints is parsed into a dict and kept, in arrival
    order, for the life of the Host.  Each event is either *unconsumed* or
    *consumed*.

    * wait_for(match) returns the FIRST unconsumed event that matches (the
      oldest one, possibly received long before the call), marks it consumed
      and returns it; it waits for new events only if none matches yet.
      Events that do not match stay unconsumed, so waiting for B and then for
      A works even if A arrived first.  Waiting twice for the same match
      returns two different events.
    * events(match) lists every event seen so far that matches, consumed or
      not; it never waits and never consumes.
    * expect_none(match, within_s) fails if an unconsumed matching event is
      already there or arrives within within_s seconds; it consumes nothing.

Matches
    A match is an event name ("signed-on"), a dict or a callable.  A dict
    matches an event that has every key with an equal value; a value may
    itself be a callable (called with the event's value), a dict (matched
    the same way, recursively), or anything compared with ==.  Helpers:
    has(*items) for lists, contains(text) and regex(pattern) for strings.

Commands
    send(cmd) writes one command; call(cmd) also waits for its answer ("ok",
    "error", "pong"), matched by a "tag" the client adds, and raises
    CommandError on "error".  Helpers such as send_im(), command(), answer()
    wrap call().

Failures raise HostError (an AssertionError) whose message holds what was
awaited, the last events, the exit status and the tail of the host's
stderr, so a failing test shows why.
"""

import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

__all__ = ["Host", "HostError", "CommandError", "has", "contains", "regex", "matches"]

DEFAULT_TIMEOUT = float(os.environ.get("HOSTCTL_TIMEOUT", "20"))
# Multiplies every timeout (for valgrind or sanitizer runs).
TIMEOUT_FACTOR = float(os.environ.get("HOSTCTL_TIMEOUT_FACTOR", "1"))


class HostError(AssertionError):
    """The host did not do what the test expected (or died)."""


class CommandError(HostError):
    """A command was answered with {"event": "error"}; .event holds it."""

    def __init__(self, message, event):
        super().__init__(message)
        self.event = event


# --- matching ---------------------------------------------------------------

def has(*items):
    """Matches a list that contains every one of items."""
    def check(value):
        return isinstance(value, list) and all(item in value for item in items)
    check.__name__ = "has%r" % (items,)
    return check


def contains(text):
    """Matches a string that contains text."""
    def check(value):
        return isinstance(value, str) and text in value
    check.__name__ = "contains(%r)" % text
    return check


def regex(pattern):
    """Matches a string in which re.search(pattern) finds something."""
    compiled = re.compile(pattern)

    def check(value):
        return isinstance(value, str) and compiled.search(value) is not None
    check.__name__ = "regex(%r)" % pattern
    return check


def _subset(expected, actual):
    if not isinstance(actual, dict):
        return False
    for key, want in expected.items():
        if key not in actual:
            return False
        got = actual[key]
        if callable(want):
            if not want(got):
                return False
        elif isinstance(want, dict):
            if not _subset(want, got):
                return False
        elif want != got:
            return False
    return True


def matches(event, match):
    """True if event (a dict) matches match (name, dict or callable)."""
    if match is None:
        return True
    if callable(match):
        return bool(match(event))
    if isinstance(match, str):
        return event.get("event") == match
    if isinstance(match, dict):
        return _subset(match, event)
    raise TypeError("a match is an event name, a dict or a callable, not %r" % (match,))


def _describe(match):
    if callable(match) and not isinstance(match, dict):
        return getattr(match, "__name__", repr(match))
    if isinstance(match, dict):
        return "{%s}" % ", ".join("%r: %s" % (k, _describe(v) if callable(v) else repr(v))
                                  for k, v in match.items())
    return repr(match)


# --- the host -----------------------------------------------------------------

class Host:
    """One wabiz-host process and everything it printed."""

    def __init__(self):
        self.proc = None
        self.user_dir = None
        self.args = None
        self._own_user_dir = False
        self._events = []          # every event, in arrival order
        self._consumed = []        # parallel to _events
        self._first_unconsumed = 0
        self._stderr = []
        self._stdout_closed = False
        self._cond = threading.Condition()
        self._threads = []
        self._tags = itertools.count(1)
        self._stdin_lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------

    def start(self, binary=None, plugin_dir=None, user_dir=None, account="tester",
              password=None, options=None, reconnect_delay_ms=None, env=None,
              protocol=None, no_enable=False, debug=False, extra_args=(), wrapper=(),
              wait_ready=True, timeout=None):
        """Starts the host and (by default) waits for its "ready" event.

        binary: the wabiz-host executable (default: $WABIZ_HOST).
        plugin_dir: passed as --plugin-dir (the directory of the built plugin).
        user_dir: libpurple's user dir; default a new temporary directory that
            close() removes.  Pass the same dir to a second Host to test a
            restart.
        options: {key: value} protocol options; values are str, int or bool.
        env: extra environment variables (added to this process's).
        protocol: --protocol (default in the host: prpl-wabiz).
        wrapper: a command prefix, e.g. ["valgrind", "--error-exitcode=99"].
        Returns self.
        """
        if self.proc is not None:
            raise HostError("this Host was started already")
        binary = binary or os.environ.get("WABIZ_HOST")
        if not binary:
            raise HostError("no host binary: pass binary= or set WABIZ_HOST")
        if user_dir is None:
            user_dir = tempfile.mkdtemp(prefix="wabiz-host-")
            self._own_user_dir = True
        self.user_dir = user_dir

        args = list(wrapper) + [binary, "--user-dir", user_dir, "--account", account]
        if plugin_dir is not None:
            args += ["--plugin-dir", plugin_dir]
        if protocol is not None:
            args += ["--protocol", protocol]
        if password is not None:
            args += ["--password", password]
        for key, value in (options or {}).items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            args += ["--option", "%s=%s" % (key, value)]
        if reconnect_delay_ms is not None:
            args += ["--reconnect-delay-ms", str(int(reconnect_delay_ms))]
        if no_enable:
            args.append("--no-enable")
        if debug:
            args.append("--debug")
        args += list(extra_args)
        self.args = args

        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)
        for target, name in ((self._read_stdout, "stdout"), (self._read_stderr, "stderr")):
            thread = threading.Thread(target=target, name="hostctl-" + name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if wait_ready:
            self.wait_for("ready", timeout=timeout)
        return self

    def _read_stdout(self):
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                event = json.loads(text)
                if not isinstance(event, dict) or "event" not in event:
                    raise ValueError("not an event")
            except ValueError:
                event = {"event": "_invalid_line", "line": text}
            event["_t"] = time.monotonic()
            with self._cond:
                self._events.append(event)
                self._consumed.append(False)
                self._cond.notify_all()
        with self._cond:
            self._stdout_closed = True
            self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self._cond:
                self._stderr.append(raw.decode("utf-8", "replace"))

    @property
    def running(self):
        """True while the host process has not exited."""
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=None):
        """Waits for the process to exit; returns its exit code."""
        timeout = self._timeout(timeout)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HostError(self._report("the host did not exit within %ss" % timeout))
        for thread in self._threads:
            thread.join(timeout=timeout)
        return code

    def quit(self, timeout=None):
        """Sends {"cmd":"quit"} and returns the host's exit code."""
        if self.running:
            try:
                self.send({"cmd": "quit"})
            except HostError:
                pass
        return self.wait_exit(timeout)

    def close_stdin(self):
        """Closes the host's stdin (EOF makes the host quit)."""
        with self._stdin_lock:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def kill(self):
        """Kills the host (SIGKILL) if it still runs."""
        if self.running:
            self.proc.kill()
            self.proc.wait()

    def close(self):
        """Stops the host (quit, then kill) and removes a temporary user dir."""
        if self.proc is not None:
            if self.running:
                try:
                    self.quit(timeout=10 * TIMEOUT_FACTOR)
                except HostError:
                    self.kill()
            for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        if self._own_user_dir and self.user_dir:
            shutil.rmtree(self.user_dir, ignore_errors=True)
            self._own_user_dir = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # --- events -----------------------------------------------------------

    @staticmethod
    def _timeout(timeout):
        return (DEFAULT_TIMEOUT if timeout is None else timeout) * TIMEOUT_FACTOR

    def wait_for(self, match, timeout=None):
        """Returns the first unconsumed event matching match, marking it
        consumed; waits up to timeout seconds (default 20) for it to arrive.
        Raises HostError on timeout, or as soon as the host has exited
        without printing a matching event."""
        limit = self._timeout(timeout)
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                for i in range(self._first_unconsumed, len(self._events)):
                    if not self._consumed[i] and matches(self._events[i], match):
                        self._consumed[i] = True
                        while (self._first_unconsumed < len(self._events)
                               and self._consumed[self._first_unconsumed]):
                            self._first_unconsumed += 1
                        return self._events[i]
                if self._stdout_closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
        why = "host exited" if self._stdout_closed else "timed out after %ss" % limit
        raise HostError(self._report("waiting for %s: %s" % (_describe(match), why)))

    def events(self, match=None):
        """Every event seen so far that matches (consumed or not), oldest
        first.  Never waits, never consumes."""
        with self._cond:
            return [e for e in self._events if matches(e, match)]

    def events_since(self, start, match=None):
        """The events from index START on that match, and the index to
        start from next time: a long run looks only at what is new, and
        holds the reader (which a host writing events waits for) briefly."""
        with self._cond:
            end = len(self._events)
            return [e for e in self._events[start:end] if matches(e, match)], end

    def count_since(self, start, match=None):
        """How many events from index START on match, and the index to
        start from next time."""
        events, end = self.events_since(start, match)
        return len(events), end

    def unconsumed(self, match=None):
        """The unconsumed events that match, oldest first (not consumed)."""
        with self._cond:
            return [e for e, used in zip(self._events, self._consumed)
                    if not used and matches(e, match)]

    def expect_none(self, match, within_s):
        """Fails if an unconsumed event matching match is there already or
        arrives within within_s seconds (scaled by HOSTCTL_TIMEOUT_FACTOR).
        Consumes nothing."""
        deadline = time.monotonic() + within_s * TIMEOUT_FACTOR
        with self._cond:
            while True:
                for i in range(self._first_unconsumed, len(self._events)):
                    if not self._consumed[i] and matches(self._events[i], match):
                        raise HostError(self._report("unexpected event %r (for %s)"
                                                     % (self._events[i], _describe(match))))
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stdout_closed:
                    return
                self._cond.wait(remaining)

    def consume_all(self, match=None):
        """Marks every event seen so far that matches (default: all) as
        consumed, so later waits see only newer events; returns them.  Use it
        as a barrier, e.g. after cycle() before waiting for a new
        "signed-on"."""
        with self._cond:
            taken = []
            for i in range(self._first_unconsumed, len(self._events)):
                if not self._consumed[i] and matches(self._events[i], match):
                    self._consumed[i] = True
                    taken.append(self._events[i])
            while (self._first_unconsumed < len(self._events)
                   and self._consumed[self._first_unconsumed]):
                self._first_unconsumed += 1
            return taken

    def invalid_lines(self):
        """Lines on the host's stdout that were not JSON events."""
        return [e["line"] for e in self.events("_invalid_line")]

    def stderr_text(self):
        """Everything the host wrote to stderr so far."""
        with self._cond:
            return "".join(self._stderr)

    def _report(self, what, events=30, stderr_lines=80):
        with self._cond:
            tail = list(zip(self._events, self._consumed))[-events:]
            err = "".join(self._stderr).splitlines()[-stderr_lines:]
        code = self.proc.poll() if self.proc is not None else None
        lines = ["hostctl: " + what,
                 "command: %s" % (" ".join(self.args or [])),
                 "exit status: %s" % ("running" if code is None else code),
                 "last events (* = consumed):"]
        for event, used in tail:
            shown = {k: v for k, v in event.items() if k != "_t"}
            lines.append("  %s %s" % ("*" if used else " ", json.dumps(shown)))
        lines.append("stderr (tail):")
        lines += ["  " + line for line in err]
        return "\n".join(lines)

    # --- commands -------------------------------------------------------------

    def send(self, cmd):
        """Writes one command (a dict) to the host; does not wait."""
        if self.proc is None:
            raise HostError("the host was not started")
        data = (json.dumps(cmd) + "\n").encode("utf-8")
        with self._stdin_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise HostError(self._report("cannot send %r: %s" % (cmd, exc)))

    def send_raw(self, line):
        """Writes one raw line (a newline is added); for testing the host's
        handling of bad input."""
        with self._stdin_lock:
            try:
                self.proc.stdin.write(line.encode("utf-8") + b"\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise HostError(self._report("cannot send %r: %s" % (line, exc)))

    def call(self, cmd, timeout=None, expect_error=False):
        """Sends cmd with a fresh "tag" and waits for its answer.

        Returns the answer event ("ok", or "pong" for ping).  An "error"
        answer raises CommandError, unless expect_error is true: then the
        error event is returned and an "ok" raises HostError."""
        cmd = dict(cmd)
        tag = "t%d" % next(self._tags)
        cmd["tag"] = tag
        self.send(cmd)
        answer = self.wait_for(lambda e: e.get("tag") == tag and
                               e.get("event") in ("ok", "error", "pong"), timeout)
        if answer["event"] == "error" and not expect_error:
            raise CommandError(self._report("command %r failed: %s"
                                            % (cmd, answer.get("message"))), answer)
        if expect_error and answer["event"] != "error":
            raise HostError(self._report("command %r did not fail: %r" % (cmd, answer)))
        return answer

    def gap_meter(self, action="read", timeout=None):
        """The main-loop gap meter: "start", "reset", "read" or "stop";
        returns the answer (max_gap_us, ticks, running)."""
        return self.call({"cmd": "gap_meter", "action": action}, timeout)

    def ping(self, id=None, timeout=None):
        """Round trip; returns the pong event (its "id" echoes id)."""
        return self.call({"cmd": "ping", "id": id}, timeout)

    def send_im(self, to, text, timeout=None):
        """Types text (HTML) into the IM conversation with to and sends it."""
        return self.call({"cmd": "send", "to": to, "text": text}, timeout)

    def focus(self, conv=None, timeout=None):
        """The agent looks at IM conversation conv (None: at no conversation),
        as when a Pidgin or Finch window gains focus."""
        return self.call({"cmd": "focus", "conv": conv} if conv is not None else {"cmd": "focus"}, timeout)

    def typing(self, to, state="typing", timeout=None):
        """The agent types in the IM with to; the answer's "again" is the
        prpl's type-again interval (seconds)."""
        return self.call({"cmd": "typing", "to": to, "state": state}, timeout)
    def chat_send(self, conv, text, timeout=None):
        """Types text (HTML) into the open chat conv and sends it."""
        return self.call({"cmd": "chat_send", "conv": conv, "text": text}, timeout)
    def send_file(self, to, path, timeout=None):
        """The prpl's send_file for ``path`` to ``to`` (Pidgin's Send File,
        drag and drop, BitlBee's DCC); "xfer" events follow."""
        return self.call({"cmd": "send_file", "to": to, "path": path}, timeout=timeout)

    def command(self, conv, text, timeout=None, account=None):
        """Runs a /command in conversation conv (of ``account``, a user name;
        default the first account); the answer has "status" (ok, failed,
        not-found, wrong-args, wrong-prpl, wrong-type) and "error"."""
        cmd = {"cmd": "command", "conv": conv, "text": text}
        if account is not None:
            cmd["account"] = account
        return self.call(cmd, timeout)

    def add_account(self, username, password=None, options=None, enable=True, timeout=None):
        """Adds (or reuses) another account of the host's protocol and enables
        it; other commands name it with "account"."""
        cmd = {"cmd": "add_account", "username": username, "options": options or {},
               "enable": enable}
        if password is not None:
            cmd["password"] = password
        return self.call(cmd, timeout)

    def answer(self, request_id, action=None, fields=None, value=None, choice=None,
               file=None, timeout=None, expect_error=False):
        """Answers pending request request_id (see README: action 0 is OK,
        1 is Cancel, except for action requests where it indexes the
        actions)."""
        cmd = {"cmd": "answer", "id": request_id}
        for key, val in (("action", action), ("fields", fields), ("value", value),
                         ("choice", choice), ("file", file)):
            if val is not None:
                cmd[key] = val
        return self.call(cmd, timeout, expect_error=expect_error)

    def enable(self):
        return self.call({"cmd": "enable"})

    def disable(self):
        return self.call({"cmd": "disable"})

    def connect(self):
        return self.call({"cmd": "connect"})

    def disconnect(self):
        return self.call({"cmd": "disconnect"})

    def cycle(self, count, timeout_ms=20000, timeout=None):
        """count times connect, wait for signed-on, disconnect; returns the
        final ok (raises CommandError if a cycle failed).  The account is
        left disconnected, and the cycles' events ("connecting",
        "signed-on", "cycle", ...) stay unconsumed: call consume_all()
        before waiting for the next "signed-on"."""
        if timeout is None:
            timeout = count * timeout_ms / 1000.0 + DEFAULT_TIMEOUT
        return self.call({"cmd": "cycle", "count": count, "timeout_ms": timeout_ms}, timeout)

    def set_status(self, status_id, message=None):
        cmd = {"cmd": "status", "id": status_id}
        if message is not None:
            cmd["message"] = message
        return self.call(cmd)

    def blist(self):
        """Every buddy on the list, as "buddy" events (not consumed)."""
        answer = self.call({"cmd": "blist"})
        count = answer["count"]
        with self._cond:
            end = next(i for i, e in enumerate(self._events) if e is answer)
            return [e for e in self._events[end - count:end]] if count else []

    def convs(self):
        """The open conversations: [{"conv", "conv_type", "title", "logging"}]."""
        return self.call({"cmd": "convs"})["convs"]

    def close_conv(self, conv):
        return self.call({"cmd": "close_conv", "conv": conv})

    def get_info(self, who):
        return self.call({"cmd": "get_info", "who": who})

    def set_option(self, key, value):
        return self.call({"cmd": "set_option", "key": key, "value": value})

    def add_buddy(self, who, alias=None, group=None):
        cmd = {"cmd": "add_buddy", "who": who}
        if alias is not None:
            cmd["alias"] = alias
        if group is not None:
            cmd["group"] = group
        return self.call(cmd)

    def remove_buddy(self, who):
        return self.call({"cmd": "remove_buddy", "who": who})

    def close_notify(self, notify_id):
        return self.call({"cmd": "close_notify", "id": notify_id})

"""test_install.py: `meson install` puts the plugin where libpurple loads
plugins, the icons where Pidgin looks for protocol icons, the receiver where
the plugin starts it from (WABIZ_LIBEXECDIR) and its systemd user unit.

Usage: test_install.py BUILD_DIR PLUGIN_DIR PIXMAPS_DIR LIBEXEC_DIR UNIT_DIR
"""
import json
import os
import subprocess
import sys

build, plugin_dir, pixmaps, libexec, unit_dir = sys.argv[1:6]
out = subprocess.run(["meson", "introspect", build, "--installed"], check=True,
                     capture_output=True, text=True).stdout
installed = set(json.loads(out).values())
want = [os.path.join(plugin_dir, "libwabiz.so")]
want += [os.path.join(pixmaps, size, "wabiz.png") for size in ("16", "22", "48")]
want.append(os.path.join(pixmaps, "scalable", "wabiz.svg"))
want.append(os.path.join(libexec, "wabiz-receiver"))
want.append(os.path.join(unit_dir, "wabiz-receiver.service"))
missing = [w for w in want if w not in installed]
if missing:
    print("not installed where expected:", missing)
    print("installed:", sorted(installed))
    sys.exit(1)
for size in ("16", "22", "48"):
    with open(os.path.join(os.path.dirname(__file__), "..", "icons", size, "wabiz.png"), "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", size
    w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert (w, h) == (int(size), int(size)), (size, w, h)
with open(os.path.join(build, "plugin", "receiver", "wabiz-receiver.service")) as f:
    unit = f.read()
assert "ExecStart=" + os.path.join(libexec, "wabiz-receiver") + " --dir %h/.purple/wabiz/receiver" in unit, unit
with open(os.path.join(build, "wabiz-config.h")) as f:
    assert '#define WABIZ_LIBEXECDIR "%s"' % libexec in f.read()
print("ok:", ", ".join(want))

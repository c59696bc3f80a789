"""test_install.py: `meson install` puts the plugin where libpurple loads
plugins and the icons where Pidgin looks for protocol icons.

Usage: test_install.py BUILD_DIR PLUGIN_DIR PIXMAPS_DIR
"""
import json
import os
import subprocess
import sys

build, plugin_dir, pixmaps = sys.argv[1:4]
out = subprocess.run(["meson", "introspect", build, "--installed"], check=True,
                     capture_output=True, text=True).stdout
installed = set(json.loads(out).values())
want = [os.path.join(plugin_dir, "libwabiz.so")]
want += [os.path.join(pixmaps, size, "wabiz.png") for size in ("16", "22", "48")]
want.append(os.path.join(pixmaps, "scalable", "wabiz.svg"))
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
print("ok:", ", ".join(want))

"""Start-up check for the system libraries Qt needs, run before anything imports QtGui.

On a fresh desktop Qt aborts with "could not load the Qt platform plugin xcb" (or QtGui fails
to import) and does not say which package is missing. :func:`check` tries to load each library
(``ctypes.CDLL``, which honours LD_LIBRARY_PATH like the real loader) and returns one message
with the install line for Debian/Ubuntu (apt-get) and Fedora (dnf). No Qt import here.

The lists are the NEEDED entries of PySide6 6.11's libQt6Gui/Widgets/DBus (always needed) and of
``plugins/platforms/libqxcb.so`` + ``lib/libQt6XcbQpa.so.6`` (needed only when the platform
plugin will be xcb, not offscreen or wayland); libraries every system has (libc, libstdc++,
libz) are left out.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Sequence

# soname -> (Debian/Ubuntu package, Fedora package)
CORE_LIBS: dict[str, tuple[str, str]] = {
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libX11.so.6": ("libx11-6", "libX11"),
}
XCB_LIBS: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
}


def _can_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def platform_plugin(argv: Sequence[str] = (), environ: os._Environ | dict | None = None) -> str:
    """The platform plugin Qt will try first: ``-platform X`` / ``QT_QPA_PLATFORM`` (first of a
    ``;`` list), else ``wayland`` in a Wayland session (Qt 6 prefers it there), else ``xcb``."""
    env = os.environ if environ is None else environ
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg in ("-platform", "--platform"):
            return argv[i + 1].split(";")[0].split(":")[0].strip().lower()
    value = (env.get("QT_QPA_PLATFORM") or "").strip()
    if value:
        return value.split(";")[0].split(":")[0].strip().lower()
    if env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return "wayland"
    return "xcb"


def missing_libraries(platform: str, loader: Callable[[str], bool] | None = None) -> list[str]:
    """Sonames that cannot be loaded (xcb's only when ``platform`` is xcb)."""
    loader = loader or _can_load
    wanted: Iterable[str] = list(CORE_LIBS) + (list(XCB_LIBS) if platform == "xcb" else [])
    return [so for so in wanted if not loader(so)]


def install_message(missing: Sequence[str]) -> str:
    table = {**CORE_LIBS, **XCB_LIBS}
    debian = sorted({table[so][0] for so in missing})
    fedora = sorted({table[so][1] for so in missing})
    return ("segloop: Qt cannot start: these system libraries are missing: "
            f"{', '.join(missing)}.\n"
            "Install them, then start SegLoop again:\n"
            f"  Debian / Ubuntu:  sudo apt-get install -y {' '.join(debian)}\n"
            f"  Fedora:           sudo dnf install -y {' '.join(fedora)}")


def check(argv: Sequence[str] = (), environ: dict | None = None,
          loader: Callable[[str], bool] | None = None) -> str | None:
    """None if Qt can start; otherwise the message to print."""
    if not sys.platform.startswith("linux"):
        return None
    missing = missing_libraries(platform_plugin(argv, environ), loader)
    return install_message(missing) if missing else None

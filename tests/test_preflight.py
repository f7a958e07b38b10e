"""The start-up check for missing system libraries (app/preflight.py), with a faked loader."""

from __future__ import annotations

import sys

import pytest

from app import preflight

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


def _loader_without(*missing: str):
    return lambda soname: soname not in missing


def test_missing_xcb_cursor_gives_one_install_line_per_distro():
    env = {"DISPLAY": ":0"}
    msg = preflight.check([], env, _loader_without("libxcb-cursor.so.0", "libxcb-icccm.so.4"))
    assert msg is not None
    assert "libxcb-cursor.so.0, libxcb-icccm.so.4" in msg
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4\n" in msg
    assert "sudo dnf install -y xcb-util-cursor xcb-util-wm" in msg


def test_xcb_libraries_are_not_required_offscreen_or_on_wayland():
    loader = _loader_without("libxcb-cursor.so.0")
    assert preflight.check([], {"QT_QPA_PLATFORM": "offscreen"}, loader) is None
    wayland = {"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}
    assert preflight.check([], wayland, loader) is None
    assert preflight.check([], {"QT_QPA_PLATFORM": "xcb"}, loader) is not None
    # QtGui's own libraries are needed whatever the platform
    msg = preflight.check([], {"QT_QPA_PLATFORM": "offscreen"}, _loader_without("libEGL.so.1"))
    assert msg is not None and "apt-get install -y libegl1" in msg


def test_platform_choice():
    assert preflight.platform_plugin([], {}) == "xcb"
    assert preflight.platform_plugin([], {"QT_QPA_PLATFORM": "wayland;xcb"}) == "wayland"
    assert preflight.platform_plugin(["-platform", "offscreen"], {}) == "offscreen"


def test_real_loader_finds_what_this_machine_has():
    # the test suite itself runs Qt here, so QtGui's libraries must load
    assert preflight.missing_libraries("offscreen") == []


def test_launcher_exits_non_zero_with_the_message(monkeypatch, capsys):
    from app import main as app_main

    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(preflight, "_can_load", lambda so: so != "libxcb-keysyms.so.1")
    assert app_main.main([]) == 3
    err = capsys.readouterr().err
    assert "libxcb-keysyms.so.1" in err
    assert "apt-get install -y libxcb-keysyms1" in err
    assert "dnf install -y xcb-util-keysyms" in err

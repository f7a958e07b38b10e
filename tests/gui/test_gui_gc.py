"""The app collects cyclic garbage on the GUI thread only (app/gui_gc.py)."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject


FREED_IN: list[str] = []


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.qobject = QObject()  # GUI-thread affinity, as the app's relays and sessions have

    def __del__(self) -> None:
        FREED_IN.append(threading.current_thread().name)


def test_cycles_are_collected_on_the_gui_thread_not_in_workers(qapp, qtbot):
    from app import gui_gc

    collector = gui_gc.install(qapp)
    assert gui_gc.install(qapp) is collector
    assert not gc.isenabled()
    freed_in = FREED_IN
    freed_in.clear()

    def make_garbage() -> None:
        for _ in range(200):
            c = _Cycle()
            del c
        # a worker allocating a lot must not trigger a collection here
        junk = [[i] for i in range(200_000)]
        del junk

    worker = threading.Thread(target=make_garbage, name="worker")
    worker.start()
    worker.join()
    assert freed_in == []  # nothing collected in the worker
    qtbot.waitUntil(lambda: len(freed_in) == 200, timeout=5000)
    assert set(freed_in) == {threading.main_thread().name}
    gui_gc.uninstall(qapp)
    assert gc.isenabled()

"""GUI event-loop latency probe: a QTimer at ``interval_ms`` records the gap between ticks.

A gap much longer than the interval means the GUI thread was blocked (or starved of the GIL)
for that long. ``stats()`` → ticks, max and p99 gap (ms), gaps over 50 ms.
"""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


class LatencyProbe(QObject):
    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.gaps_ms: list[float] = []
        self._last: float | None = None

    def start(self) -> None:
        self.gaps_ms, self._last = [], time.perf_counter()
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    @property
    def ticks(self) -> int:
        return len(self.gaps_ms)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.gaps_ms.append((now - self._last) * 1000.0)
        self._last = now

    def stats(self) -> dict[str, float]:
        g = np.asarray(self.gaps_ms or [0.0])
        return {"ticks": float(len(self.gaps_ms)), "max_ms": float(g.max()),
                "p99_ms": float(np.percentile(g, 99)), "median_ms": float(np.median(g)),
                "over_50ms": float((g > 50).sum())}

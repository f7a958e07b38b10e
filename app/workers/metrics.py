"""IoU / Boundary IoU of a corrected mask against the model's prediction, off the GUI thread.

``MetricsJobs.schedule(stem)`` loads the saved mask and prediction, scores them with
segcore.metrics.score_mask (the one scoring rule: binary foreground IoU / Boundary IoU,
multi-class mIoU / mean BIoU, void 255 never scored), stores them with ``project.set_image_metrics`` and emits ``updated(stem)``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal


class _Relay(QObject):
    updated = Signal(str)


def compute_metrics(project: Any, stem: str) -> bool:
    from segcore import metrics

    mask = project.load_mask(stem)
    prediction = project.load_prediction(stem)
    if mask is None or prediction is None or mask.shape != prediction.shape:
        return False
    score = metrics.score_mask(mask, prediction, project.num_classes)
    project.set_image_metrics(stem, score.iou, score.biou)
    return True


class _Job(QRunnable):
    def __init__(self, relay: _Relay, project: Any, stem: str) -> None:
        super().__init__()
        self.relay, self.project, self.stem = relay, project, stem

    def run(self) -> None:
        try:
            if compute_metrics(self.project, self.stem):
                self.relay.updated.emit(self.stem)
        except Exception:  # noqa: BLE001 - metrics are informative only
            pass


class MetricsJobs(QObject):
    updated = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        # A Qt child, not a Python-owned orphan: when this object is destroyed, Qt calls the
        # relay's (virtual) disconnectNotify; a parentless relay's Python wrapper could already be
        # gone by then, and PySide crashed looking up an override on it (seen in two core dumps:
        # Sbk_GetPyOverride on a '_Relay' with refcount 0 inside QObject::~QObject).
        self._relay = _Relay(self)
        self._relay.updated.connect(self.updated)

    def schedule(self, project: Any, stem: str) -> None:
        if project is not None and not project.read_only:
            self.pool.start(_Job(self._relay, project, stem))

    def wait(self, msecs: int = 10000) -> bool:
        return self.pool.waitForDone(msecs)

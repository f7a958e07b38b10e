"""Compare two model versions image by image: the window, the worker, and the diff on the canvas.

The Training dock's Compare… (``TrainingPanel.compareRequested(a, b)``) calls :meth:`open`: a
:class:`CompareDialog` appears at once and fills when the worker has scored every held-out and
done image (progress and Cancel while it works). Double-clicking a row shows that image on the
main canvas (``PanelHost.show_stem``) and, once the worker has both versions' predictions of it,
the canvas' diff layer switches to "where the two predictions differ" (the dialog's legend
names the colours; the status bar repeats it). The diff lasts until another image is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from .compare_view import DIFF_COLORS, CompareDialog
from .compare_worker import CompareWorker

if TYPE_CHECKING:
    from ..host import PanelHost


class CompareController(QObject):
    def __init__(self, window: PanelHost, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.window = window
        self.worker = CompareWorker(self)
        self.dialog: CompareDialog | None = None
        self.root: Any = None
        self.pair: tuple[int, int] | None = None
        self._pending_pair: str | None = None   # a stem to predict once the worker is free
        self._diff: tuple[str, Any] | None = None  # (stem, codes) ready for the canvas
        self.worker.progress.connect(self._progress)
        self.worker.compared.connect(self._compared)
        self.worker.pairReady.connect(self._pair_ready)
        self.worker.failed.connect(self._failed)
        self.worker.runningChanged.connect(self._running_changed)
        window.canvas.maskReplaced.connect(self._image_shown)

    def open(self, a: int, b: int) -> bool:
        """Compare versions ``a`` (earlier) and ``b`` of the open project in a new window."""
        s = self.window.session
        if s is None:
            return False
        if self.worker.is_running():
            self.worker.cancel()
            self.worker.shutdown()
        self.close()
        self.root, self.pair = s.project.root, (a, b)
        dialog = CompareDialog(a, b, s.project.num_classes > 2, self.window)  # type: ignore[arg-type]
        dialog.openRequested.connect(self.show_image)
        dialog.cancelRequested.connect(self.worker.cancel)
        dialog.finished.connect(lambda _r: self.worker.cancel())  # closed: stop scoring
        self.dialog = dialog
        dialog.show()
        return self.worker.compare(self.root, a, b)

    def close(self) -> None:
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None

    def _progress(self, done: int, total: int) -> None:
        if self.dialog is not None:
            self.dialog.set_progress(done, total)

    def _compared(self, changes: list, cancelled: bool) -> None:
        if self.dialog is not None:
            self.dialog.set_changes(changes, cancelled)

    def _failed(self, message: str) -> None:
        if self.dialog is not None:
            self.dialog.set_error(message)
        self.window.show_message(f"⚠ {message}", 15000)

    # -- one image on the canvas -----------------------------------------------------------
    def show_image(self, stem: str) -> None:
        """Show ``stem`` on the canvas with both versions' predictions as the diff layer."""
        if self.pair is None or self.window.session is None:
            return
        self._diff = None
        self.window.show_stem(stem)
        self.window.editor.set_layer_visible("diff", True)
        a, b = self.pair
        self.window.show_message(f"Predicting {stem} with v{a} and v{b}…", 5000)
        if not self.worker.pair(self.root, a, b, stem):
            self._pending_pair = stem  # started when the worker is free

    def _running_changed(self, running: bool) -> None:
        if not running and self._pending_pair is not None and self.pair is not None:
            stem, self._pending_pair = self._pending_pair, None
            self.worker.pair(self.root, *self.pair, stem)

    def _pair_ready(self, stem: str, codes: Any) -> None:
        self._diff = (stem, codes)
        self._apply()

    def _image_shown(self, stem: str) -> None:
        if self._diff is not None and self._diff[0] != stem:
            self._diff = None  # another image: its diff is gone with it
        self._apply()

    def _apply(self) -> None:
        canvas = self.window.canvas
        if self._diff is None or self.pair is None or canvas.current_stem() != self._diff[0]:
            return
        stem, codes = self._diff
        if canvas.set_version_diff(codes, DIFF_COLORS):
            a, b = self.pair
            legend = self.dialog.legend_text() if self.dialog is not None else ""
            differ = int((codes != 0).sum())
            self.window.show_message(f"{stem}: v{a} vs v{b} differ on {differ} pixels — {legend}", 20000)

    def shutdown(self) -> None:
        self.worker.shutdown()
        self.close()

"""Next / previous / next-unlabelled image, in the order the image list shows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .main_window import MainWindow

DONE_STATUSES = ("done", "skipped", "error")


class Navigator:
    def __init__(self, window: MainWindow) -> None:
        self.window = window

    def _order(self) -> list[str]:
        return self.window.image_list.model.stems()

    def _step(self, delta: int) -> None:
        stems = self._order()
        if not stems:
            return
        current = self.window.current_stem()
        if current in stems:
            i = max(0, min(len(stems) - 1, stems.index(current) + delta))
        else:
            i = 0 if delta > 0 else len(stems) - 1
        if stems[i] != current:
            self.window.show_stem(stems[i])

    def next(self) -> None:
        self._step(+1)

    def previous(self) -> None:
        self._step(-1)

    def next_unlabelled(self) -> None:
        """The next image (wrapping around) that is not done, skipped or unreadable."""
        model = self.window.image_list.model
        stems = model.stems()
        if not stems:
            return
        current = self.window.current_stem()
        start = stems.index(current) + 1 if current in stems else 0
        for k in range(len(stems)):
            row = (start + k) % len(stems)
            record = model.record_at(row)
            status = getattr(record.status, "value", record.status) if record else None
            if record is not None and status not in DONE_STATUSES and record.stem != current:
                self.window.show_stem(record.stem)
                return
        self.window.status.showMessage("Every image is done or skipped", 5000)

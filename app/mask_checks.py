"""What the masks of a project just opened need to tell the user (read off the GUI thread).

- Mask files beside the images that the project does not use yet (other names or formats): a
  banner pointing at File ▸ Import Masks….
- Mask values beyond the project's classes: an offer to adopt the classes (names from
  classes.json / classes.txt beside the masks), else a report in the status bar. Fine-tuning
  checks again and leaves such masks out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QThread

from .panels.export_dialog import BackgroundJob

if TYPE_CHECKING:
    from segcore.project import Project

    from .main_window import MainWindow


class MaskChecks(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self._job: BackgroundJob | None = None

    def project_opened(self, project: Project) -> None:
        self.offer_import(project)
        self.check_values(project)

    def check_values(self, project: Project) -> None:
        """Read the masks' values in a background thread (the answer comes back here)."""
        from segcore.classes import mask_values

        if project.read_only or not any(project.masks_dir.glob("*.png")):
            return
        self.wait()
        self._job = BackgroundJob(lambda: mask_values(project))
        self._job.done.connect(lambda values: self._values_ready(project, values))
        self._job.start(QThread.Priority.LowPriority)

    def wait(self) -> None:
        """Wait for a running check (the project is about to close)."""
        if self._job is not None:
            self._job.wait()
            self._job = None

    def _values_ready(self, project: Project, values: Any) -> None:  # MaskValues
        w = self.window
        if w.session is None or w.session.project is not project or not values.outside:
            return
        from segcore.classes import change_classes, next_color
        from segcore.mask_import import proposed_classes
        from segcore.project import ClassInfo

        names = proposed_classes(project.masks_dir, values.max_index + 1)
        if w.ask_adopt_classes(names, values.message(project.num_classes)):
            new: list = []
            for i, name in enumerate(names):
                own = project.classes[i] if i < project.num_classes else None
                generic = name in ("background", f"class {i}")  # no classes.json / .txt name
                new.append(ClassInfo(own.name if own and generic else name,
                                     own.color if own else next_color(new)))
            w.session.saver.flush()
            change_classes(project, new)
            w.classes_changed()
        else:
            w.status.showMessage("⚠ " + values.message(project.num_classes), 20000)

    def offer_import(self, project: Project) -> None:
        """Masks beside the images that the project does not use yet: say so (File ▸ Import)."""
        if project.read_only:
            return
        from segcore.mask_import import find_masks

        try:
            found = find_masks(project)
        except Exception:  # noqa: BLE001 - an unreadable folder: nothing to offer
            return
        if found:
            where = sorted({p.parent.name + "/" for p in found.values()})
            self.window.model_banner.show_message(
                f"{len(found)} mask file(s) in {', '.join(where)} match images without a mask "
                "(other names or formats). File ▸ Import Masks… (Ctrl+I) reads them.")

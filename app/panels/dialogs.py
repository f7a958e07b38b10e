"""Small dialogs and menus of the main window: mask-size question, About, Open Recent."""

from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QMenu, QMessageBox, QWidget


def ask_mask_resize(parent: QWidget, stem: str, mask_hw: tuple, image_hw: tuple) -> bool:
    """Ask whether a mask of the wrong size should be resized (True) or ignored (False)."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Mask size differs from image",
                      f"The mask of “{stem}” is {mask_hw[1]}×{mask_hw[0]} px but the image "
                      f"is {image_hw[1]}×{image_hw[0]} px.", parent=parent)
    box.setInformativeText("Resize the mask to the image (nearest neighbour) and save it, "
                           "or ignore the mask file for now?")
    resize = box.addButton("Resize mask", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Ignore", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return box.clickedButton() is resize


def ask_adopt_classes(parent: QWidget, names: list[str], why: str) -> bool:
    """The masks hold more classes than the project: adopt ``names`` (True) or not."""
    box = QMessageBox(QMessageBox.Icon.Question, "Masks with more classes", why, parent=parent)
    box.setInformativeText(f"Use these {len(names)} classes for the project?\n"
                           + ", ".join(f"{i}: {n}" for i, n in enumerate(names)))
    adopt = box.addButton(f"Use {len(names)} classes", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Keep the project's classes", QMessageBox.ButtonRole.RejectRole)
    box.exec()
    return box.clickedButton() is adopt


def show_about(parent: QWidget) -> None:
    import segcore

    QMessageBox.about(parent, "About SegLoop",
                      f"<b>SegLoop {segcore.__version__}</b><br>Predict, correct by brush, "
                      "fine-tune, predict better.<br>MIT licence.")


class RecentMenu(QMenu):
    """File ▸ Open Recent, rebuilt from ``folders()`` each time it opens."""

    def __init__(self, folders: Callable[[], list[str]], open_folder: Callable[[str], object],
                 clear: Callable[[], None], parent: QWidget | None = None) -> None:
        super().__init__("Open &Recent", parent)
        self._folders, self._open, self._clear = folders, open_folder, clear
        self.setToolTipsVisible(True)
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        recent = self._folders()
        for folder in recent:
            act = self.addAction(folder.replace("&", "&&"))  # a literal &, not a mnemonic
            act.setToolTip(f"Open {folder}")
            act.triggered.connect(lambda _=False, f=folder: self._open(f))
        if not recent:
            self.addAction("(none)").setEnabled(False)
        else:
            self.addSeparator()
            self.addAction("Clear list", self._clear)

"""Every user command of the main window as a QAction: text, shortcut, tooltip, icon.

The table :data:`SPECS` is the single source for menus, toolbars and Help ▸ Shortcuts. Actions are
created by :class:`Actions` and connected by the main window; nothing here knows the project.
Shortcuts: a spec may list several; the first is the primary one shown in menus.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

from .resources import icon


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    menu: str
    tip: str
    shortcuts: tuple[str, ...] = ()
    icon: str | None = None
    checkable: bool = False
    checked: bool = False
    group: str | None = None


SPECS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("open_folder", "&Open Folder…", "File", "Open a folder of images as a project",
               ("Ctrl+O",), "open"),
    ActionSpec("open_demo", "Open &Demo Project", "File", "Open the built-in synthetic demo project",
               ("Ctrl+Shift+D",), "image"),
    ActionSpec("import_masks", "&Import Masks…", "File",
               "Import masks from a folder (masks/, labels/, <stem>_mask.*; PNG, JPEG, TIFF, BMP; "
               "gray, 0/255, palette, RGB colours, instance ids) or a COCO JSON file", ("Ctrl+I",)),
    ActionSpec("export_masks", "&Export Masks…", "File",
               "Export masks as 0/255 PNG, class-index PNG, palette PNG, COCO JSON (RLE), colour "
               "overlays or a dataset layout", ("Ctrl+E",)),
    ActionSpec("rescan", "Re&scan Folder", "File",
               "Look for images and masks added or removed outside SegLoop", ("F5",), "refresh"),
    ActionSpec("quit", "&Quit", "File", "Save pending corrections and quit", ("Ctrl+Q",)),
    # Edit
    ActionSpec("undo", "&Undo", "Edit", "Undo the last edit of this image", ("Ctrl+Z",), "undo"),
    ActionSpec("redo", "&Redo", "Edit", "Redo the last undone edit", ("Ctrl+Shift+Z", "Ctrl+Y"),
               "redo"),
    ActionSpec("accept_prediction", "&Accept Prediction", "Edit",
               "Copy the model's prediction into this image's mask and mark it done (undoable)",
               ("Ctrl+Return", "A"), "accept"),
    ActionSpec("clear_mask", "&Clear Mask", "Edit",
               "Erase the whole mask of this image (undoable), e.g. to start from scratch",
               ("Ctrl+Backspace",), "eraser"),
    ActionSpec("reset_image", "&Reset Image", "Edit",
               "Back to not labelled: the mask is moved to .segloop/backup/ and the prediction "
               "(if any) shown again (undoable)", ("Ctrl+Shift+Backspace",), "reset"),
    # Tools
    ActionSpec("tool_brush", "&Brush", "Tools", "Paint the active class", ("B",), "brush",
               checkable=True, checked=True, group="tool"),
    ActionSpec("tool_eraser", "&Eraser", "Tools", "Erase back to background", ("E",), "eraser",
               checkable=True, group="tool"),
    ActionSpec("tool_fill", "&Fill", "Tools", "Flood-fill a region of the mask", ("G",), "fill",
               checkable=True, group="tool"),
    ActionSpec("tool_pan", "&Pan", "Tools",
               "Drag to move the view (space-drag or middle button work with any tool)",
               ("H",), "pan", checkable=True, group="tool"),
    ActionSpec("edit_classes", "C&lasses…", "Tools",
               "Add, rename, recolour, reorder or delete classes (deleting remaps the masks)",
               ("Ctrl+Shift+L",)),
    ActionSpec("partial_labels", "&Partial Labels (corrective)", "Tools",
               "Only painted pixels are labels (brush: a class, eraser: background); the rest "
               "stays void (not labelled), which training and scoring ignore", ("P",),
               checkable=True),
    *(ActionSpec(f"class_{i}", f"Class {i}", "Classes", f"Paint class {i} (if the project has it)",
                 (str(i),)) for i in range(1, 10)),
    ActionSpec("brush_smaller", "Brush &Smaller", "Tools", "Decrease the brush size", ("[",)),
    ActionSpec("brush_larger", "Brush &Larger", "Tools", "Increase the brush size", ("]",)),
    # View
    ActionSpec("fit", "&Fit to Window", "View", "Show the whole image", ("F", "Ctrl+0"), "fit"),
    ActionSpec("zoom_actual", "Actual &Size (1:1)", "View", "One image pixel per screen pixel",
               ("Ctrl+1",), "zoom-actual"),  # bare 1-9 pick classes (below)
    ActionSpec("show_mask", "&Mask Layer", "View", "Show the filled mask", ("M",), "mask",
               checkable=True, checked=True),
    ActionSpec("show_boundary", "&Boundary Layer", "View", "Outline the mask's boundary", ("O",),
               "boundary", checkable=True),
    ActionSpec("show_diff", "&Diff Layer", "View",
               "Show pixels added to / removed from the prediction", ("D",), "diff",
               checkable=True),
    ActionSpec("theme_dark", "&Dark Theme", "View", "Use the dark theme", (), None,
               checkable=True, group="theme"),
    ActionSpec("theme_light", "&Light Theme", "View", "Use the light theme", (), None,
               checkable=True, group="theme"),
    # Image
    ActionSpec("next_image", "&Next Image", "Image", "Show the next image in the list",
               ("PgDown", "Ctrl+Right"), "next"),
    ActionSpec("previous_image", "&Previous Image", "Image", "Show the previous image in the list",
               ("PgUp", "Ctrl+Left"), "previous"),
    ActionSpec("next_unlabelled", "Next &Unfinished", "Image",
               "Show the next image that is not done or skipped", ("N",), "next-unlabelled"),
    ActionSpec("mark_done", "Mark &Done", "Image",
               "This mask is finished: train on it (or hold it out to score the model)",
               ("Ctrl+D",), "done"),
    ActionSpec("done_next", "Done && Ne&xt", "Image",
               "Mark this image done and show the next one that is not done",
               ("Shift+Return", "Shift+Enter"), "done-next"),
    ActionSpec("skip_image", "S&kip Image", "Image",
               "Leave this image out of training (its mask is kept)", ("Ctrl+K",), "skip"),
    ActionSpec("use_for_training", "&Use for Training", "Image",
               "Move this held-out image into training (recorded; the next done image is held "
               "out instead)"),
    ActionSpec("predict_again", "&Predict Again", "Image",
               "Run the model on this image again", ("Ctrl+P",), "refresh"),
    ActionSpec("crf", "Dense&CRF Refinement", "Image",
               "Refine predictions with a DenseCRF (sharper edges, slower)", ("R",), "crf",
               checkable=True),
    ActionSpec("crf_settings", "DenseCRF &Settings…", "Image",
               "Iterations and kernel weights of the DenseCRF", ("Ctrl+Shift+R",), "settings"),
    # Help
    ActionSpec("shortcuts", "&Keyboard Shortcuts", "Help", "List every action and its shortcut",
               ("F1", "Ctrl+/"), "keyboard"),
    ActionSpec("about", "&About SegLoop", "Help", "Version and licence"),
)

MENUS: tuple[str, ...] = ("File", "Edit", "Tools", "View", "Image", "Help")


class Actions:
    """Creates one QAction per spec on ``parent``; access them by attribute or ``[name]``."""

    def __init__(self, parent: QWidget) -> None:
        self._actions: dict[str, QAction] = {}
        self.groups: dict[str, QActionGroup] = {}
        for spec in SPECS:
            action = QAction(spec.text, parent)
            action.setObjectName(f"action_{spec.name}")
            if spec.shortcuts:
                action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            action.setToolTip(self._tooltip(spec))
            action.setStatusTip(spec.tip)
            action.setCheckable(spec.checkable)
            if spec.checkable:
                action.setChecked(spec.checked)
            if spec.group:
                group = self.groups.setdefault(spec.group, QActionGroup(parent))
                group.setExclusive(True)
                group.addAction(action)
            parent.addAction(action)  # shortcuts work even when menus are hidden
            self._actions[spec.name] = action
        self.refresh_icons()

    @staticmethod
    def _tooltip(spec: ActionSpec) -> str:
        name = spec.text.replace("&", "").rstrip("…")
        keys = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                         for s in spec.shortcuts)
        return f"<b>{name}</b>" + (f" &nbsp;<i>{keys}</i>" if keys else "") + f"<br>{spec.tip}"

    def refresh_icons(self) -> None:
        """Re-render icons in the current theme colour."""
        for spec in SPECS:
            if spec.icon:
                self._actions[spec.name].setIcon(icon(spec.icon))

    def __getitem__(self, name: str) -> QAction:
        return self._actions[name]

    def __getattr__(self, name: str) -> QAction:
        try:
            return self.__dict__["_actions"][name]
        except KeyError as exc:
            raise AttributeError(name) from exc

    def in_menu(self, menu: str) -> list[QAction]:
        return [self._actions[s.name] for s in SPECS if s.menu == menu]

    def all(self) -> list[tuple[ActionSpec, QAction]]:
        return [(spec, self._actions[spec.name]) for spec in SPECS]

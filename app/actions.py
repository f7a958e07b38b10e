"""Every user command as a QAction: text, shortcut, tooltip, icon, and what it does.

:data:`SPECS` is the main window's table; a panel adds its own table with
:meth:`Actions.register` (the training dock's Model menu). The one :class:`Actions` object is
the single source for menus, toolbars and Help ▸ Shortcuts. A spec's ``handler`` is called as
``handler(target, checked)``: ``target`` is the object given to ``register`` (the main window
for :data:`SPECS`), ``checked`` the action's state. A checkable action outside a group calls
its handler on ``toggled`` (so ``setChecked`` acts like a click); every other action on
``triggered``. Which tool / layer / CRF action is checked follows the
:class:`app.editor_state.EditorState` (:meth:`Actions.bind_editor`).
Shortcuts: a spec may list several; the first is the primary one shown in menus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QWidget

from .editor_state import LAYERS, EditorState
from .panels.dialogs import show_about
from .resources import icon

Handler = Callable[[Any, bool], object]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    menu: str
    tip: str
    shortcuts: tuple[str, ...] = ()
    icon: str | None = None
    checkable: bool = False
    group: str | None = None
    handler: Handler | None = None


def _session(call: Callable[[Any], object]) -> Handler:
    """A handler that runs ``call(window.session)`` when a project is open."""
    return lambda w, _checked: w.session is not None and call(w.session)


def _pick_class(idx: int) -> Handler:
    return lambda w, _checked: w.pick_class(idx)


SPECS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("open_folder", "&Open Folder…", "File", "Open a folder of images as a project",
               ("Ctrl+O",), "open", handler=lambda w, _: w.choose_folder()),
    ActionSpec("open_demo", "Open &Demo Project", "File", "Open the built-in synthetic demo project",
               ("Ctrl+Shift+D",), "image", handler=lambda w, _: w.open_demo()),
    ActionSpec("import_masks", "&Import Masks…", "File",
               "Import masks from a folder (masks/, labels/, <stem>_mask.*; PNG, JPEG, TIFF, BMP; "
               "gray, 0/255, palette, RGB colours, instance ids) or a COCO JSON file", ("Ctrl+I",),
               handler=lambda w, _: w.show_import()),
    ActionSpec("export_masks", "&Export Masks…", "File",
               "Export masks as 0/255 PNG, class-index PNG, palette PNG, COCO JSON (RLE), colour "
               "overlays or a dataset layout", ("Ctrl+E",), handler=lambda w, _: w.show_export()),
    ActionSpec("rescan", "Re&scan Folder", "File",
               "Look for images and masks added or removed outside SegLoop", ("F5",), "refresh",
               handler=lambda w, _: w.rescan()),
    ActionSpec("quit", "&Quit", "File", "Save pending corrections and quit", ("Ctrl+Q",),
               handler=lambda w, _: w.close()),
    # Edit
    ActionSpec("undo", "&Undo", "Edit", "Undo the last edit of this image", ("Ctrl+Z",), "undo",
               handler=lambda w, _: w.undo_group.undo()),
    ActionSpec("redo", "&Redo", "Edit", "Redo the last undone edit", ("Ctrl+Shift+Z", "Ctrl+Y"),
               "redo", handler=lambda w, _: w.undo_group.redo()),
    ActionSpec("accept_prediction", "&Accept Prediction", "Edit",
               "Copy the model's prediction into this image's mask and mark it done (undoable)",
               ("Ctrl+Return", "A"), "accept", handler=_session(lambda s: s.accept_prediction())),
    ActionSpec("clear_mask", "&Clear Mask", "Edit",
               "Erase the whole mask of this image (undoable), e.g. to start from scratch",
               ("Ctrl+Backspace",), "eraser", handler=_session(lambda s: s.clear_mask())),
    ActionSpec("reset_image", "&Reset Image", "Edit",
               "Back to not labelled: the mask is moved to .segloop/backup/ and the prediction "
               "(if any) shown again (undoable)", ("Ctrl+Shift+Backspace",), "reset",
               handler=_session(lambda s: s.status.reset())),
    # Tools
    ActionSpec("tool_brush", "&Brush", "Tools", "Paint the active class", ("B",), "brush",
               checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("brush")),
    ActionSpec("tool_eraser", "&Eraser", "Tools", "Erase back to background", ("E",), "eraser",
               checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("eraser")),
    ActionSpec("tool_fill", "&Fill", "Tools", "Flood-fill a region of the mask", ("G",), "fill",
               checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("fill")),
    ActionSpec("tool_pan", "&Pan", "Tools",
               "Drag to move the view (space-drag or middle button work with any tool)",
               ("H",), "pan", checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("pan")),
    ActionSpec("tool_box", "Bo&x (GrabCut)", "Tools",
               "Drag a box around an object: GrabCut sets its mask in the active class "
               "(then correct with brush / eraser and Refine Box)", ("X",), "box",
               checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("box")),
    ActionSpec("tool_scribble", "&Scribble", "Tools",
               "Left-drag: foreground (active class), right-drag or Shift+drag: background; "
               "each stroke refines the mask around it on the model's probabilities (DenseCRF; "
               "GrabCut before the first model). Esc clears the scribbles", ("S",), "scribble",
               checkable=True, group="tool", handler=lambda w, _: w.editor.set_tool("scribble")),
    ActionSpec("refine_box", "&Refine Box", "Tools",
               "GrabCut again in the last box, with the brush / eraser strokes painted since as "
               "certain foreground / background (one undo step)", ("Shift+X",), "refine",
               handler=lambda w, _: w.canvas.assist.refine_box()),
    ActionSpec("edit_classes", "C&lasses…", "Tools",
               "Add, rename, recolour, reorder or delete classes (deleting remaps the masks)",
               ("Ctrl+Shift+L",), handler=lambda w, _: w.show_classes()),
    ActionSpec("partial_labels", "&Partial Labels (corrective)", "Tools",
               "Only painted pixels are labels (brush: a class, eraser: background); the rest "
               "stays void (not labelled), which training and scoring ignore", ("P",),
               checkable=True, handler=lambda w, on: w.session is not None and w.session.status.set_partial(on)),
    *(ActionSpec(f"class_{i}", f"Class {i}", "Classes", f"Paint class {i} (if the project has it)",
                 (str(i),), handler=_pick_class(i)) for i in range(1, 10)),
    ActionSpec("brush_smaller", "Brush &Smaller", "Tools", "Decrease the brush size", ("[",),
               handler=lambda w, _: w.editor.step_brush(-1)),
    ActionSpec("brush_larger", "Brush &Larger", "Tools", "Increase the brush size", ("]",),
               handler=lambda w, _: w.editor.step_brush(+1)),
    # View
    ActionSpec("fit", "&Fit to Window", "View", "Show the whole image", ("F", "Ctrl+0"), "fit",
               handler=lambda w, _: w.canvas.fit_to_view()),
    ActionSpec("zoom_actual", "Actual &Size (1:1)", "View", "One image pixel per screen pixel",
               ("Ctrl+1",), "zoom-actual",  # bare 1-9 pick classes (below)
               handler=lambda w, _: w.canvas.zoom_actual()),
    ActionSpec("show_mask", "&Mask Layer", "View", "Show the filled mask", ("M",), "mask",
               checkable=True, handler=lambda w, on: w.editor.set_layer_visible("mask", on)),
    ActionSpec("show_boundary", "&Boundary Layer", "View", "Outline the mask's boundary", ("O",),
               "boundary", checkable=True,
               handler=lambda w, on: w.editor.set_layer_visible("boundary", on)),
    ActionSpec("show_diff", "&Diff Layer", "View",
               "Show pixels added to / removed from the prediction", ("D",), "diff",
               checkable=True, handler=lambda w, on: w.editor.set_layer_visible("diff", on)),
    ActionSpec("theme_dark", "&Dark Theme", "View", "Use the dark theme", (), None,
               checkable=True, group="theme", handler=lambda w, _: w.set_theme("dark")),
    ActionSpec("theme_light", "&Light Theme", "View", "Use the light theme", (), None,
               checkable=True, group="theme", handler=lambda w, _: w.set_theme("light")),
    # Image
    ActionSpec("next_image", "&Next Image", "Image", "Show the next image in the list",
               ("PgDown", "Ctrl+Right"), "next", handler=lambda w, _: w.show_neighbour(+1)),
    ActionSpec("previous_image", "&Previous Image", "Image", "Show the previous image in the list",
               ("PgUp", "Ctrl+Left"), "previous", handler=lambda w, _: w.show_neighbour(-1)),
    ActionSpec("next_unlabelled", "Next &Unfinished", "Image",
               "Show the next image that is not done or skipped", ("N",), "next-unlabelled",
               handler=lambda w, _: w.show_next_unfinished()),
    ActionSpec("mark_done", "Mark &Done", "Image",
               "This mask is finished: train on it (or hold it out to score the model)",
               ("Ctrl+D",), "done", handler=_session(lambda s: s.status.mark_done())),
    ActionSpec("done_next", "Done && Ne&xt", "Image",
               "Mark this image done and show the next one that is not done",
               ("Shift+Return", "Shift+Enter"), "done-next",
               handler=lambda w, _: w.session is not None and w.session.status.mark_done()
               and w.show_next_unfinished()),
    ActionSpec("skip_image", "S&kip Image", "Image",
               "Leave this image out of training (its mask is kept)", ("Ctrl+K",), "skip",
               handler=_session(lambda s: s.status.skip())),
    ActionSpec("use_for_training", "&Use for Training", "Image",
               "Move this held-out image into training (recorded; the next done image is held "
               "out instead)", handler=_session(lambda s: s.status.use_for_training())),
    ActionSpec("predict_again", "&Predict Again", "Image",
               "Run the model on this image again", ("Ctrl+P",), "refresh",
               handler=_session(lambda s: s.request_predictions(True))),
    ActionSpec("crf", "Dense&CRF Refinement", "Image",
               "Refine predictions with a DenseCRF (sharper edges, slower)", ("R",), "crf",
               checkable=True, handler=lambda w, on: w.editor.set_crf_enabled(on)),
    ActionSpec("crf_settings", "DenseCRF &Settings…", "Image",
               "Iterations and kernel weights of the DenseCRF", ("Ctrl+Shift+R",), "settings",
               handler=lambda w, _: w.show_crf_settings()),
    # Help
    ActionSpec("shortcuts", "&Keyboard Shortcuts", "Help", "List every action and its shortcut",
               ("F1", "Ctrl+/"), "keyboard", handler=lambda w, _: w.show_shortcuts()),
    ActionSpec("about", "&About SegLoop", "Help", "Version and licence",
               handler=lambda w, _: show_about(w)),
)

MENUS: tuple[str, ...] = ("File", "Edit", "Tools", "View", "Image", "Help")  # panels add theirs before Help


class Actions:
    """One QAction per spec on ``parent``; access them by attribute or ``[name]``."""

    def __init__(self, parent: QWidget, target: Any = None, specs: Iterable[ActionSpec] = SPECS) -> None:
        self._parent = parent
        self._specs: list[ActionSpec] = []
        self._actions: dict[str, QAction] = {}
        self.groups: dict[str, QActionGroup] = {}
        self.register(specs, parent if target is None else target)

    def register(self, specs: Iterable[ActionSpec], target: Any) -> list[QAction]:
        """Create the actions of ``specs`` (names must be new); handlers get ``target``."""
        created = []
        for spec in specs:
            if spec.name in self._actions:
                raise ValueError(f"action {spec.name!r} is registered twice")
            action = QAction(spec.text, self._parent)
            action.setObjectName(f"action_{spec.name}")
            if spec.shortcuts:
                action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            action.setToolTip(self._tooltip(spec))
            action.setStatusTip(spec.tip)
            action.setCheckable(spec.checkable)
            if spec.icon:
                action.setIcon(icon(spec.icon))
            if spec.group:
                group = self.groups.setdefault(spec.group, QActionGroup(self._parent))
                group.setExclusive(True)
                group.addAction(action)
            if spec.handler is not None:
                signal = action.toggled if spec.checkable and not spec.group else action.triggered
                signal.connect(lambda checked=False, h=spec.handler: h(target, bool(checked)))
            self._parent.addAction(action)  # shortcuts work even when menus are hidden
            self._actions[spec.name] = action
            self._specs.append(spec)
            created.append(action)
        return created

    def bind_editor(self, state: EditorState) -> None:
        """The tool, layer and CRF actions show the editor state (their handlers write it)."""
        def show_tool(name: str) -> None:
            self._actions[f"tool_{name}"].setChecked(True)

        def show_layer(name: str, visible: bool) -> None:
            self._actions[f"show_{name}"].setChecked(visible)

        show_tool(state.tool)
        for name in LAYERS:
            show_layer(name, state.layer_visible(name))
        self._actions["crf"].setChecked(state.crf_enabled)
        state.toolChanged.connect(show_tool)
        state.layerVisibilityChanged.connect(show_layer)
        state.crfEnabledChanged.connect(self._actions["crf"].setChecked)

    @staticmethod
    def _tooltip(spec: ActionSpec) -> str:
        name = spec.text.replace("&", "").rstrip("…")
        keys = ", ".join(QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText)
                         for s in spec.shortcuts)
        return f"<b>{name}</b>" + (f" &nbsp;<i>{keys}</i>" if keys else "") + f"<br>{spec.tip}"

    def refresh_icons(self) -> None:
        """Re-render icons in the current theme colour."""
        for spec in self._specs:
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
        return [self._actions[s.name] for s in self._specs if s.menu == menu]

    def all(self) -> list[tuple[ActionSpec, QAction]]:
        """Every registered action, the window's table first, in registration order."""
        return [(spec, self._actions[spec.name]) for spec in self._specs]

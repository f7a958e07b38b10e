"""How the photo and the mask look on screen: mask colour and brightness / contrast.

:class:`DisplayController` connects the Tools panel's colour button and Display sliders to the
canvas and the open project. Binary projects: the mask colour is *automatic* (per shown image,
the candidate of ``app.canvas.levels.MASK_CANDIDATES`` that stands out most from it) until the
user chooses one; the chosen colour is stored as class 1's colour in the project's class list
(``Project.set_classes``) and the project setting ``mask_color`` = ``"chosen"``. Multi-class
projects use their classes' colours as they are. Brightness / contrast apply to the drawn
pixmaps only (never to image data, masks or what the model sees) and stay for the next images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from segcore.project import ClassInfo

from .canvas.levels import auto_levels, contrast_color, levels_lut

if TYPE_CHECKING:
    from segcore.project import Project

    from .main_window import MainWindow

SETTING = "mask_color"  # project setting: "chosen" once the user picked the binary colour
LEVELS_DEBOUNCE_MS = 40


class DisplayController(QObject):
    _levels_timer: QTimer  # made in __init__, after the lambda that starts it

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.project: Project | None = None
        tools = window.tools
        tools.maskColorChosen.connect(self.choose_color)
        tools.maskColorAutoRequested.connect(self.use_auto_color)
        tools.levelsChanged.connect(lambda *_: self._levels_timer.start())
        tools.autoLevelsRequested.connect(self.auto_levels)
        self._levels_timer = QTimer(self)
        self._levels_timer.setSingleShot(True)
        self._levels_timer.setInterval(LEVELS_DEBOUNCE_MS)
        self._levels_timer.timeout.connect(self.apply_levels)

    # -- project / image --------------------------------------------------------------------
    def project_opened(self, project: Project) -> None:
        self.project = project
        binary = len(project.classes) <= 2
        self.window.tools.set_mask_color_choosable(binary)
        self.window.canvas.set_class_colors([c.color for c in project.classes])
        if binary:
            self.window.tools.set_mask_color(project.classes[1].color, self.is_auto())

    def is_auto(self) -> bool:
        p = self.project
        if p is None or len(p.classes) > 2:
            return False
        try:
            return p.get_setting(SETTING) != "chosen"
        except Exception:  # noqa: BLE001 - a closed index: keep what is shown
            return False

    def image_shown(self, _stem: str = "") -> None:
        """Pick the automatic colour for the image now on the canvas."""
        p, rgb = self.project, self.window.canvas.image_rgb()
        if p is None or rgb is None or not self.is_auto():
            return
        color = contrast_color(rgb)
        self.window.canvas.set_class_colors([p.classes[0].color, color])
        self.window.tools.set_mask_color(color, True)

    # -- user actions -----------------------------------------------------------------------
    def choose_color(self, rgb: tuple[int, int, int]) -> None:
        p = self.project
        if p is None or len(p.classes) > 2:
            return
        rgb = (int(rgb[0]), int(rgb[1]), int(rgb[2]))
        classes = list(p.classes)
        try:
            if not p.read_only:
                p.set_classes([classes[0], ClassInfo(classes[1].name, rgb)])
                p.set_setting(SETTING, "chosen")
        except Exception as exc:  # noqa: BLE001 - shown, the colour still applies this session
            self.window.status.showMessage(f"Mask colour not saved: {exc}", 10000)
        self.window.canvas.set_class_colors([classes[0].color, rgb])
        self.window.tools.set_mask_color(rgb, False)

    def use_auto_color(self) -> None:
        p = self.project
        if p is None or len(p.classes) > 2:
            return
        try:
            if not p.read_only:
                p.set_setting(SETTING, "auto")
        except Exception:  # noqa: BLE001 - auto for this session anyway
            pass
        self.window.tools.set_mask_color(self.window.tools.mask_color, True)
        self.image_shown()

    def apply_levels(self) -> None:
        self.window.canvas.set_display_lut(levels_lut(*self.window.tools.levels()))

    def auto_levels(self) -> None:
        rgb = self.window.canvas.image_rgb()
        if rgb is not None:
            self.window.tools.set_levels(*auto_levels(rgb))
            self.apply_levels()

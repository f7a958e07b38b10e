"""Entry point: ``segloop [FOLDER]``.

Without a folder it opens the last project (QSettings) or, on first start (or if the last one
is gone), the built-in demo project (``segcore.demo.ensure_demo_project()``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from . import preflight

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from .settings import Settings


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="segloop", description="Human-in-the-loop segmentation.")
    parser.add_argument("folder", nargs="?", help="folder of images to open")
    parser.add_argument("--theme", choices=("dark", "light"), help="override the saved theme")
    parser.add_argument("--check", action="store_true",
                        help="start, open the folder (or the demo), show its first image, then "
                             "quit: exit 0 if the image was shown (a smoke test of an install)")
    return parser.parse_args(argv)


def initial_folder(arg: str | None, settings: Settings) -> Path | None:
    if arg:
        return Path(arg).expanduser()
    last = settings.last_project()
    if last and Path(last).is_dir():
        return Path(last)
    try:
        from segcore.demo import ensure_demo_project

        return ensure_demo_project()
    except Exception as exc:  # noqa: BLE001 - start without a project rather than not at all
        print(f"segloop: demo project unavailable: {exc}", file=sys.stderr)
        return None


def create_app(argv: list[str] | None = None) -> QApplication:
    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from .resources import app_icon

    # instance() is typed QCoreApplication; in this app it is always the QApplication made here
    app = cast(QApplication, QApplication.instance()) or QApplication([sys.argv[0], *(argv or [])])
    QCoreApplication.setOrganizationName("SegLoop")
    QCoreApplication.setApplicationName("SegLoop")
    app.setApplicationDisplayName("SegLoop")
    app.setWindowIcon(app_icon())
    return app


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Before anything imports QtGui: Qt itself would abort without naming the missing package.
    problem = preflight.check(sys.argv[1:] if argv is None else argv)
    if problem:
        print(problem, file=sys.stderr)
        return 3
    from segcore.memory import prepare_process
    prepare_process()  # before Qt: imported after PySide6, torch would cost 91 MB more
    from PySide6.QtCore import QTimer

    from .settings import Settings
    from .theme import apply_theme

    app = create_app()
    settings = Settings()
    from .main_window import MainWindow

    name = apply_theme(app, args.theme or settings.theme())
    window = MainWindow(settings)
    window.action_table[f"theme_{name}"].setChecked(True)
    window.show()
    from .recovery import install_signal_flush

    window.signal_flush = install_signal_flush(window)  # SIGTERM/SIGHUP flush, then quit
    folder = initial_folder(args.folder, settings)
    if args.check:
        return _check(app, window, folder)
    if folder is not None:
        QTimer.singleShot(0, lambda: window.open_project(folder))
    return int(app.exec())


def _check(app: QApplication, window, folder: Path | None, timeout_s: float = 60.0) -> int:
    """--check: open ``folder``, wait (event loop running) until an image is on the canvas."""
    import time

    if folder is None or not folder.is_dir() or not window.open_project(folder):
        print(f"segloop --check: {folder}: no project could be opened", file=sys.stderr)
        window.close()
        return 1
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and window.stack.currentWidget() is not window.canvas:
        app.processEvents()
        time.sleep(0.01)
    shown = window.stack.currentWidget() is window.canvas
    print(f"segloop --check: {folder}: " + (f"{window.current_stem()} shown, "
          f"{window.canvas.mask().shape[1]}x{window.canvas.mask().shape[0]}" if shown
          else "no image shown"))
    window.close()
    return 0 if shown else 1


if __name__ == "__main__":
    raise SystemExit(main())

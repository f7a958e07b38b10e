"""Never drop unsaved corrections on quit, folder switch or SIGTERM; offer to restore them later.

``resolve_unsaved`` runs before a session closes: it flushes the saver and, if masks are still
not on disk (masks/ unwritable: disk full, read-only, permissions), asks the user to **Retry**,
**Save to Recovery Folder** (``<user data dir>/SegLoop/recovery/<project key>/``, see
segcore.recovery) or **Discard** (explicit) — or Cancel the quit/switch. Without a user to ask
(SIGTERM / SIGHUP) the masks go to the recovery folder. ``offer_restore`` runs after a project
opens: masks waiting in its recovery folder are written back through ``Project.save_mask``;
each copy is deleted only once restored.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QSocketNotifier, QStandardPaths
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from segcore.recovery import RecoveryStore

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

RETRY, RECOVER, DISCARD, CANCEL = "retry", "recover", "discard", "cancel"


def recovery_base() -> Path:
    """The user's data folder for SegLoop (``~/.local/share/SegLoop`` on Linux): the generic
    data location + "SegLoop", so it does not depend on the running QApplication's name (the
    app, a test runner or a script all find the same recovery folder)."""
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    return Path(loc or Path.home() / ".local" / "share") / "SegLoop"


def store_for(project) -> RecoveryStore:  # segcore Project
    return RecoveryStore(recovery_base(), project.root)


def _names(stems: list[str], limit: int = 8) -> str:
    shown = ", ".join(stems[:limit])
    return shown + (f" and {len(stems) - limit} more" if len(stems) > limit else "")


def ask_unsaved(parent: QWidget | None, stems: list[str], reason: str, action: str) -> str:
    """The quit/switch dialog. Returns RETRY, RECOVER, DISCARD or CANCEL."""
    box = QMessageBox(parent)
    box.setObjectName("unsaved_dialog")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Unsaved corrections")
    box.setText(f"{len(stems)} mask{'s' if len(stems) != 1 else ''} could not be saved: "
                f"{_names(stems)}.")
    box.setInformativeText(f"Reason: {reason}\n\nRetry the save, save the masks to a recovery "
                           f"folder (SegLoop offers to restore them when this project is opened "
                           f"again), or discard the corrections before you {action}.")
    buttons = {
        RETRY: box.addButton("Retry", QMessageBox.ButtonRole.AcceptRole),
        RECOVER: box.addButton("Save to Recovery Folder", QMessageBox.ButtonRole.AcceptRole),
        DISCARD: box.addButton("Discard Corrections", QMessageBox.ButtonRole.DestructiveRole),
        CANCEL: box.addButton(QMessageBox.StandardButton.Cancel),
    }
    for name, button in buttons.items():
        button.setObjectName(f"unsaved_{name}")
    box.setDefaultButton(buttons[RETRY])
    box.setEscapeButton(buttons[CANCEL])
    box.exec()
    clicked = box.clickedButton()
    return next((n for n, b in buttons.items() if b is clicked), CANCEL)


def resolve_unsaved(parent: QWidget | None, session: Session, action: str = "quit",
                    interactive: bool = True,
                    ask: Callable[[QWidget | None, list[str], str, str], str] | None = None) -> bool:
    """Make sure closing ``session`` loses nothing the user did not choose to lose.

    True = the session may close now; False = the user cancelled."""
    ask = ask or ask_unsaved
    saver = session.saver
    while True:
        if saver.flush(timeout=10.0):
            return True
        unsaved = saver.unsaved()
        if not unsaved:
            return True
        reason = saver.last_error or "the masks folder cannot be written"
        choice = ask(parent, sorted(unsaved), reason, action) if interactive else RECOVER
        if choice == RETRY:
            continue
        if choice == CANCEL:
            return False
        if choice == RECOVER:
            try:
                written = store_for(session.project).save(unsaved, reason)
            except Exception as exc:  # noqa: BLE001 - MaskWriteError and the like
                if not interactive:
                    log.error("recovery copy failed: %s (the journal keeps the edits)", exc)
                    return True
                QMessageBox.warning(parent, "Cannot save to the recovery folder", str(exc))
                continue
            log.info("unsaved masks saved to %s", [str(p) for p in written])
        saver.discard(unsaved)                 # on disk elsewhere, or explicitly discarded
        session.journal.forget(unsaved)        # the journal must not bring them back
        return True


def offer_restore(parent: QWidget | None, session: Session,
                  ask: Callable[[QWidget | None, list[str], dict], str] | None = None) -> list[str]:
    """If the project has masks in its recovery folder, offer to restore them. Returns the
    restored stems."""
    if session.read_only:
        return []
    store = store_for(session.project)
    known = set(session.project.stems())
    entries = {s: p for s, p in store.entries().items() if s in known}
    if not entries:
        return []
    choice = (ask or _ask_restore)(parent, sorted(entries), store.info())
    if choice == DISCARD:
        for stem in entries:
            store.remove(stem)
        return []
    if choice != "restore":
        return []
    restored, failed = [], []
    for stem in sorted(entries):
        try:
            session.project.save_mask(stem, store.load(stem), session.project.restored_status(stem))   # the normal save path
        except Exception as exc:  # noqa: BLE001 - keep the copy, say why
            failed.append(f"{stem}: {exc}")
            continue
        store.remove(stem)
        restored.append(stem)
    if failed:
        QMessageBox.warning(parent, "Some masks were not restored",
                            "They stay in the recovery folder:\n\n" + "\n".join(failed))
    if restored:
        session.message.emit(f"Restored {len(restored)} mask(s) from the recovery folder: "
                             f"{_names(restored)}", 10000)
        if session.current in restored:
            session.show(session.current)
    for stem in restored:
        session.recordChanged.emit(stem)
    return restored


def other_projects_notice(current_root) -> str | None:
    """A status-bar line naming other projects whose masks wait in the recovery folder."""
    from segcore.recovery import projects_with_recovery

    cur = str(Path(current_root).resolve()) if current_root else None
    others = [i["project"] for i in projects_with_recovery(recovery_base())
              if i.get("project") != cur]
    if not others:
        return None
    return (f"Unsaved masks of {_names(others, 3)} are in the recovery folder: open "
            f"{'that folder' if len(others) == 1 else 'those folders'} to restore them")


def _ask_restore(parent: QWidget | None, stems: list[str], info: dict) -> str:
    box = QMessageBox(parent)
    box.setObjectName("restore_dialog")
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Restore unsaved masks")
    box.setText(f"{len(stems)} mask{'s' if len(stems) != 1 else ''} of this project "
                f"{'were' if len(stems) != 1 else 'was'} saved to the recovery folder"
                f"{' on ' + str(info['saved'])[:16].replace('T', ' ') if info.get('saved') else ''}"
                f": {_names(stems)}.")
    box.setInformativeText("Restore writes them into the masks folder (replacing the mask "
                           "there). Later keeps them in the recovery folder.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    later = box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    discard = box.addButton("Discard Them", QMessageBox.ButtonRole.DestructiveRole)
    for name, b in (("restore", restore), ("later", later), ("discard", discard)):
        b.setObjectName(f"restore_{name}")
    box.setDefaultButton(restore)
    box.exec()
    clicked = box.clickedButton()
    return "restore" if clicked is restore else DISCARD if clicked is discard else "later"


class SignalFlusher(QObject):
    """SIGTERM / SIGHUP: run ``on_signal`` in the Qt event loop (set_wakeup_fd + notifier)."""

    def __init__(self, on_signal: Callable[[int], None], parent: QObject | None = None,
                 signals: tuple[int, ...] = (signal.SIGTERM, getattr(signal, "SIGHUP", 0))) -> None:
        super().__init__(parent)
        self._on_signal = on_signal
        self._rsock, self._wsock = socket.socketpair()
        self._rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._old_fd = signal.set_wakeup_fd(self._wsock.fileno())
        self._notifier = QSocketNotifier(self._rsock.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._ready)
        self._handled = False
        for sig in signals:
            if sig:
                signal.signal(sig, lambda *_: None)  # the wakeup fd carries the number

    def _ready(self) -> None:
        try:
            data = self._rsock.recv(64)
        except OSError:
            return
        for sig in data:
            if sig in (signal.SIGTERM, getattr(signal, "SIGHUP", -1)) and not self._handled:
                self._handled = True
                self._on_signal(int(sig))


def install_signal_flush(window) -> SignalFlusher | None:  # MainWindow
    """SIGTERM / SIGHUP close the window without dialogs: pending saves are flushed, what still
    cannot be written goes to the recovery folder (and stays in the journal), then the app quits."""
    if os.name != "posix":
        return None

    def on_signal(sig: int) -> None:
        log.warning("signal %d: flushing pending saves and quitting", sig)
        window.non_interactive_close = True
        window.close()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    return SignalFlusher(on_signal, window)

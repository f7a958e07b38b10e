"""Glue between the main window, the training panel, the fine-tune worker and the session.

``attach_training(window)`` (called once by MainWindow) adds the "Training" dock (bottom area,
laid out side by side there; stacked when the user moves it to a side or floats it), a "Model"
menu (:data:`SPECS`: Fine-tune Ctrl+T, Cancel Training, Versions…, registered in the window's
action table) and a toolbar button. The window is used only through :class:`app.host.PanelHost`:
the controller follows ``sessionChanged`` (the open project), enables Fine-tune once at least
one image is done, starts/cancels runs, shows progress, and after a run or an Activate / Roll
back reloads the prediction worker's model and re-predicts (shown image first; see
app/training/repredict.py).
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea

from segcore.loop import FinetuneResult
from segcore.training import EpochReport

from ..actions import ActionSpec
from .compare_controller import CompareController
from .panel import TrainingPanel
from .repredict import Repredictor
from .worker import FinetuneWorker

if TYPE_CHECKING:
    from ..host import PanelHost
    from ..session import Session

DOCK_AREA = Qt.DockWidgetArea.BottomDockWidgetArea
DOCK_HEIGHT = 300       # default height of the bottom dock, at most DOCK_SHARE of the window
DOCK_SHARE = 0.37       # 1280x720: a 266 px dock leaves the canvas ~350 px (was 289)
MIN_DOCK_HEIGHT = 220
REFRESH_DEBOUNCE_MS = 250
FORECAST_TARGET_KEY = "forecast_target"  # project setting: the forecast's target IoU (None: auto)


# The Model menu, in the window's one action table (handlers get the controller).
SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("fine_tune", "&Fine-tune", "Model", "Train the model on the done images",
               ("Ctrl+T",), "fine-tune", handler=lambda c, _: c.start()),
    ActionSpec("cancel_training", "&Cancel Training", "Model",
               "Stop training; the current model stays active", ("Ctrl+Shift+T",),
               handler=lambda c, _: c.cancel()),
    ActionSpec("model_versions", "&Versions…", "Model",
               "Show the model versions (activate, roll back)", handler=lambda c, _: c.show_versions()),
    ActionSpec("compare_versions", "C&ompare Versions…", "Model",
               "Compare two model versions image by image (the selected two, or one and its parent)",
               handler=lambda c, _: c.compare_versions()),
)


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "–"


class TrainingController(QObject):
    def __init__(self, window: PanelHost) -> None:
        super().__init__(cast(QObject, window))  # parented to the host (a QMainWindow): lives as long as it
        self.window = window
        self.panel = TrainingPanel(window.settings)

        self.worker = FinetuneWorker(self)
        self.comparison = CompareController(window, self)
        self._forecast_key: tuple | None = None
        self.session: Session | None = None
        self.repredictor: Repredictor | None = None
        self.last_result: FinetuneResult | None = None
        self.last_error: str | None = None
        self._plotted_run: str | None = None
        self._decided_for: tuple | None = None  # (project root, active version) whose decisions are shown
        self.timings: dict[str, float] = {}
        self._make_actions()
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.panel)
        self.dock: QDockWidget = window.add_panel_dock("Training", self.scroll, DOCK_AREA)
        # the bottom area sits under the canvas only; the side docks keep their full height
        window.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        window.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock.dockLocationChanged.connect(self._dock_moved)
        self.dock.topLevelChanged.connect(lambda *_: self._dock_moved(window.dockWidgetArea(self.dock)))
        self._dock_moved(window.dockWidgetArea(self.dock))
        window.resizeDocks([self.dock], [self.default_height()], Qt.Orientation.Vertical)
        QTimer.singleShot(0, self._default_height)  # resizeDocks before show() is unreliable
        self._connect()
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_DEBOUNCE_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        window.sessionChanged.connect(self.set_session)
        window.closing.connect(self.shutdown)
        self.set_session(window.session)

    # -- construction -----------------------------------------------------------------------
    def _make_actions(self) -> None:
        w = self.window
        (self.fine_tune_action, self.cancel_action, self.versions_action,
         self.compare_action) = w.action_table.register(SPECS, self)
        menu = w.menu("Model")
        menu.addActions([self.fine_tune_action, self.cancel_action])
        menu.addSeparator()
        menu.addActions([self.versions_action, self.compare_action])
        w.add_toolbar_action(self.fine_tune_action)

    def _connect(self) -> None:
        p, w = self.panel, self.worker
        p.fineTuneRequested.connect(self.start)
        p.cancelRequested.connect(self.cancel)
        p.activateRequested.connect(self.activate)
        p.rollbackRequested.connect(self.rollback)
        p.compareRequested.connect(self.comparison.open)
        p.forecast.targetChanged.connect(self._set_forecast_target)
        w.progress.connect(p.set_progress)
        w.epoch.connect(self._epoch)
        w.message.connect(self._message)
        w.finished.connect(self._finished)
        w.failed.connect(self._failed)
        w.runningChanged.connect(self._running_changed)

    def default_height(self) -> int:
        return max(MIN_DOCK_HEIGHT, min(DOCK_HEIGHT, round(self.window.height() * DOCK_SHARE)))

    def _default_height(self) -> None:
        """Give a too-short bottom dock its default height (a restored, user-sized one is kept)."""
        saved = self.window.settings.value("window/state") is not None
        low = MIN_DOCK_HEIGHT if saved else self.default_height()
        if self.window.dockWidgetArea(self.dock) == DOCK_AREA and self.dock.height() < low:
            self.window.resizeDocks([self.dock], [self.default_height()], Qt.Orientation.Vertical)

    def _dock_moved(self, area: Qt.DockWidgetArea) -> None:
        horizontal = area in (Qt.DockWidgetArea.BottomDockWidgetArea, Qt.DockWidgetArea.TopDockWidgetArea)
        self.panel.set_horizontal(horizontal and not self.dock.isFloating())
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if horizontal
                                                 else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    # -- session tracking -------------------------------------------------------------------
    def set_session(self, session: Session | None) -> None:
        """The host's ``sessionChanged``: follow the project now open (None: none)."""
        if session is self.session:
            return
        self.comparison.shutdown()  # a comparison belongs to the project it was made on
        if self.repredictor is not None:
            self.repredictor.stop()
            self.repredictor = None
        self.session = session
        if session is not None:
            session.recordChanged.connect(self.schedule_refresh)
        self.refresh()

    def schedule_refresh(self, *_: Any) -> None:
        self._refresh_timer.start()

    def refresh(self) -> None:
        """Button state, held-out share and versions table from the project index."""
        s = self.session
        if s is None:
            self.panel.set_can_train(False, "Open a project first")
            self.panel.set_held_out([], [])
            self.panel.set_versions([])
            self._show_forecast([])
            self._sync_actions()
            return
        project = s.project
        try:
            train, held = project.training_split()
            versions = project.models.versions(rebuild=False)
        except Exception:  # noqa: BLE001 - closed or broken index: keep the last view
            return
        self.panel.set_held_out(train, held)
        self.panel.set_versions(versions)
        self._show_forecast(versions)
        self._show_active_history(versions)
        self._apply_model_decisions(next((v for v in versions if v.active), None))
        if project.read_only:
            self.panel.set_can_train(False, "This project is read-only: a new model version "
                                            "could not be saved")
        elif not train:
            self.panel.set_can_train(False, "Finish at least one image (paint its mask, then Mark "
                                            "Done, Ctrl+D, or accept a prediction) to fine-tune "
                                            "the model on it")
        else:
            self.panel.set_can_train(True, f"Train the active model on the {len(train)} done "
                                           f"image{'s' if len(train) != 1 else ''} (Ctrl+T); "
                                           f"{len(held)} held out for honest metrics")
        self._sync_actions()

    # -- effort forecast ----------------------------------------------------------------------
    def _forecast_target(self) -> float | None:
        try:
            value = self.session.project.get_setting(FORECAST_TARGET_KEY) if self.session else None
        except Exception:  # noqa: BLE001 - a closed index: auto
            return None
        return float(value) if isinstance(value, (int, float)) else None

    def _set_forecast_target(self, target: float | None) -> None:
        """The user's target IoU (None: auto), kept in the project."""
        if self.session is not None and not self.session.project.read_only:
            try:
                self.session.project.set_setting(FORECAST_TARGET_KEY, target)
            except Exception:  # noqa: BLE001 - not stored; still used for this view
                pass
        self._forecast_key = None
        self._show_forecast(self.session.project.models.versions(rebuild=False) if self.session else [],
                            target)

    def _show_forecast(self, versions: list, target: float | None = None) -> None:
        """segcore.forecast on the active lineage's held-out curve (fitted again only when a
        version or the target changed: refresh runs on every image change)."""
        from segcore.forecast import forecast, lineage, points_of_lineage

        target = self._forecast_target() if target is None else target
        chain = lineage(versions)
        key = (tuple((v.id, (v.metrics or {}).get("n_train"), (v.metrics or {}).get("val_iou"))
                     for v in chain), target)
        if key == self._forecast_key:
            return
        self._forecast_key = key
        points = points_of_lineage(versions)
        self.panel.forecast.set_target(target)
        self.panel.set_forecast(forecast(points, target) if points else None)

    def _show_active_history(self, versions: list) -> None:
        """Reopened project: plot the active version's run (from the project's epoch log)."""
        if self.worker.is_running():
            return
        active = next((v for v in versions if v.active), None)
        run_id = (active.meta or {}).get("run_id") if active is not None else None
        if run_id == self._plotted_run:
            return
        self._plotted_run = run_id
        self.panel.chart.clear()
        if not run_id or active is None:  # (there is no run_id without an active version)
            return
        if self.session is None:  # closed: the lookup below would end in its except, returning too
            return
        try:
            rows = self.session.project.epoch_history(run_id)
        except Exception:  # noqa: BLE001 - an old or closed index: nothing to plot
            return
        for row in rows:
            self.panel.chart.add(EpochReport.from_row(row, len(rows)))
        self.panel.set_start_iou((active.metrics or {}).get("start_val_iou"))

    def _apply_model_decisions(self, active: Any) -> None:
        """Once per active version: show what the model sees, and turn DenseCRF on or off as the
        version's fine-tune decided on its held-out images (the user can still toggle it, R)."""
        key = (str(self.session.project.root) if self.session else None, getattr(active, "id", None))
        if key == self._decided_for:
            return
        self._decided_for = key
        meta = (getattr(active, "meta", None) or {}) if active is not None else {}
        from segcore.preprocess import Preset
        preset = meta.get("preset")
        self.panel.advanced.show_preset(
            (Preset.from_dict(preset).describe() + (f" — {preset.get('reason')}" if preset.get("reason") else ""))
            if preset else "")
        decision = meta.get("crf") or (getattr(active, "metrics", None) or {}).get("crf")
        if not decision:
            return
        from segcore.crf import params_from
        params = params_from(decision)
        editor = self.window.editor
        if params is not None:
            editor.set_crf_params(params)
        if self.window.action_table.crf.isEnabled():
            editor.set_crf_enabled(params is not None)

    def _sync_actions(self) -> None:
        running = self.worker.is_running()
        self.fine_tune_action.setEnabled(self.panel.train_button.isEnabled())
        self.fine_tune_action.setToolTip(self.panel.train_button.toolTip())
        self.compare_action.setEnabled(self.session is not None)
        self.cancel_action.setEnabled(running)

    # -- runs -------------------------------------------------------------------------------
    def start(self) -> bool:
        """Start fine-tuning on the open project (no-op with a message if impossible)."""
        s = self.session
        if s is None or self.worker.is_running() or not self.panel.train_button.isEnabled():
            return False
        s.saver.flush()  # the last stroke counts
        config = self.panel.advanced.config()
        active = s.project.models.active(rebuild=False)
        self.last_result, self.last_error = None, None
        self.timings = {"click": time.monotonic()}
        self.panel.set_repredict(None)
        self.panel.start_run(config, f"v{active.id}" if active else "the pretrained model")
        try:
            return self.worker.start(s.project.root, config)
        except ValueError as exc:  # TrainConfig.validate
            self._failed(f"Invalid training settings: {exc}")
            self._running_changed(False)
            return False

    def cancel(self) -> None:
        if self.worker.is_running():
            self.panel.set_status("Cancelling…")
            self.worker.cancel()

    def _epoch(self, report: EpochReport) -> None:
        self.panel.add_epoch(report)

    def _message(self, text: str) -> None:
        self.panel.set_status(text)

    def _status(self, text: str, ms: int = 10000) -> None:
        self.window.show_message(text, ms)

    def _running_changed(self, running: bool) -> None:
        self.panel.set_running(running)
        self._sync_actions()

    def _finished(self, result: FinetuneResult) -> None:
        self.last_result = result
        self.timings["trained"] = time.monotonic()
        self.panel.finish_progress(not result.cancelled)
        if result.cancelled:
            parent = f"v{result.parent_id}" if result.parent_id is not None else "the pretrained model"
            self.panel.set_result(f"Cancelled; {parent} is still active.")
            self.panel.set_status("Training cancelled.")
            self._status(f"Fine-tuning cancelled; {parent} is still active")
            return
        m = result.metrics or {}
        self.panel.set_start_iou(m.get("start_val_iou"))
        if result.kept_parent:
            text = f"⚠ {result.message} ({result.seconds:.0f} s)."
        elif result.metrics:
            text = (f"v{result.version_id} saved and active: held-out IoU {_fmt(m.get('val_iou'))} "
                    f"(was {_fmt(m.get('start_val_iou'))}), BIoU {_fmt(m.get('val_biou'))} "
                    f"(was {_fmt(m.get('start_val_biou'))}); {result.seconds:.0f} s")
        else:
            text = (f"v{result.version_id} saved and active ({result.seconds:.0f} s). "
                    f"{result.message or 'No held-out images, so no held-out numbers.'}")
        decision = m.get("crf") or {}
        if decision.get("message"):  # short in the dock (it must fit at 1280x720), whole on hover
            gain = (decision.get("iou_on") or 0.0) - (decision.get("iou_off") or 0.0)
            text += f" CRF on (+{gain:.2f} IoU)." if decision.get("enabled") else " CRF off."
        self.panel.set_result(text, detail=decision.get("message", ""))
        self.panel.set_class_scores(m.get("class_iou"), m.get("class_biou"))
        self.panel.set_status("Training finished.")
        if result.kept_parent:  # nothing to re-predict: the active model did not change
            self._status(f"Fine-tuned: v{result.version_id} saved but scored lower on the held-out "
                         f"images; v{result.parent_id} stays active", 20000)
            self.refresh()
            return
        self._status(f"Fine-tuned: model v{result.version_id} is active; re-predicting…")
        self.refresh()
        if self.session is not None and self.worker.root is not None and \
                self.session.project.root.resolve() == self.worker.root.resolve():
            self.model_changed()

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.panel.finish_progress(False)
        self.panel.set_result(message, error=True)
        self.panel.set_status("Training failed.")
        self._status(f"⚠ Fine-tuning failed: {message}", 20000)
        self.refresh()

    # -- versions ---------------------------------------------------------------------------
    def activate(self, version_id: int) -> bool:
        from segcore.versions import ModelStore

        if self.session is None or self.worker.is_running():
            return False
        try:
            ModelStore(self.session.project).activate(version_id)
        except Exception as exc:  # noqa: BLE001
            self.panel.set_result(f"Could not activate v{version_id}: {exc}", error=True)
            return False
        self._switched(f"v{version_id} is active; re-predicting…")
        return True

    def rollback(self) -> int | None:
        from segcore.versions import ModelStore

        if self.session is None or self.worker.is_running():
            return None
        try:
            version = ModelStore(self.session.project).rollback()
        except Exception as exc:  # noqa: BLE001 - ProjectError: no parent
            self.panel.set_result(str(exc), error=True)
            return None
        self._switched(f"Rolled back: v{version} is active; re-predicting…")
        return version

    def _switched(self, text: str) -> None:
        """Another version became active: say so, refresh the panel, re-predict."""
        self.panel.set_result(text)
        self.timings = {"click": time.monotonic()}
        self.refresh()
        self.model_changed()

    def compare_versions(self) -> bool:
        """Model ▸ Compare Versions…: what the dock's Compare… would compare."""
        pair = self.panel.compare_pair()
        if pair is None:
            self.show_versions()
            self._status("Select two versions (Ctrl+click) in the versions table, or one with a parent")
            return False
        return self.comparison.open(*pair)

    def show_versions(self) -> None:
        self.dock.show()
        self.dock.raise_()
        self.panel.versions.setFocus()

    # -- predictions after a model change ----------------------------------------------------
    def model_changed(self) -> None:
        """Reload the worker's model; re-predict everything (shown image first)."""
        if self.session is None:
            return
        if self.repredictor is not None:
            self.repredictor.stop()
        active = self.session.project.models.active(rebuild=False)
        label = f"v{active.id}" if active else "the pretrained model"
        self.repredictor = r = Repredictor(self.session, self)
        r.progress.connect(lambda d, t: self.panel.set_repredict(f"Re-predicting with {label}: {d} / {t}"))
        r.finished.connect(lambda n, secs: self._repredicted(label, n))
        r.failed.connect(lambda msg: self.panel.set_repredict(f"⚠ {msg}"))
        self.panel.set_repredict(f"Re-predicting with {label}…")
        r.start()

    def _repredicted(self, label: str, n: int) -> None:
        self.timings["predicted"] = time.monotonic()
        secs = self.timings["predicted"] - self.timings.get("click", self.timings["predicted"])
        # done: the line leaves the dock (room for Activate / Roll back) for the status bar
        self.panel.set_repredict(None)
        self._status(f"Predictions updated with {label}: {n} images, {secs:.0f} s after the click",
                     15000)

    # -- lifetime ---------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Window closing: cancel a run and wait for it; stop re-predicting."""
        if self.repredictor is not None:
            self.repredictor.stop()
        self.comparison.shutdown()
        self.worker.shutdown()


def attach_training(window: Any) -> TrainingController:  # a PanelHost with a ``training`` slot
    """Add the training dock, Model menu and toolbar button to ``window`` once; keep a reference.
    Called again, it returns the controller already attached."""
    existing = getattr(window, "training", None)
    if isinstance(existing, TrainingController):
        return existing
    controller = TrainingController(window)
    window.training = controller
    return controller

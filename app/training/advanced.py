"""The "Advanced" settings of a fine-tune run, collapsible, persisted in the app's QSettings.

Fields map onto :class:`segcore.training.TrainConfig`; their defaults are ``TrainConfig()``'s.
0 in "time budget" or "epochs" means "no limit" (TrainConfig ``None``); with neither set, the
Trainer runs its default number of epochs. The learning rate is the decoder's (``lr_head``);
the encoder's (``lr_backbone``, full mode) keeps TrainConfig's ratio to it.
Working scale: ``scale_policy`` "auto" chooses it from the corrected masks at each fine-tune
(segcore.preprocess.choose_preset); "scale" with a factor > 0 overrides it; the active model's
preset is shown beside it (``show_preset``).
Architecture: "keep the active version's" (default: fine-tune continues the active version,
or starts the default architecture in a new project) or one of ``segcore.models.ARCHITECTURES``
(``TrainConfig.arch`` + ``switch_arch``: the next fine-tune builds that architecture, a fresh
lineage when the active version is another one). Each choice shows its one-line "good for"
(from the papers until the suite benchmark measures it). The choice is not persisted: a restart
goes back to "keep", so opening another project never silently starts a new lineage there.
Keys: ``training/mode``, ``training/time_budget_s``, ``training/epochs``, ``training/lr``,
``training/input_size``, ``training/scale_policy``, ``training/working_scale``,
``training/advanced_open``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from segcore.models import ARCHITECTURES, DEFAULT_FOR_KIND
from segcore.training import MODES, TrainConfig

KEEP_ARCH = ""  # combo data of "keep the active version's architecture"

MODE_TIPS = {
    "auto": "auto: fast; with classes full mode with class weights",
    "fast": "fast: the encoder stays frozen; only the decoder trains on cached features (quickest)",
    "full": "full: every weight trains (encoder BatchNorm frozen); slower, can learn more",
    "fast+full": "fast+full: a short decoder-only warm-up, then full fine-tuning",
}


class _WrappedNote(QLabel):
    """A word-wrapped label that asks its layout for the height its text needs at its width
    (QFormLayout sizes a wrapped label for its one-line hint, clipping a long note)."""

    def __init__(self) -> None:
        super().__init__("")
        self.setWordWrap(True)

    def _fit(self) -> None:
        if self.width() > 0:
            self.setMinimumHeight(self.heightForWidth(self.width()))

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()


class AdvancedSettings(QWidget):
    """``config()`` → TrainConfig; ``set_config(cfg)``; ``changed`` when a field is edited."""

    changed = Signal()

    def __init__(self, settings: Any | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.defaults = TrainConfig()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setText("Advanced")
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.setToolTip("Show the training settings (mode, budget, learning rate, input size)")
        self.toggle.toggled.connect(self.set_open)
        layout.addWidget(self.toggle)
        self.body = QWidget()
        form = QFormLayout(self.body)
        form.setContentsMargins(18, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.mode = QComboBox()
        for i, m in enumerate(MODES):
            self.mode.addItem(m, m)
            self.mode.setItemData(i, MODE_TIPS.get(m, m), Qt.ItemDataRole.ToolTipRole)
        self.mode.setToolTip("\n".join(MODE_TIPS.values()))
        self.arch = QComboBox()
        self.arch.setObjectName("archCombo")
        self.arch.addItem("keep active", KEEP_ARCH)  # fits the 1280x720 dock
        self.arch.setItemData(0, "Fine-tune the active version (a new project starts "
                                 f"{ARCHITECTURES[DEFAULT_FOR_KIND['binary']].title}, or with classes "
                                 f"{ARCHITECTURES[DEFAULT_FOR_KIND['classes']].title})",
                              Qt.ItemDataRole.ToolTipRole)
        for name, info in ARCHITECTURES.items():
            self.arch.addItem(info.title, name)
            self.arch.setItemData(self.arch.count() - 1, f"{name}: {info.good_for_line}",
                                  Qt.ItemDataRole.ToolTipRole)
        self.arch.setToolTip("Architecture of the next fine-tune; another one than the active "
                             "version's starts a new lineage from its pretrained weights")
        # long titles must not widen the Training dock: the combo elides, the popup shows them whole
        self.arch.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.arch.setMinimumContentsLength(14)
        self.arch_note = _WrappedNote()
        self.arch_note.setObjectName("archNote")
        self.arch_note.setVisible(False)
        self.budget = QSpinBox()
        self.budget.setRange(0, 24 * 3600)
        self.budget.setSingleStep(30)
        self.budget.setSuffix(" s")
        self.budget.setSpecialValueText("no limit")
        self.budget.setToolTip("Stop after this many seconds (all phases together), plus "
                               f"{self.defaults.budget_per_extra_image_s:g} s per training image beyond "
                               f"{self.defaults.budget_free_images}; the learning rate decays to zero "
                               "exactly then")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.epochs.setSpecialValueText("auto")
        self.epochs.setToolTip("Epochs per phase; auto = until the time budget ends "
                               "(or the trainer's default without a budget)")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setToolTip("Learning rate of the decoder; the encoder (full mode) uses "
                           f"{self.defaults.lr_backbone / self.defaults.lr_head:g}× this")
        self.input_size = QSpinBox()
        self.input_size.setRange(64, 1024)
        self.input_size.setSingleStep(32)
        self.input_size.setSuffix(" px")
        self.input_size.setToolTip("Training crops are at most this many pixels square (small images "
                                   "of large objects get a smaller whole-image view, at most 2× "
                                   "their size); smaller is faster and uses less memory")
        self.policy = QComboBox()
        for value, text, tip in (
                ("auto", "auto", "chosen at each fine-tune from the typical object size in your masks"),
                ("stretch", "whole image", "every image resized to one square view (objects that fill the frame)"),
                ("scale", "working scale", "images resized by one factor, aspect kept, predicted in tiles "
                                           "(small objects, tiny tiles, very large images)")):
            self.policy.addItem(text, value)
            self.policy.setItemData(self.policy.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.policy.setToolTip("What the model sees of an image")
        self.scale = QDoubleSpinBox()
        self.scale.setDecimals(2)
        self.scale.setRange(0.0, 8.0)
        self.scale.setSingleStep(0.25)
        self.scale.setPrefix("×")
        self.scale.setSpecialValueText("auto")
        self.scale.setToolTip("Working scale: resize factor of the images (0 = chosen from the masks "
                              "so a typical object spans ~40 px)")
        self.preset_label = QLabel("")
        self.preset_label.setWordWrap(True)
        self.preset_label.setObjectName("presetLabel")
        form.addRow("Model", self.arch)
        form.addRow(self.arch_note)  # the whole width: a measured line is two to four lines long
        form.addRow("Mode", self.mode)
        form.addRow("Time budget", self.budget)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Input size", self.input_size)
        form.addRow("View", self.policy)
        form.addRow("Scale", self.scale)
        form.addRow("", self.preset_label)
        layout.addWidget(self.body)
        self.set_config(self._load())
        self.set_open(bool(self._value("advanced_open", False, bool)))
        for w in (self.mode, self.policy):
            w.currentIndexChanged.connect(self._edited)
        self.arch.currentIndexChanged.connect(self._arch_changed)
        for s in (self.budget, self.epochs, self.input_size, self.lr, self.scale):
            s.valueChanged.connect(self._edited)

    # -- open / closed ----------------------------------------------------------------------
    def set_open(self, open_: bool) -> None:
        self.toggle.blockSignals(True)
        self.toggle.setChecked(open_)
        self.toggle.blockSignals(False)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)
        self.body.setVisible(open_)
        self._store("advanced_open", open_)

    def is_open(self) -> bool:
        return self.toggle.isChecked()

    # -- values -----------------------------------------------------------------------------
    def config(self) -> TrainConfig:
        lr = float(self.lr.value())
        ratio = self.defaults.lr_backbone / self.defaults.lr_head
        arch = str(self.arch.currentData() or KEEP_ARCH)
        return replace(self.defaults, arch=arch or self.defaults.arch, switch_arch=bool(arch),
                       mode=str(self.mode.currentData()),
                       time_budget_s=float(self.budget.value()) or None,
                       epochs=int(self.epochs.value()) or None, lr_head=lr, lr_backbone=lr * ratio,
                       input_size=int(self.input_size.value()), scale_policy=str(self.policy.currentData()),
                       working_scale=float(self.scale.value()))

    def set_arch(self, name: str) -> None:
        """Choose the architecture of the next fine-tune ("" = keep the active version's)."""
        index = self.arch.findData(name)
        if index < 0:
            raise ValueError(f"unknown architecture {name!r}")
        self.arch.setCurrentIndex(index)

    def _arch_changed(self, *_: Any) -> None:
        name = str(self.arch.currentData() or KEEP_ARCH)
        info = ARCHITECTURES.get(name)
        warning = info.device_note(self.defaults.device) if info else ""
        self.arch_note.setText((info.good_for_line + (f"\n{warning}" if warning else "")) if info else "")
        self.arch_note.setVisible(info is not None)
        self.changed.emit()

    def show_preset(self, text: str) -> None:
        """What the active model sees (e.g. "working scale ×2.70 (tiles 320 px): objects ~15 px")."""
        self.preset_label.setText(f"Active model: {text}" if text else "")

    def set_config(self, cfg: TrainConfig) -> None:
        widgets = (self.mode, self.budget, self.epochs, self.lr, self.input_size, self.policy, self.scale)
        for w in widgets:
            w.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(cfg.mode)))
        self.budget.setValue(int(cfg.time_budget_s or 0))
        self.epochs.setValue(int(cfg.epochs or 0))
        self.lr.setValue(float(cfg.lr_head))
        self.input_size.setValue(int(cfg.input_size))
        self.policy.setCurrentIndex(max(0, self.policy.findData(cfg.scale_policy)))
        self.scale.setValue(float(cfg.working_scale))
        for w in widgets:
            w.blockSignals(False)

    def reset(self) -> None:
        self.set_config(self.defaults)
        self._edited()

    def _edited(self, *_: Any) -> None:
        cfg = self.config()
        for key, value in (("mode", cfg.mode), ("time_budget_s", cfg.time_budget_s or 0),
                           ("epochs", cfg.epochs or 0), ("lr", cfg.lr_head),
                           ("input_size", cfg.input_size), ("scale_policy", cfg.scale_policy),
                           ("working_scale", cfg.working_scale)):
            self._store(key, value)
        self.changed.emit()

    def _load(self) -> TrainConfig:
        d = self.defaults
        mode = str(self._value("mode", d.mode, str))
        policy = str(self._value("scale_policy", d.scale_policy, str))
        return replace(d, mode=mode if mode in MODES else d.mode,
                       time_budget_s=float(self._value("time_budget_s", d.time_budget_s or 0, float)) or None,
                       epochs=int(self._value("epochs", d.epochs or 0, int)) or None,
                       lr_head=float(self._value("lr", d.lr_head, float)),
                       input_size=int(self._value("input_size", d.input_size, int)),
                       scale_policy=policy if policy in ("auto", "stretch", "scale") else d.scale_policy,
                       working_scale=float(self._value("working_scale", d.working_scale, float)))

    # -- QSettings through app.settings.Settings (or nothing) ---------------------------------
    def _value(self, key: str, default: Any, type_: type) -> Any:
        if self.settings is None:
            return default
        return self.settings.value(f"training/{key}", default, type_)

    def _store(self, key: str, value: Any) -> None:
        if self.settings is not None:
            self.settings.set_value(f"training/{key}", value)

"""How long a training run may go on, how far it is, and how long it has left (ETA).

Conventions
- One clock: ``time.monotonic()`` seconds. A run starts when Trainer.fit starts
  (:meth:`RunBudget.begin`); ``TrainConfig.time_budget_s`` counts from there.
- A phase ("fast" | "full") ends at its deadline or after its epochs, whichever comes first
  (:meth:`RunBudget.phase`); in "fast+full" the fast phase gets ``fast_share`` of the budget and
  ``fast_epochs`` epochs. With neither a budget nor epochs, ``DEFAULT_EPOCHS`` epochs run.
- Progress of a phase (:meth:`PhaseClock.progress`) is the larger of steps / planned steps and
  elapsed / time allowed; the poly learning rate and the stop decision both read it.
- ETA: the seconds left of the whole run. At an epoch's end the Trainer puts it into the
  EpochReport (:meth:`PhaseClock.eta`: the budget left, else the phase's epochs left at its pace so
  far); between epochs a GUI estimates it from the steps it is told about (:class:`StepEta`: steps
  left at the pace so far, never beyond the budget left). Both are defined here only.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from .config import DEFAULT_EPOCHS, EpochReport, TrainConfig


def _budget_left(start: float, budget_s: float, now: float) -> float:
    return max(0.0, start + budget_s - now)


@dataclass(frozen=True)
class PhaseBudget:
    """One phase's limits: a deadline (monotonic seconds) and/or a number of epochs."""

    deadline: float | None
    epochs: int | None


class RunBudget:
    """The clock and limits of one Trainer.fit run."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.start = 0.0

    def begin(self) -> None:
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def phase(self, phase: str, phases: list[str]) -> PhaseBudget:
        """The limits of ``phase`` when the run has ``phases``."""
        cfg = self.config
        split = phase == "fast" and len(phases) == 2
        deadline = None
        if cfg.time_budget_s is not None:
            deadline = self.start + cfg.time_budget_s * (cfg.fast_share if split else 1.0)
        if split:
            epochs = cfg.fast_epochs if cfg.fast_epochs is not None else cfg.epochs
        else:
            epochs = cfg.epochs
        if epochs is None and deadline is None:
            epochs = DEFAULT_EPOCHS
        return PhaseBudget(deadline, epochs)

    def clock(self, limits: PhaseBudget, n_batches: int) -> PhaseClock:
        """Start timing a phase of ``n_batches`` steps per epoch."""
        return PhaseClock(self, limits, n_batches)


class PhaseClock:
    """Progress, planned length and ETA of one running phase (started when created)."""

    def __init__(self, run: RunBudget, limits: PhaseBudget, n_batches: int) -> None:
        self.run = run
        self.deadline = limits.deadline
        self.epochs = limits.epochs
        self.start = time.monotonic()
        self.steps = (limits.epochs or 0) * n_batches  # planned steps (0: by time only)

    def _time_share(self, now: float) -> float:
        assert self.deadline is not None
        return (now - self.start) / max(self.deadline - self.start, 1e-6)

    def progress(self, step_in_phase: int) -> float:
        """Share of the phase done before step ``step_in_phase + 1`` (>= 1.0: stop)."""
        progress = step_in_phase / self.steps if self.steps else 0.0
        if self.deadline is not None:
            progress = max(progress, self._time_share(time.monotonic()))
        return progress

    def total_steps(self, steps_before: int, step_in_phase: int) -> int:
        """Estimated steps of the run so far plus this phase's (exact without a deadline)."""
        if self.deadline is None:
            return steps_before + self.steps
        est = int(step_in_phase / max(self._time_share(time.monotonic()), 1e-6))
        if self.steps:
            est = min(est, self.steps)
        return steps_before + est

    def planned_epochs(self, epoch: int) -> int:
        """The phase's epochs: as configured, else estimated from the pace of ``epoch`` epochs."""
        if self.epochs is not None:
            return self.epochs
        assert self.deadline is not None
        per_epoch = (time.monotonic() - self.start) / epoch
        return max(epoch, int(math.ceil((self.deadline - self.start) / max(per_epoch, 1e-6))))

    def eta(self, epoch: int, planned: int) -> float:
        """Seconds left of the run after ``epoch`` of ``planned`` epochs of this phase: the time
        budget left, else this phase's remaining epochs at its pace (in "fast+full" without a
        budget, the full phase's length is unknown until it starts: a lower bound)."""
        now = time.monotonic()
        budget = self.run.config.time_budget_s
        if budget is not None:
            return _budget_left(self.run.start, budget, now)
        per_epoch = (now - self.start) / max(epoch, 1)
        return per_epoch * max(planned - epoch, 0)


class StepEta:
    """ETA between epochs, from the step callbacks (``TrainCallbacks.on_step``) and the epoch
    reports of a run whose budget is ``time_budget_s`` (None: no budget).

    ``step()`` on every step, ``epoch()`` on every report; ``eta()`` is NaN until two steps
    were seen and no budget is known."""

    def __init__(self, time_budget_s: float | None) -> None:
        self.time_budget_s = time_budget_s
        self.first_step: float | None = None
        self.fit_start: float | None = None  # Trainer.fit's start (its budget clock), from reports

    def step(self, now: float | None = None) -> None:
        if self.first_step is None:
            self.first_step = time.monotonic() if now is None else now

    def epoch(self, report: EpochReport, now: float | None = None) -> None:
        self.fit_start = (time.monotonic() if now is None else now) - report.elapsed_s

    def eta(self, step: int, total: int, now: float | None = None) -> float:
        """Seconds left after ``step`` of (an estimated) ``total`` steps."""
        now = time.monotonic() if now is None else now
        by_steps = float("nan")
        if self.first_step is not None and step > 1:
            by_steps = (now - self.first_step) / (step - 1) * max(total - step, 0)
        if self.time_budget_s is not None and self.first_step is not None:
            start = self.fit_start if self.fit_start is not None else self.first_step
            by_budget = _budget_left(start, self.time_budget_s, now)
            return by_budget if math.isnan(by_steps) else min(by_budget, by_steps)
        return by_steps

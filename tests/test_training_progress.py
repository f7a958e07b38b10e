"""segcore.training.budget and the epoch log rows: phase limits, progress, the ETA a GUI shows
between epochs (StepEta, on a given clock) and EpochReport ⇄ stored row."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from segcore.project import Project
from segcore.training import EpochReport, StepEta, TrainConfig
from segcore.training.budget import PhaseBudget, RunBudget
from segcore.training.config import DEFAULT_EPOCHS


def test_phase_limits_split_the_budget_and_default_the_epochs():
    run = RunBudget(TrainConfig(mode="fast+full", time_budget_s=100.0, fast_share=0.3, epochs=4,
                                fast_epochs=2))
    run.start = 1000.0
    assert run.phase("fast", ["fast", "full"]) == PhaseBudget(1030.0, 2)
    assert run.phase("full", ["fast", "full"]) == PhaseBudget(1100.0, 4)
    assert run.phase("fast", ["fast"]) == PhaseBudget(1100.0, 4)
    plain = RunBudget(TrainConfig(time_budget_s=None, epochs=None))
    assert plain.phase("full", ["full"]) == PhaseBudget(None, DEFAULT_EPOCHS)


def test_progress_and_step_total_by_epochs():
    run = RunBudget(TrainConfig(time_budget_s=None, epochs=3))
    run.begin()
    clock = run.clock(run.phase("full", ["full"]), n_batches=4)
    assert clock.progress(0) == 0.0 and clock.progress(6) == 0.5 and clock.progress(12) == 1.0
    assert clock.total_steps(steps_before=5, step_in_phase=3) == 17
    assert clock.planned_epochs(1) == 3


def test_step_eta_by_pace_and_by_budget():
    eta = StepEta(time_budget_s=None)
    assert math.isnan(eta.eta(1, 10, now=0.0))  # nothing seen yet
    eta.step(now=10.0)
    assert math.isnan(eta.eta(1, 10, now=10.0))  # one step gives no pace
    assert eta.eta(3, 10, now=14.0) == pytest.approx(14.0)  # 2 s a step, 7 steps left

    timed = StepEta(time_budget_s=60.0)
    timed.step(now=100.0)
    assert timed.eta(1, 50, now=100.0) == pytest.approx(60.0)  # the budget, from the first step
    timed.epoch(EpochReport("fast", 1, 3, 0.5, None, None, elapsed_s=30.0, eta_s=30.0), now=120.0)
    assert timed.eta(3, 1000, now=120.0) == pytest.approx(30.0)  # fit began at 90 s: 30 s left by budget
    assert timed.eta(41, 50, now=120.0) == pytest.approx(4.5)    # fewer steps left than the budget
    assert timed.eta(3, 1000, now=500.0) == 0.0                  # never negative


def test_epoch_report_row_round_trip_through_the_project(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    reports = [EpochReport("fast", 1, 2, 0.7, 0.4, 0.2, 3.5, 10.0),
               EpochReport("fast", 2, 2, 0.6, None, None, 7.0, 6.0),
               EpochReport("full", 1, 1, 0.5, 0.6, 0.3, 12.25, 0.0)]
    with Project.open(tmp_path) as project:
        for i, r in enumerate(reports, start=1):
            project.log_epoch(None, "run", i, r.to_row())
        rows = project.epoch_history("run")
    back = [EpochReport.from_row(row, len(rows)) for row in rows]
    assert [(b.phase, b.epoch, b.train_loss, b.val_iou, b.val_biou, b.elapsed_s) for b in back] == \
        [(r.phase, r.epoch, r.train_loss, r.val_iou, r.val_biou, r.elapsed_s) for r in reports]
    assert all(b.epochs == 3 and b.eta_s == 0.0 for b in back)
    old = EpochReport.from_row({"epoch": 4, "train_loss": 0.1}, 5)  # a row logged before phase_epoch
    assert (old.phase, old.epoch, old.val_iou, old.elapsed_s) == ("", 4, None, 0.0)

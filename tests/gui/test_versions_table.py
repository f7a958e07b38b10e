"""The versions table fits its dock: no horizontal scrolling, full values in tooltips."""

from __future__ import annotations

import time
from types import SimpleNamespace

from app.training.versions_table import VersionsTable


def _version(i: int, active: bool) -> SimpleNamespace:
    return SimpleNamespace(
        id=i, parent=i - 1 if i > 1 else None, active=active, created=time.time(), arch="deeplabv3plus_mobilenet_v2",
        file=f"v{i}.pt", meta={"train_config": {"mode": "fast"}, "data": {"train": [1] * 17, "held_out": [1] * 3}},
        metrics={"start_val_iou": 0.61234, "val_iou": 0.87654, "start_val_biou": 0.21, "val_biou": 0.66})


def test_versions_table_fits_a_narrow_dock_and_keeps_full_values_in_tooltips(qtbot):
    table = VersionsTable()
    qtbot.addWidget(table)
    table.resize(235, 160)  # the width the Training dock gives it in a 1400-px window
    table.show()
    qtbot.waitExposed(table)
    table.set_versions([_version(i, i == 3) for i in range(1, 4)])
    qtbot.wait(20)
    assert table.horizontalScrollBar().maximum() == 0 or not table.horizontalScrollBar().isVisible()
    header = table.horizontalHeader()
    assert sum(header.sectionSize(c) for c in range(table.columnCount())) <= table.viewport().width() + 1
    assert table.item(0, 0).text() == "● v3 ← v2" and table.item(1, 0).text() == "v2 ← v1"
    assert table.item(2, 0).text() == "v1 new V3+"  # a lineage's first version, its architecture
    assert "new lineage: a fresh deeplabv3plus_mobilenet_v2" in table.item(2, 0).toolTip()
    assert table.item(0, 1).text() == "0.877" and table.item(0, 2).text() == "0.660"
    assert "IoU 0.612 → 0.877" in table.item(0, 1).toolTip() and "mode fast" in table.item(0, 1).toolTip()

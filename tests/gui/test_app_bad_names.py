"""A file name that is not valid UTF-8 does not stop the app from opening the folder (issue 14,
item 4): the image gets an error row, every other image works."""

from __future__ import annotations

import os

from app.panels.image_list import metrics_text

from .conftest import N_IMAGES, make_window


def test_non_utf8_file_name_gets_an_error_row(qtbot, demo_dir, fake_model):
    first = sorted(demo_dir.glob("*.png"))[0]
    with open(os.fsencode(demo_dir) + b"/aaa\xff.png", "wb") as fh:
        fh.write(first.read_bytes())
    window = make_window(qtbot, demo_dir)
    model = window.image_list.model
    assert model.rowCount() == N_IMAGES + 1
    row = model.stems().index("aaa\\xff")
    assert "file name is not valid UTF-8" in metrics_text(model.record_at(row))
    assert window.session.show("aaa\\xff") is False  # refused with the reason, not a crash
    assert "not valid UTF-8" in window.session.project.record("aaa\\xff").error
    other = next(s for s in model.stems() if s != "aaa\\xff")
    assert window.session.show(other) is True
    window.close()

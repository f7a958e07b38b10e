"""Background-job relays are Qt children of their owners (two core dumps showed why).

A parentless relay is owned by its Python wrapper. When its owner was destroyed by a posted
deleteLater (a closed Session), Qt called the relay's virtual disconnectNotify, PySide looked up
a Python override on a wrapper that was already freed, and the process segfaulted.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QEvent, QObject


def _cycle(qapp, make) -> None:
    parent = QObject()
    owner = make(parent)
    assert owner._relay.parent() is owner
    del owner
    gc.collect()
    parent.deleteLater()
    del parent
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    qapp.processEvents()


def test_metrics_and_thumbnail_relays_die_with_their_owners(qapp, demo_project):
    from app.workers.metrics import MetricsJobs
    from app.workers.thumbnails import ThumbnailProvider
    from segcore.project import Project

    project = Project.open(demo_project)
    try:
        for _ in range(20):
            _cycle(qapp, MetricsJobs)

            def provider(parent):
                p = ThumbnailProvider(parent)
                p.set_project(project)
                assert p.pixmap(project.stems()[0]) is None  # queues a job that reports through the relay
                p.wait(5000)
                return p

            _cycle(qapp, provider)
    finally:
        project.close()

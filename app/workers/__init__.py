"""Background workers of the GUI: predictions (QThread), thumbnails and metrics (QThreadPool)."""

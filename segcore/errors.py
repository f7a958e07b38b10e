"""The exception types SegLoop raises. Every message names the file (if any) and the reason."""

from __future__ import annotations


class SegLoopError(Exception):
    """Base class of every error SegLoop raises on purpose."""


class ImageReadError(SegLoopError):
    """An image could not be read (missing, corrupt, unsupported format, too large)."""


class MaskReadError(SegLoopError):
    """A mask could not be read or does not fit its image."""


class MaskWriteError(SegLoopError):
    """A mask could not be written (read-only folder, disk full, bad array)."""


class ProjectError(SegLoopError):
    """A project folder could not be opened or its index could not be used."""


class ReadOnlyProjectError(ProjectError):
    """A write was attempted on a project that was opened read-only."""


class CRFUnavailableError(SegLoopError):
    """DenseCRF (the `pydensecrf` module from `pydensecrf2`) cannot be used here."""


class CheckpointError(SegLoopError):
    """A model checkpoint is missing, corrupt, or does not match its architecture."""


class WeightsUnavailableError(SegLoopError):
    """Pretrained weights could not be found, downloaded or verified."""


class TrainingError(SegLoopError):
    """Training stopped for a reason the user must see (NaN loss, no data, out of memory)."""


class FolderError(SegLoopError):
    """A folder of images or masks is missing, unreadable, or holds nothing usable."""

"""Give the heap memory a finished phase freed back to the operating system.

On CPU, torch allocates tensors with the C library's ``malloc``. glibc keeps what a phase frees
(the encoder activations of the fast-mode feature pass, a training step's autograd graph, the
cold-start embedding of every image) in its arenas for reuse instead of returning it: the
process's resident size stays at the phase's high-water mark although the memory is free.
glibc's dynamic mmap threshold is why: after the first large tensor is freed, tensors up to
32 MB come from the arenas instead of their own mappings. ``malloc_trim(0)`` returns every free
whole page of every arena (madvise), so the next phase starts from what is really in use.

Measured (bench_memory's fast step on its own, micro-batch 4 at 320 px): after three steps
RSS 1151 MB with 199 MB of it in use and 371 MB free in the arenas; ``malloc_trim`` → 780 MB.
The call takes milliseconds; the pages it returns are faulted in again when reused, so it
belongs between phases, never inside the step loop.

torch offers no equivalent for its CPU allocator (``torch.cuda.empty_cache`` is CUDA's). Not
glibc (macOS, Windows, musl): :func:`release_free_memory` does nothing and returns False.

Inside a phase, trimming cannot help (the free chunks are reused within the next step), so
:func:`configure_allocator` fixes glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES`: every
tensor of 16 MB or more gets its own mapping, returned to the OS when the tensor dies, instead of
a chunk of an arena that fragments. Measured (fast-mode click on 17 Weizmann images, 40 s budget,
peak RSS while training, 3 runs each, session 11): glibc's dynamic threshold 1590 / 1785 / 1780 MB
(23 / 25 / 24 steps), fixed 16 MB 1488 / 1511 / 1531 MB (29 / 26 / 28 steps). 8 MB: 1421 MB but 20
steps (each mapping's pages are faulted in and zeroed again); 4 MB: 1382 MB, 18 steps; 32 MB: 1624
MB. One arena (``M_ARENA_MAX`` 1) on top of 16 MB: 1482 MB, 22 steps, not adopted.

What a process holds before any image is read is decided by how torch is imported;
:func:`import_torch_lean` (through :func:`prepare_process`, which the app and the CLI call at start)
does it the small way:

- torchvision's import reaches ``torch._dynamo``, which imports Triton when it is installed (CUDA
  wheels of torch depend on it): +83 MB RSS (``libtriton.so`` alone 76 MB) and 0.4 s. Triton
  compiles GPU kernels for ``torch.compile``, which SegLoop never calls, so without a CUDA device
  it is left out (a ``None`` entry in ``sys.modules`` is how Python spells "not installed", and
  torch then treats it as absent). ``SEGLOOP_KEEP_TRITON=1`` keeps it.
- PySide6 installs an import hook that reads the source of every module imported after it
  (``inspect.getsource``, kept in ``linecache``): torch and torchvision imported after Qt leave
  about 1,700 source files, 91 MB, in memory; imported before it, 91 files. So torch comes first.

Measured (import torch, torchvision, PySide6.QtWidgets, segcore.training, session 12): Qt first
729 MB; torch first 638 MB; both with Triton left out. Triton imported: +83 MB either way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from typing import Any


@functools.cache
def _glibc() -> Any:
    """The C library when it is glibc (it has ``malloc_trim`` and ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.malloc_trim.restype = ctypes.c_int
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def _malloc_trim() -> Any:
    """glibc's ``malloc_trim`` (None when the C library is not glibc)."""
    libc = _glibc()
    return None if libc is None else libc.malloc_trim


MMAP_THRESHOLD_BYTES = 16 * 2**20
_M_MMAP_THRESHOLD = -3  # glibc's malloc.h


@functools.cache
def configure_allocator() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD_BYTES for this process (once; any thread).
    True when set; False when this is not glibc or the variable ``SEGLOOP_MALLOC_DEFAULTS`` is
    set (to measure glibc's own behaviour)."""
    libc = _glibc()
    if os.environ.get("SEGLOOP_MALLOC_DEFAULTS") or libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


KEEP_TRITON_ENV = "SEGLOOP_KEEP_TRITON"


def import_torch_lean() -> None:
    """Import torch and torchvision (see the module doc): before any GUI toolkit, and without
    Triton when there is no CUDA device. Call it first thing in a process; later calls, or a
    process that imported torchvision already, change nothing."""
    import torch

    if ("torchvision" not in sys.modules and not os.environ.get(KEEP_TRITON_ENV)
            and not torch.cuda.is_available()):
        sys.modules.setdefault("triton", None)  # type: ignore[arg-type]
    import torchvision  # noqa: F401


def prepare_process() -> None:
    """What a SegLoop process does first, before it imports a GUI toolkit: glibc's allocator
    setting (before the first large tensor), then torch and torchvision the lean way."""
    configure_allocator()
    import_torch_lean()


def release_free_memory() -> bool:
    """Return the free memory of every malloc arena to the OS; True when some was returned
    (glibc's answer), False when there was none or this is not glibc."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False

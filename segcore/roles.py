"""Held-out roles that never move (design.md, "Data model rules").

An image's role (``train`` or ``held_out``) is decided once, when it first becomes DONE, stored
in the index (``images.role``) and never changes on its own; the user may move a held-out image
into training explicitly (``Project.use_for_training``, recorded in ``images.role_note``).

Rule for new DONE images, applied in one batch by :func:`assign`:
- the target is ``held_out_target(n)`` held-out images for ``n`` done images with a role: none
  below ``MIN_FOR_HELD_OUT`` (4), else ``HELD_OUT_SHARE`` (15 %) rounded, at least one;
- a batch on a project without any role yet (an index of schema 1 being migrated, or a folder
  opened with masks already there) uses the old hash rule (sha1(stem) % 5 == 0, capped at the
  target, at least the smallest hash), so migrated projects keep the held-out images their
  existing versions were scored on;
- later batches hold out new images (smallest hash first) while the held-out count is below the
  target for the new total. Images moved into training by the user count as train, so the next
  done image refills the share.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ._records import ROLE_HELD_OUT, ROLE_TRAIN

HELD_OUT_EVERY = 5
MIN_FOR_HELD_OUT = 4
HELD_OUT_SHARE = 0.15


def stem_hash(stem: str) -> int:
    return int.from_bytes(hashlib.sha1(stem.encode("utf-8")).digest()[:8], "big")


def held_out_target(n_done: int) -> int:
    """How many of ``n_done`` images should be held out."""
    if n_done < MIN_FOR_HELD_OUT:
        return 0
    return max(1, int(n_done * HELD_OUT_SHARE + 0.5))


def _hash_rule(stems: list[str]) -> set[str]:
    target = held_out_target(len(stems))
    if target == 0:
        return set()
    held = [s for s in stems if stem_hash(s) % HELD_OUT_EVERY == 0] or [min(stems, key=stem_hash)]
    return set(sorted(held, key=stem_hash)[:target])


def assign(new: Sequence[str], n_train: int, n_held: int) -> dict[str, str]:
    """Roles for the newly done stems ``new``, given the counts of images that have a role."""
    new = sorted(set(new))
    if not new:
        return {}
    if n_train == 0 and n_held == 0:
        held = _hash_rule(new)
    else:
        free = max(0, held_out_target(n_train + n_held + len(new)) - n_held)
        held = set(sorted(new, key=stem_hash)[:free])
    return {s: ROLE_HELD_OUT if s in held else ROLE_TRAIN for s in new}

"""Assisted masks without SAM-type weights: box → GrabCut, scribbles → DenseCRF on the model.

No Qt here; ``app/canvas/assist.py`` wires these to the canvas tools, and
``tests/benchmarks/bench_assist.py`` scores them with a simulated clicker.

Conventions
-----------
* ``image_rgb`` is HxWx3 uint8 RGB; rectangles are ``(x0, y0, x1, y1)`` in image pixels,
  half-open (x1, y1 exclusive), like the canvas's ``Rect``.
* Every function works on a crop around its rectangle (never on the whole image) and, when
  that crop's long side exceeds ``max_side``, on a downscaled copy whose result is upsampled
  (bilinear on the soft result, then thresholded / argmax), so a 12 MP photo costs what a
  0.25 MP crop costs.
* Scribbles are a label map the size of the image: class index where the user drew,
  :data:`NO_SCRIBBLE` (255, the void value) elsewhere.

The rules for what an assist may change in a mask (``apply_box`` and ``merge_scribble_update``)
live here too, so the app and the benchmark use one rule.
"""

from ._geometry import NO_SCRIBBLE, Box, Update, draw_stroke
from .grabcut import GrabCutParams, apply_box, box_update, grabcut_box, grabcut_refine, refine_update
from .scribbles import (GROW_TRIES, ScribbleParams, ScribbleResult, merge_scribble_update,
                        roi_around, scribble_refine, scribble_roi, scribble_update)

__all__ = ["GROW_TRIES", "NO_SCRIBBLE", "Box", "GrabCutParams", "ScribbleParams", "ScribbleResult",
           "Update", "apply_box", "box_update", "draw_stroke", "grabcut_box", "grabcut_refine",
           "merge_scribble_update", "refine_update", "roi_around", "scribble_refine",
           "scribble_roi", "scribble_update"]

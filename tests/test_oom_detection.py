"""segcore.inference.is_oom: every allocator's out-of-memory message makes prediction fall back to
smaller tiles (torch's CPU allocator and OpenCV word it differently from CUDA)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from segcore.inference import Predictor, is_oom
from segcore.models import build

pytestmark = pytest.mark.usefixtures("offline_one_thread")

CPU_ALLOC = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                         "allocate memory: you tried to allocate 9437184000 bytes. Error code 12 "
                         "(Cannot allocate memory)")
CV2_ALLOC = cv2.error("OpenCV(4.10.0) /io/opencv/modules/core/src/alloc.cpp:73: error: "
                      "(-4:Insufficient memory) Failed to allocate 9437184000 bytes in function "
                      "'OutOfMemoryError'")


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build("deeplabv3_mobilenet_v2", num_classes=2, pretrained=False).eval()


@pytest.mark.parametrize("exc", [CPU_ALLOC, CV2_ALLOC, MemoryError("Unable to allocate 7.28 TiB"),
                                 RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")],
                         ids=["torch-cpu", "opencv", "MemoryError", "cuda"])
def test_allocator_messages_are_oom(exc):
    assert is_oom(exc)


@pytest.mark.parametrize("exc", [RuntimeError("shape mismatch"), ValueError("out of memory"),
                                 cv2.error("(-215:Assertion failed) !ssize.empty()")])
def test_other_errors_are_not_oom(exc):
    assert not is_oom(exc)


@pytest.mark.parametrize("exc", [CPU_ALLOC, CV2_ALLOC], ids=["torch-cpu", "opencv"])
def test_prediction_falls_back_to_smaller_tiles(small_model, exc):
    predictor = Predictor(small_model, device="cpu", optimize=False, input_size=128)
    real = predictor._runner
    sizes: list[int] = []

    def forward(x):
        sizes.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > 64:
            raise exc
        return real(x)

    predictor._runner = forward
    pred = predictor.predict(np.random.default_rng(0).integers(0, 256, (120, 100, 3), np.uint8))
    assert pred.mask.shape == (120, 100)
    assert predictor.tile_size == 64 and sizes[0] == 128 and max(sizes[1:]) == 64

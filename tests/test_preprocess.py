"""Working scale (segcore.preprocess), void labels and class weights (the CRF decision: test_crf)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segcore import io, metrics
from segcore.models import build
from segcore.preprocess import (Preset, choose_preset, padded_forward, preset_of, stretch_side,
                                tiled_logits, to_tensor)
from segcore.training.data import PreparedPair, crop_view, prepare_train_pairs
from segcore.training.losses import class_weights, segmentation_loss


def _discs(h: int, w: int, radius: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        cy, cx = rng.integers(radius, h - radius), rng.integers(radius, w - radius)
        m[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = 1
    return m


# ------------------------------------------------------------------ the working-scale choice
def test_frame_filling_objects_keep_the_whole_image_in_view():
    masks = [_discs(300, 400, 110, 1, s) for s in range(4)]
    p = choose_preset(masks, 320)
    assert p.policy == "stretch"


def test_small_objects_in_normal_images_are_enlarged():
    masks = [_discs(256, 256, 5, 20, s) for s in range(4)]  # nuclei of ~9 px (sqrt area)
    p = choose_preset(masks, 320)
    assert p.policy == "scale" and p.scale > 3.0
    h, w = p.working_shape(256, 256)
    assert h > 750 and w > 750  # each nucleus now spans ~32 working pixels


def test_small_objects_in_huge_images_get_a_working_scale():
    masks = [_discs(1040, 1388, 9, 30, s) for s in range(3)]  # 16 px nuclei, 3.7 px if stretched
    p = choose_preset(masks, 320)
    assert p.policy == "scale" and 1.5 < p.scale < 2.5
    h, w = p.working_shape(1040, 1388)
    assert h * w <= 4.05e6 and w > 1388  # enlarged, within the working ceiling


def test_tiny_tiles_are_upsampled_not_lost():
    masks = [_discs(101, 101, 5, 3, s) for s in range(4)]
    p = choose_preset(masks, 320)
    assert p.policy == "stretch"  # nuclei of 9 px become 28 px in the 320-px view
    assert min(p.working_shape(101, 101)) >= 320  # at least one full view, never a 101-px speck
    q = Preset("scale", 320, scale=1.0)
    assert min(q.working_shape(101, 101)) >= 320  # the working scale also fits a tile to a view


def test_tiles_of_one_large_object_get_a_smaller_view():
    masks = [_discs(112, 112, 40, 1, s) for s in range(4)]  # a lesion over 40 % of each tile
    p = choose_preset(masks, 320)
    assert p.policy == "stretch" and p.working_shape(112, 112) == (224, 224)  # x2, not x2.9
    assert stretch_side(masks, 320) == 224
    assert stretch_side(masks, 192) == 192                   # input_size stays the cap
    assert stretch_side([_discs(101, 101, 40, 1)], 320) == 224  # 2 x 101 = 202, rounded up to 32
    assert stretch_side([_discs(30, 30, 10, 1)], 320) == 128    # the floor for very small images
    assert stretch_side([_discs(30, 30, 10, 1)], 96) == 96      # ... never above input_size


def test_the_view_keeps_its_size_for_small_objects_photos_and_empty_masks():
    nuclei = [_discs(112, 112, 8, 4, s) for s in range(4)]  # 14 px nuclei: 40 px at 320
    assert stretch_side(nuclei, 320) == 320                   # 224 would leave them 28 px
    assert choose_preset(nuclei, 320).input_size == 320
    photos = [_discs(300, 400, 110, 1, s) for s in range(2)]
    assert choose_preset(photos, 320).input_size == 320       # large images: unchanged
    assert stretch_side([np.zeros((100, 90), np.uint8)], 320) == 320  # no objects: no evidence
    assert stretch_side([], 320) == 320
    mixed = [_discs(112, 112, 40, 1, s) for s in range(3)] + [np.zeros((112, 112), np.uint8)] * 3
    assert stretch_side(mixed, 320) == 224                    # empty tiles do not count as objects


def test_huge_images_are_capped_at_the_working_ceiling():
    p = Preset("scale", 320, scale=3.0, max_work_mp=4.0)
    h, w = p.working_shape(3000, 4000)
    assert h * w <= 4.05e6 and abs(w / h - 4 / 3) < 0.01  # aspect kept
    fit = Preset("scale", 320, scale=0.0)
    assert max(fit.working_shape(3000, 4000)) == 320    # big objects: the whole photo in one view


def test_empty_masks_choose_the_whole_view_and_preset_round_trips():
    p = choose_preset([np.zeros((64, 64), np.uint8)], 320)
    assert p.policy == "stretch"
    q = Preset("scale", 256, scale=1.7, reason="x")
    assert Preset.from_dict(q.to_dict()) == q
    assert Preset.from_dict(None, 96) == Preset.legacy(96)


# ------------------------------------------------------------------ tiles = single pass
def test_sliding_window_equals_single_pass_where_the_image_fits():
    model = build("deeplabv3plus_mobilenet_v2", pretrained=False).eval()
    forward = lambda x: model(x)["out"]
    image = np.random.default_rng(1).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    x = to_tensor(image, model.mean, model.std)
    with torch.no_grad():
        single = padded_forward(forward, x, 256)
        tiled = tiled_logits(forward, x, 256, model.out_channels)
        assert torch.allclose(single, tiled)
        # a working image larger than a tile is covered by overlapping tiles, every pixel predicted
        big = to_tensor(np.random.default_rng(2).integers(0, 255, (300, 420, 3), dtype=np.uint8),
                        model.mean, model.std)
        out = tiled_logits(forward, big, 256, model.out_channels)
    assert out.shape == (1, 300, 420) and torch.isfinite(out).all()


def test_predictor_and_trainer_see_the_same_scaled_view(monkeypatch):
    """The Predictor's tile of a small image equals the trainer's identity crop (same scale,
    same top-left placement, same mean-colour padding)."""
    from segcore.inference import Predictor
    from segcore.training.data import normalize

    model = build("deeplabv3plus_mobilenet_v2", pretrained=False)
    preset = Preset("scale", 128, scale=2.0)
    model.meta["preset"] = preset.to_dict()
    predictor = Predictor(model, optimize=False)
    seen = []
    original = predictor._forward
    monkeypatch.setattr(predictor, "_forward", lambda x: seen.append(x.clone()) or original(x))
    image = np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8)
    assert predictor.predict(image).mask.shape == (40, 50)
    mask = np.zeros((40, 50), np.uint8)
    pair = prepare_train_pairs([(image, mask)], preset.with_model(model), 1.25)[0]
    view, label = crop_view(pair.image, pair.mask, 128, pair.factor, np.random.default_rng(0), identity=True,
                            mean=model.mean)
    expected = normalize(view, model.mean, model.std)[None]
    assert seen[0].shape == expected.shape == (1, 3, 128, 128)
    # 40x50 at factor max(2.0, 128/50) = 2.56 → 102x128, padded below with the mean colour;
    # cv2.resize and warpAffine agree to a gray level or so
    assert preset.working_shape(40, 50) == (102, 128)
    diff = (seen[0][..., :102, :] - expected[..., :102, :]).abs()
    assert float(diff.mean()) < 0.02 and float(diff.max()) < 0.1
    assert torch.allclose(seen[0][..., 103:, :], torch.zeros_like(seen[0][..., 103:, :]), atol=0.02)
    assert torch.allclose(expected[..., 103:, :], torch.zeros_like(expected[..., 103:, :]), atol=0.02)
    assert (label[103:] == 255).all() and (label[:102] == 0).all()


def test_the_trained_preset_is_stored_in_the_checkpoint(tmp_path):
    from segcore.versions import load_checkpoint, save_checkpoint
    model = build("deeplabv3plus_mobilenet_v2", pretrained=False)
    model.meta["preset"] = Preset("scale", 192, scale=2.5).to_dict()
    path = save_checkpoint(tmp_path / "m.pt", model)
    loaded, _ = load_checkpoint(path)
    p = preset_of(loaded)
    assert (p.policy, p.input_size, p.scale) == ("scale", 192, 2.5)


# ------------------------------------------------------------------ mirror averaging
def test_mirror_averaged_predictions_are_mirror_symmetric():
    """A model trained with random left-right flips predicts the mean of the image and its mirror:
    the prediction of a mirrored image is then exactly the mirrored prediction, which a plain
    forward of an untrained (asymmetric) model is not."""
    from segcore.inference import Predictor
    torch.manual_seed(0)
    model = build("deeplabv3plus_mobilenet_v2", pretrained=False)
    with torch.no_grad():  # random weights everywhere: an output that depends on the layout
        for p in model.decoder.parameters():
            p.normal_(0.0, 0.3)
    # 80x104 at x2 = 160x208: 64-px tiles stepping 48 px sit symmetrically, none padded
    image = np.random.default_rng(3).integers(0, 255, (80, 104, 3), dtype=np.uint8)
    mirror = np.ascontiguousarray(image[:, ::-1])
    results = {}
    for policy in ("stretch", "scale"):
        for flip in (False, True):
            model.meta["preset"] = Preset(policy, 64, scale=2.0 if policy == "scale" else 0.0, flip=flip).to_dict()
            predictor = Predictor(model, optimize=False)
            a, b = predictor.predict_probs(image), predictor.predict_probs(mirror)
            results[policy, flip] = float(np.abs(a - b[..., ::-1]).max())
    for policy in ("stretch", "scale"):  # "scale" runs 3 x 4 overlapping 64-px tiles here
        assert results[policy, True] < 1e-4, results
        assert results[policy, False] > 1e-3, results


def test_mirror_averaging_follows_the_training_flips_and_is_stored(tmp_path):
    from segcore.training import TrainConfig
    from segcore.versions import load_checkpoint, save_checkpoint
    masks = [_discs(120, 160, 40, 1, s) for s in range(3)]
    assert TrainConfig().preset_for(masks).flip  # the default: trained with flips, predicted mirrored
    assert not TrainConfig(hflip=False).preset_for(masks).flip  # orientation matters: no mirror
    assert not TrainConfig(mirror_predict=False).preset_for(masks).flip
    assert "mirror-averaged" in TrainConfig().preset_for(masks).describe()
    model = build("deeplabv3plus_mobilenet_v2", pretrained=False)
    model.meta["preset"] = Preset("scale", 192, scale=2.5, flip=True).to_dict()
    loaded, _ = load_checkpoint(save_checkpoint(tmp_path / "m.pt", model))
    assert preset_of(loaded).flip
    # checkpoints from before mirror averaging predict as they were trained to: one pass
    legacy = Preset("scale", 192, scale=2.5).to_dict()
    legacy.pop("flip")
    assert not Preset.from_dict(legacy).flip


def test_scale_crops_see_small_objects():
    """Half of the crops are centred on a labelled pixel: a lone small object in a big image
    appears in far more crops than its area share."""
    mask = np.zeros((1000, 1000), np.uint8)
    mask[500:520, 700:720] = 1
    image = np.zeros((1000, 1000, 3), np.uint8)
    rng = np.random.default_rng(0)
    hits = sum(bool((crop_view(image, mask, 128, 1.0, rng)[1] == 1).any()) for _ in range(200))
    assert hits > 80


# ------------------------------------------------------------------ void
def test_void_pixels_change_neither_loss_nor_metrics():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(size=(2, 1, 32, 32)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 2, (2, 32, 32)))
    void = labels.clone()
    void[:, :8] = 255
    flipped = void.clone()
    flipped[:, :8] = 1 - labels[:, :8]  # what is under the void does not matter
    a = segmentation_loss(logits, void)
    logits2 = logits.clone()
    logits2[:, :, :8] = 100.0  # nor what is predicted there
    assert torch.allclose(a, segmentation_loss(logits2, void))
    multi = torch.from_numpy(rng.normal(size=(2, 4, 32, 32)).astype(np.float32))
    lab4 = torch.from_numpy(rng.integers(0, 4, (2, 32, 32)))
    lab4v = lab4.clone()
    lab4v[:, :8] = 255
    multi2 = multi.clone()
    multi2[:, :, :8] = torch.randn(2, 4, 8, 32)
    assert torch.allclose(segmentation_loss(multi, lab4v), segmentation_loss(multi2, lab4v))

    gt = rng.integers(0, 3, (40, 40)).astype(np.uint8)
    pred = gt.copy()
    pred[:10] = (pred[:10] + 1) % 3
    gt_void = gt.copy()
    gt_void[:10] = 255  # the wrong rows are void: a perfect score
    assert (metrics.score_mask(gt_void, pred, 3).iou, metrics.score_mask(gt_void, pred, 3).biou) == (1.0, 1.0)
    assert metrics.score_mask(gt, pred, 3).iou < 1.0
    gb = (gt > 0).astype(np.uint8)
    gbv = gb.copy()
    gbv[:10] = 255
    pb = gb.copy()
    pb[:10] = 1 - pb[:10]
    assert (metrics.score_mask(gbv, pb, 2).iou, metrics.score_mask(gbv, pb, 2).biou) == (1.0, 1.0)


def test_void_survives_writing_and_reading_masks(tmp_path):
    binary = np.array([[0, 1, 255], [1, 0, 255]], np.uint8)
    io.write_mask(tmp_path / "b.png", binary, 2)
    assert (io.read_mask(tmp_path / "b.png") == binary).all()
    cleared = np.full((2, 3), 255, np.uint8)  # partial labels, all cleared: nothing labelled
    io.write_mask(tmp_path / "c.png", cleared, 2)
    assert (io.read_mask(tmp_path / "c.png") == 255).all()
    multi = np.array([[0, 5, 255], [22, 0, 255]], np.uint8)
    io.write_mask(tmp_path / "m.png", multi, 23)
    assert (io.read_mask(tmp_path / "m.png", 23) == multi).all()
    # a gray class-index mask whose only label is class 0 plus void (msrc-style): not binary
    from PIL import Image
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8), mode="L").save(tmp_path / "g.png")
    assert (io.read_mask(tmp_path / "g.png", 23) == [[0, 255], [255, 0]]).all()
    Image.fromarray(np.array([[13, 255], [2, 0]], np.uint8), mode="L").save(tmp_path / "h.png")
    assert (io.read_mask(tmp_path / "h.png") == [[13, 255], [2, 0]]).all()  # not thresholded
    with pytest.raises(io.MaskReadError, match="class value"):
        io.read_mask(tmp_path / "h.png", 5)


def test_class_weights_favour_rare_classes():
    masks = [np.zeros((100, 100), np.uint8)]
    masks[0][:, :90] = 0
    masks[0][:, 90:99] = 1
    masks[0][:, 99] = 2
    masks[0][0, :] = 255
    w = class_weights(masks, 4)
    assert w[2] > w[1] > w[0] and w[3] == 1.0


def test_prepared_pairs_keep_the_working_factor():
    image = np.zeros((1000, 800, 3), np.uint8)
    mask = np.zeros((1000, 800), np.uint8)
    p = Preset("scale", 320, scale=0.2)
    [pair] = prepare_train_pairs([(image, mask)], p, 1.25)
    assert isinstance(pair, PreparedPair)
    # shrunk once to factor*1.25 of the original; the factor left to apply is 1/1.25
    assert pair.image.shape[0] == round(1000 * p.factor(1000, 800) * 1.25)
    assert abs(pair.factor - 0.8) < 0.01

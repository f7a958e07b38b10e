"""The one contract every registered architecture keeps (as torchvision / smp test their zoos).

Per model (parametrised over ``segcore.models.available_models()``): logits at the input's size
for odd sizes, 1 logit (binary BCE) or K logits, the declared output stride of the encoder's
last map, fast-mode cache equivalence (forward from cached features == full forward, eval mode,
with and without trainable tail blocks) or a stated reason for full mode only, a checkpoint
round trip loaded with ``weights_only``, and a few training steps that lower the loss on a
tiny synthetic batch. Plus the architecture-specific facts the papers fix (SPEED's reference
shapes, SegNet's pooling indices, DeepLab v2's summed branches, PSPNet's aux loss).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from segcore import models
from segcore.training.losses import segmentation_loss
from segcore.versions import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("offline_one_thread")

NAMES = models.available_models()
#: the stride of ``forward_features(x)["out"]`` each architecture is specified with
OUTPUT_STRIDE = {
    "deeplabv3plus_mobilenet_v2": 16, "deeplabv3_mobilenet_v2": 16, "deeplabv3_resnet50_v1c": 8,
    "fcn32s": 32, "fcn16s": 32, "fcn8s": 32, "unet": 16, "unet_mobilenet_v2": 32, "segnet": 32,
    "pspnet": 8, "deeplabv1_largefov": 8, "deeplabv2": 8, "spp": 16, "speed_dspp": 32, "speed_mdspp": 32,
}
H, W = 67, 93  # odd, not multiples of any stride
_BUILT: dict[tuple[str, int], models.SegModel] = {}


def built(name: str, num_classes: int = 2) -> models.SegModel:
    """One model per (arch, classes) for the whole module (building the big ones is slow)."""
    key = (name, num_classes)
    if key not in _BUILT:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _BUILT[key] = models.build(name, num_classes=num_classes, pretrained=False)
    return _BUILT[key].eval()


def test_every_registered_model_has_a_specified_stride_and_a_good_for_line():
    assert set(NAMES) == set(OUTPUT_STRIDE)
    for name in NAMES:
        info = models.ARCHITECTURES[name]
        assert info.good_for and info.title
        assert ("from the paper" in info.good_for_line) != info.measured


@pytest.mark.parametrize("name", NAMES)
def test_logits_at_odd_input_sizes_binary_and_multiclass(name):
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        binary = built(name, 2)(x)
        multi = built(name, 4)(x[:1, :, :51, :77])
    assert set(binary) == {"out"}  # eval mode: no aux output
    assert tuple(binary["out"].shape) == (2, 1, H, W)
    assert tuple(multi["out"].shape) == (1, 4, 51, 77)
    assert torch.isfinite(binary["out"]).all() and torch.isfinite(multi["out"]).all()
    probs = models.logits_to_probs(multi["out"])
    assert torch.allclose(probs.sum(1), torch.ones(1, 51, 77), atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_the_predictors_fused_inference_path_matches_eager(name):
    from segcore.models.optimize import make_runner
    model = built(name, 3)
    x = torch.randn(1, 3, 64, 96)  # the Predictor pads to multiples of 32
    with torch.no_grad():
        eager = model(x)["out"]
        fused = make_runner(model, "fused")(x)
    assert torch.allclose(fused, eager, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_output_stride_of_the_encoder(name):
    model = built(name)
    stride = OUTPUT_STRIDE[name]
    h, w = 161, 225  # large enough that floor and ceil at stride s never match those at 2s
    with torch.no_grad():
        out = model.forward_features(torch.randn(1, 3, h, w))["out"]
    # padded convs round up (MobileNet, SPEED), max-pools round down (VGG, U-Net), SegNet pads to /32
    assert tuple(out.shape[-2:]) in {(h // stride, w // stride), (-(-h // stride), -(-w // stride))}


@pytest.mark.parametrize("name", NAMES)
def test_fast_mode_cache_equals_full_forward_or_full_mode_is_declared(name):
    model = built(name, 3)
    if not model.fast_mode_ok:
        assert model.fast_mode_reason  # the Trainer prints it (test_full_only_model_... below)
        return
    x = torch.randn(2, 3, H, W)
    with torch.no_grad():
        full = model(x)["out"]
        for tail in sorted({0, min(2, model.max_tail_blocks())}):
            cached = model.cached_features(x, tail)
            assert "aux" not in model.decoder_inputs
            head = model.head_from_cache({k: v for k, v in cached.items() if k != "aux"}, (H, W), tail)
            assert torch.allclose(head, full, atol=1e-4, rtol=1e-4), (name, tail)


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_with_weights_only_loading(name, tmp_path):
    model = built(name, 3)
    path = save_checkpoint(tmp_path / f"{name}.pt", model, {"classes": ["bg", "a", "b"]})
    raw = torch.load(path, map_location="cpu", weights_only=True)  # no pickled objects inside
    assert isinstance(raw, dict)
    loaded, meta = load_checkpoint(path)
    assert meta["arch"] == name and loaded.arch == name
    assert loaded.config() == model.config()
    assert loaded.fast_mode_ok == model.fast_mode_ok
    x = torch.randn(1, 3, 33, 47)
    with torch.no_grad():
        assert torch.allclose(loaded(x)["out"], model(x)["out"], atol=1e-5)


def _synthetic_batch(size: int = 40, classes: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, size, size, generator=g) * 0.3
    labels = torch.zeros(2, size, size, dtype=torch.long)
    labels[0, 6:25, 8:28] = 1
    labels[1, 18:38, 3:19] = classes - 1
    x[:, 0] += labels.float() * 2.0  # the foreground is brighter in the red channel
    return x, labels


@pytest.mark.parametrize("name", NAMES)
def test_a_few_training_steps_lower_the_loss(name):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = models.build(name, num_classes=2, pretrained=False)
    x, labels = _synthetic_batch()
    model.train()
    model.freeze_encoder_bn()  # what the Trainer's full mode does
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    losses = []
    for _ in range(6):
        out = model(x)
        loss = segmentation_loss(out["out"], labels)
        if "aux" in out:
            loss = loss + 0.4 * segmentation_loss(out["aux"], labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(map(torch.isfinite, map(torch.tensor, losses)))
    assert sum(losses[-2:]) < sum(losses[:2]), losses


# ------------------------------------------------------------------ architecture-specific facts
def test_speed_reference_shapes():
    from segcore.models.pyramids import DSPP, MDSPP
    model = built("speed_dspp")
    with torch.no_grad():
        feats = model.encoder(torch.zeros(1, 3, 192, 256))
        assert tuple(feats["out"].shape) == (1, 256, 6, 8)  # (6, 8, 256) as H, W, C
        assert tuple(feats["s16"].shape) == (1, 512, 12, 16)
        x = torch.randn(1, 512, 12, 16)
        for pyramid in (DSPP(512).eval(), MDSPP(512).eval()):
            y = pyramid(x)
            assert tuple(y.shape) == (1, 1024, 12, 16)
            assert torch.equal(y[:, :512], x)  # the input is concatenated, channels doubled
    assert isinstance(built("speed_mdspp").encoder.pyramid, MDSPP)


def test_segnet_decoder_unpools_at_the_encoder_max_pool_indices():
    model = built("segnet")
    x = torch.randn(2, 3, 64, 64)
    model.train()  # batch statistics: a fresh net's eval-mode output is nearly constant
    try:
        with torch.no_grad():
            feats = model.forward_features(x)
            assert {f"idx{i}" for i in range(1, 6)} <= set(feats) and feats["idx1"].dtype == torch.int64
            ref = model.forward_head(feats, (64, 64))
            moved = dict(feats, idx1=torch.zeros_like(feats["idx1"]))  # every maximum at position 0
            assert (model.forward_head(moved, (64, 64)) - ref).abs().max() > 1e-2
    finally:
        model.eval()
        sparse = F.max_unpool2d(torch.ones(1, 1, 2, 2), torch.tensor([[[[0, 3], [8, 15]]]]), 2, 2)
        assert sparse.sum() == 4 and sparse[0, 0, 0, 0] == 1


def test_deeplabv2_sums_its_four_atrous_branches_and_multiscale_is_full_mode_only():
    model = built("deeplabv2", 3)
    head = model.decoder
    assert [b.dilation[0] for b in head.branches] == [6, 12, 18, 24]
    f = torch.randn(1, 320, 9, 12)
    with torch.no_grad():
        assert torch.allclose(head(f), sum(b(f) for b in head.branches), atol=1e-6)
    msc = models.build("deeplabv2", num_classes=3, pretrained=False, multiscale=(1.0, 0.75, 0.5)).eval()
    assert not msc.fast_mode_ok and "scale" in msc.fast_mode_reason
    with torch.no_grad():
        out = msc(torch.randn(1, 3, H, W))["out"]
    assert tuple(out.shape) == (1, 3, H, W)
    assert models.from_config(msc.config()).options["multiscale"] == [1.0, 0.75, 0.5]


def test_deeplabv1_largefov_head_is_a_dilation_12_3x3_conv():
    head = built("deeplabv1_largefov").decoder
    assert head.fc6.kernel_size == (3, 3) and head.fc6.dilation == (12, 12) and head.fc6.out_channels == 1024


def test_fcn_skips_and_learned_bilinear_upsampling():
    from segcore.models.fcn import LearnedUpsample
    assert built("fcn32s").decoder_inputs == ("out",)
    assert built("fcn16s").decoder_inputs == ("out", "s16")
    assert built("fcn8s").decoder_inputs == ("out", "s16", "s8")
    up = LearnedUpsample(1, 2)
    assert up.weight.requires_grad
    x = torch.rand(1, 1, 6, 6)
    with torch.no_grad():  # away from the border it is bilinear interpolation
        ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        assert torch.allclose(up(x)[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-6)


def test_pspnet_pools_at_bins_1_2_3_6_and_returns_aux_logits_in_training():
    model = built("pspnet")
    assert [lvl[0].output_size for lvl in model.decoder.ppm.levels] == [1, 2, 3, 6]
    assert model.aux_head is not None and model.config()["aux"] is True
    model.train()
    try:
        out = model(torch.randn(2, 3, 64, 64))
    finally:
        model.eval()
    assert set(out) == {"out", "aux"} and out["aux"].shape == out["out"].shape


def test_spp_head_max_pools_at_bins_1_2_4():
    levels = built("spp").decoder.ppm.levels
    assert [(type(lvl[0]).__name__, lvl[0].output_size) for lvl in levels] == [
        ("AdaptiveMaxPool2d", 1), ("AdaptiveMaxPool2d", 2), ("AdaptiveMaxPool2d", 4)]


@pytest.mark.parametrize("name,options", [
    ("fcn8s", {"backbone": "vgg16"}),
    ("deeplabv1_largefov", {"backbone": "vgg16"}),
    ("pspnet", {"backbone": "resnet50"}),
    ("deeplabv2", {"backbone": "resnet50"}),
])
def test_paper_backbones_build_and_never_fake_their_imagenet_weights(name, options):
    """SEGLOOP_OFFLINE (the fixture): no download, no cached file → random init, said loudly."""
    from segcore.weights import PretrainedWeightsWarning
    with pytest.warns(PretrainedWeightsWarning):
        model = models.build(name, num_classes=2, pretrained=True, **options).eval()
    assert model.meta["init"]["weights_source"].startswith("random-init")
    assert model.config()["backbone"] == options["backbone"]
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 65, 71))["out"].shape) == (1, 1, 65, 71)


def test_complexity_counts_flops_that_scale_with_the_image_area():
    from segcore.models.complexity import complexity
    small, large = complexity(built("fcn8s"), 64), complexity(built("fcn8s"), 128)
    assert small["params"] == sum(p.numel() for p in built("fcn8s").parameters())
    assert 3.5 < large["gflops"] / small["gflops"] < 4.5
    assert complexity(built("pspnet"), 64)["params"] < sum(p.numel() for p in built("pspnet").parameters())


# ------------------------------------------------------------------ the trainer's side of the contract
def _blobs(n: int, size=(72, 88)):
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = rng.integers(0, 70, (*size, 3)).astype(np.uint8)
        mask = np.zeros(size, np.uint8)
        cv2.circle(mask, (int(rng.integers(16, size[1] - 16)), int(rng.integers(16, size[0] - 16))), 12, 1, -1)
        img[mask == 1] = (210, 90, 60)
        out.append((img, mask))
    return out


def _fit(model, messages: list[str] | None = None, **kw):
    from segcore.training import TrainCallbacks, TrainConfig, Trainer
    cfg = TrainConfig(**{**dict(mode="fast", epochs=1, time_budget_s=None, input_size=64, batch_size=4,
                                fast_views=2, seed=0, scale_policy="stretch"), **kw})
    cbs = TrainCallbacks(on_message=(messages.append if messages is not None else None))
    return Trainer(model, cfg, cbs).fit(_blobs(4), _blobs(1))


def _params(module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(module, before) -> bool:
    return any(not torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_full_only_model_trains_in_full_mode_and_its_fresh_encoder_bn_learns():
    model = models.build("speed_dspp", num_classes=2, pretrained=False)
    before = _params(model.encoder)
    messages: list[str] = []
    result = _fit(model, messages, mode="fast+full")
    assert any("trains in full mode only" in m for m in messages), messages
    assert result.history and {r.phase for r in result.history} == {"full"}
    bn = result.model.encoder.stem[0][1]  # first BatchNorm of the fresh encoder
    assert not torch.equal(bn.running_mean, before["stem.0.1.running_mean"])
    assert any("encoder BN learns" in m for m in messages)


def test_full_mode_adds_pspnets_auxiliary_loss():
    model = models.build("pspnet", num_classes=2, pretrained=False)
    weights = lambda m: {k: v.detach().clone() for k, v in m.aux_head.named_parameters()}
    before = weights(model)
    trained = weights(_fit(model, mode="full").model)
    assert any(not torch.equal(trained[k], v) for k, v in before.items())  # the aux logits reached the loss
    untouched = weights(_fit(model, mode="full", aux_weight=0.0).model)
    assert all(torch.equal(untouched[k], v) for k, v in before.items())


def test_fast_mode_on_a_multi_skip_decoder_trains_only_decoder_and_tail():
    model = models.build("unet_mobilenet_v2", num_classes=2, pretrained=False)
    enc_before, dec_before = _params(model.encoder), _params(model.decoder)
    messages: list[str] = []
    trained = _fit(model, messages, mode="fast", tail_blocks=2).model
    assert any("last 2 blocks" in m for m in messages), messages
    assert _changed(trained.decoder, dec_before)
    enc = trained.encoder.state_dict()
    assert all(torch.equal(enc[k], v) for k, v in enc_before.items() if not k.startswith(("features.16.",
                                                                                          "features.17.")))
    assert any(not torch.equal(enc[k], v) for k, v in enc_before.items() if k.startswith("features.17."))


def test_switching_architecture_starts_a_new_lineage(demo_project):
    import numpy as np

    from segcore import loop
    from segcore.demo import load_ground_truth
    from segcore.project import Project
    from segcore.training import TrainConfig
    project = Project.open(demo_project)
    for s in project.stems()[:2]:
        project.save_mask(s, (load_ground_truth(demo_project, s) > 0).astype(np.uint8))
    cfg = TrainConfig(mode="fast", epochs=1, time_budget_s=None, input_size=64, batch_size=4, fast_views=1,
                      pretrained=False, scale_policy="stretch")
    first = loop.finetune(project, cfg)
    assert project.models.get(first.version_id).arch == cfg.arch_for(2) == models.DEFAULT_MODEL
    from dataclasses import replace
    kept = loop.finetune(project, replace(cfg, arch="fcn8s"))  # no switch asked: the lineage continues
    assert kept.parent_id == first.version_id and project.models.get(kept.version_id).arch == models.DEFAULT_MODEL
    switched = loop.finetune(project, replace(cfg, arch="fcn8s", switch_arch=True))
    v = project.models.get(switched.version_id)
    assert switched.parent_id is None and v.parent is None and v.arch == "fcn8s"
    assert v.meta["model_config"]["name"] == "fcn8s"
    again = loop.finetune(project, replace(cfg, arch="fcn8s", switch_arch=True))
    assert again.parent_id == switched.version_id  # same architecture: fine-tuned from it
    project.close()


@pytest.mark.parametrize("arch", ["speed_dspp", "fcn16s"])  # a full-only and a fast-mode zoo model
def test_cli_train_builds_the_arch_and_the_checkpoint_records_it(arch, tmp_path):
    import cv2

    from segcore.cli import main
    from segcore.io import write_mask
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i, (img, mask) in enumerate(_blobs(4, size=(48, 64))):
        cv2.imwrite(str(images / f"im{i}.png"), img[..., ::-1])
        write_mask(masks / f"im{i}.png", mask)
    out = tmp_path / "trained.pt"
    assert main(["train", "--images", str(images), "--masks", str(masks), "--out", str(out), "--arch", arch,
                 "--mode", "fast", "--epochs", "1", "--input-size", "64", "--batch-size", "2",
                 "--no-pretrained"]) == 0
    model, meta = load_checkpoint(out)
    assert meta["arch"] == arch and model.arch == arch
    assert meta["metrics"]["stopped_reason"] == "epochs done"


def test_architectures_that_need_a_gpu_say_so_on_a_cpu_only():
    """The fresh-weight heavy models (measured: a click overruns its budget on 2 CPU cores and
    learns nothing) carry a warning on a CPU, none with CUDA; the CPU default carries none."""
    heavy = {n for n, info in models.ARCHITECTURES.items() if info.needs_gpu}
    assert heavy == {"unet", "segnet", "deeplabv3_resnet50_v1c"}
    for name, info in models.ARCHITECTURES.items():
        assert bool(info.device_note("cpu")) == (name in heavy)
        assert info.device_note("cuda") == ""
    assert "GPU" in models.ARCHITECTURES["unet"].device_note("cpu")


def test_per_kind_defaults_are_registered_and_a_new_project_starts_from_its_kinds(demo_project):
    """TrainConfig(arch="auto"): a binary project's first fine-tune builds DEFAULT_FOR_KIND["binary"],
    a project with classes builds DEFAULT_FOR_KIND["classes"]; an explicit arch is kept as is."""
    import numpy as np

    from segcore import loop
    from segcore.demo import load_ground_truth
    from segcore.project import ClassInfo, Project
    from segcore.training import TrainConfig
    assert set(models.DEFAULT_FOR_KIND) == {"binary", "classes"}
    assert all(name in models.ARCHITECTURES for name in models.DEFAULT_FOR_KIND.values())
    assert models.default_arch(2) == models.DEFAULT_MODEL == models.DEFAULT_FOR_KIND["binary"]
    assert models.default_arch(23) == models.DEFAULT_FOR_KIND["classes"]
    cfg = TrainConfig(mode="fast", epochs=1, time_budget_s=None, input_size=64, batch_size=4, fast_views=1,
                      pretrained=False, scale_policy="stretch")
    assert cfg.arch == "auto" and TrainConfig(arch="pspnet").arch_for(5) == "pspnet"
    assert cfg.for_classes(3).arch == models.DEFAULT_FOR_KIND["classes"]
    project = Project.open(demo_project)
    project.set_classes([ClassInfo("background", (0, 0, 0)), ClassInfo("a", (255, 0, 0)),
                         ClassInfo("b", (0, 255, 0))])
    for i, s in enumerate(project.stems()[:3]):
        gt = (load_ground_truth(demo_project, s) > 0).astype(np.uint8)
        project.save_mask(s, gt * (1 + i % 2))
    result = loop.finetune(project, cfg)
    v = project.models.get(result.version_id)
    assert v.arch == models.DEFAULT_FOR_KIND["classes"] and v.meta["model_config"]["num_classes"] == 3
    assert v.meta["train_config"]["arch"] == v.arch  # the record names what was built, not "auto"
    project.close()

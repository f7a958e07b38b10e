"""segcore.models: architecture shapes (on the meta device), config round trip, init records."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from segcore import models
from segcore.models import build, logits_to_probs
from segcore.models.mobilenet import dilation_plan
from segcore.models.optimize import fuse_conv_bn


pytestmark = pytest.mark.usefixtures("offline_one_thread")


def test_registry_lists_cpu_default_first():
    assert models.available_models()[:3] == ["deeplabv3plus_mobilenet_v2", "deeplabv3_mobilenet_v2",
                                             "deeplabv3_resnet50_v1c"]
    assert len(models.available_models()) == len(set(models.available_models())) == 15
    assert models.DEFAULT_MODEL == "deeplabv3plus_mobilenet_v2"


def test_deeplabv3plus_uses_stride4_features_and_switches_output_stride():
    m = models.build("deeplabv3plus_mobilenet_v2", pretrained=False).eval()
    x = torch.randn(1, 3, 97, 131)
    feats = m.forward_features(x)
    assert tuple(feats["low"].shape) == (1, 24, 25, 33)  # stride 4
    assert tuple(feats["out"].shape[1:]) == (320, 7, 9)  # OS16
    with torch.no_grad():
        assert m(x)["out"].shape == (1, 1, 97, 131)
        m.set_output_stride(8)
        assert m.decoder.rates == (12, 24, 36)
        assert m(x)["out"].shape == (1, 1, 97, 131)
    rebuilt = models.from_config(m.config())
    assert rebuilt.arch == "deeplabv3plus_mobilenet_v2"
    # a plain DeepLabV3 does not carry the stride-4 features around (fast-mode cache stays small)
    assert "low" not in models.build("deeplabv3_mobilenet_v2", pretrained=False).forward_features(x)
    with pytest.raises(ValueError, match="deeplabv3_mobilenet_v2"):
        build("unet_nonexistent", pretrained=False)


def test_resnet50_v1c_seed_shapes_on_meta_device():
    with torch.device("meta"):
        model = build("deeplabv3_resnet50_v1c", num_classes=5, pretrained=False, aux=True)
        x = torch.empty(4, 3, 480, 480)
        stages = model.encoder(x)
        model.train()
        out = model(x)
    assert [tuple(stages[k].shape) for k in ("stage1", "stage2", "aux", "out")] == [
        (4, 256, 120, 120), (4, 512, 60, 60), (4, 1024, 60, 60), (4, 2048, 60, 60)]
    assert tuple(out["out"].shape) == (4, 5, 480, 480)
    assert tuple(out["aux"].shape) == (4, 5, 480, 480)


def test_resnet50_v1c_architecture_details():
    with torch.device("meta"):
        model = build("deeplabv3_resnet50_v1c", pretrained=False)
    body = model.encoder
    stem = [m for m in body.stem.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in stem] == [
        (3, 32, (3, 3), (2, 2)), (32, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1))]
    assert body.maxpool.kernel_size == 3 and body.maxpool.stride == 2
    # strides (1,2,1,1); dilations (1,1,2,4) with contract_dilation; padding = dilation
    got = [[(b.conv2.stride[0], b.conv2.dilation[0], b.conv2.padding[0]) for b in layer]
           for layer in (body.layer1, body.layer2, body.layer3, body.layer4)]
    assert got[0] == [(1, 1, 1)] * 3
    assert got[1] == [(2, 1, 1)] + [(1, 1, 1)] * 3
    assert got[2] == [(1, 1, 1)] + [(1, 2, 2)] * 5
    assert got[3] == [(1, 2, 2)] + [(1, 4, 4)] * 2
    head = model.decoder
    assert head.rates == (12, 24, 36)
    assert head.bottleneck[0].in_channels == 2560 and head.bottleneck[0].out_channels == 512
    assert head.bottleneck[0].kernel_size == (3, 3)
    assert head.dropout.p == pytest.approx(0.1)


def test_real_forward_keeps_input_size_and_aux_only_in_training():
    model = build("deeplabv3_mobilenet_v2", num_classes=3, pretrained=False, aux=True).eval()
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        out = model(x)
    assert set(out) == {"out"} and tuple(out["out"].shape) == (1, 3, 97, 131)
    model.train()
    out = model(torch.randn(2, 3, 64, 80))
    assert tuple(out["aux"].shape) == (2, 3, 64, 80)


def test_resnet_real_small_forward():
    model = build("deeplabv3_resnet50_v1c", pretrained=False).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 97, 131))["out"]
    assert tuple(out.shape) == (1, 1, 97, 131)


def test_features_and_head_compose_to_forward():
    model = build("deeplabv3_mobilenet_v2", pretrained=False).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert set(feats) == {"out", "aux"}
        assert feats["out"].shape[1] == 320 and feats["out"].shape[-1] == 96 // 16
        torch.testing.assert_close(model.forward_head(feats, x.shape[-2:]), model(x)["out"])


def test_mobilenet_output_stride_switch():
    assert dilation_plan(16)[-4:] == [(1, 1), (1, 2), (1, 2), (1, 2)]
    assert dilation_plan(8)[6:8] == [(1, 1), (1, 2)]
    with torch.device("meta"):
        model = build("deeplabv3_mobilenet_v2", pretrained=False)
        assert model.encoder(torch.empty(1, 3, 480, 480))["out"].shape[-1] == 30
        assert model.decoder.rates == (6, 12, 18)
        model.set_output_stride(8)
        assert model.encoder(torch.empty(1, 3, 480, 480))["out"].shape[-1] == 60
        assert model.decoder.rates == (12, 24, 36)


@pytest.mark.parametrize("num_classes,binary_bce,channels", [(2, True, 1), (2, False, 2), (12, True, 12)])
def test_out_channels_and_config_round_trip(num_classes, binary_bce, channels):
    with torch.device("meta"):
        model = build("deeplabv3_mobilenet_v2", num_classes=num_classes, pretrained=False,
                      binary_bce=binary_bce, aux=True)
        assert model.out_channels == channels
        cfg = model.config()
        again = build(**cfg, pretrained=False)
        also = models.from_config({**cfg, "arch": cfg["name"]})
    assert again.config() == cfg == also.config()
    assert {k: tuple(v.shape) for k, v in again.state_dict().items()} == {
        k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_logits_to_probs():
    z = torch.tensor([[[[0.0, 2.0]]]])
    p = logits_to_probs(z)
    assert p.shape == (1, 2, 1, 2)
    torch.testing.assert_close(p[:, 1], torch.sigmoid(z[:, 0]))
    torch.testing.assert_close(p.sum(1), torch.ones(1, 1, 2))
    multi = logits_to_probs(torch.randn(2, 4, 3, 3))
    torch.testing.assert_close(multi.sum(1), torch.ones(2, 3, 3))


def test_pretrained_false_records_fresh_init():
    with torch.device("meta"):
        model = build("deeplabv3_resnet50_v1c", pretrained=False)
    assert "random-init" in model.meta["init"]["weights_source"]
    assert "stem" in model.meta["init"]["note"]


def test_user_backbone_file_initialises_matching_layers_and_keeps_stem_fresh(tmp_path):
    from torchvision.models import resnet50

    tv = resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50-user.pth"
    torch.save(tv, path)
    model = build("deeplabv3_resnet50_v1c", pretrained=path)
    init = model.meta["init"]
    assert init["weights_source"] == f"user:{path}"
    assert init["loaded_modules"] == [f"encoder.layer{i}" for i in range(1, 5)]
    assert "encoder.stem" in init["fresh_modules"] and "decoder" in init["fresh_modules"]
    torch.testing.assert_close(model.encoder.layer3[2].conv2.weight, tv["layer3.2.conv2.weight"])


def test_fuse_conv_bn_keeps_outputs():
    model = build("deeplabv3_mobilenet_v2", pretrained=False).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)["out"]
        fused = fuse_conv_bn(model)(x)["out"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(fused, ref, rtol=1e-3, atol=1e-3)

import pytest
import torch

from iid.models.adm import ArtifactDetectionModule
from iid.models.backbones import TIMM_NAMES
from iid.models.detector import Detector
from iid.models.losses import ClassificationLoss, DetectorLoss
from iid.models.output import ModelOutput

# backbone -> channels of its last map
CHANNELS = {
    "resnet18": 512,
    "resnet34": 512,
    "resnet50": 2048,
    "xception": 2048,
    "efficientnet_b3": 1536,
    "efficientnet_b4": 1792,
    "efficientnet_lite0": 1280,
    "efficientnet_lite1": 1280,
    "efficientnet_lite2": 1280,
    "test_resnet": 96,
}


def test_every_backbone_has_a_channel_entry():
    assert set(CHANNELS) == set(TIMM_NAMES)


def check_shapes_at_224(model: Detector, name: str) -> None:
    """Backbone map (1, C, 7, 7), extra maps 7/5/3/1, heads over 168 anchors."""
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        fmap = model.backbone(x)
        assert fmap.shape == (1, CHANNELS[name], 7, 7)
        maps = model.adm.extra_maps(fmap)
        assert [tuple(m.shape[-2:]) for m in maps] == [(7, 7), (5, 5), (3, 3), (1, 1)]
        assert all(m.shape[1] == 512 for m in maps)
        out = model(x)
    assert out.logits.shape == (1, 2)
    assert out.extras["loc"].shape == (1, 168, 4) and out.extras["conf"].shape == (1, 168, 2)
    assert out.features.shape == (1, CHANNELS[name]) and model.num_features == CHANNELS[name]


# the families trained below check their shapes there; these are the remaining names
@pytest.mark.parametrize("name", ["resnet34", "resnet50", "efficientnet_b4", "test_resnet"])
def test_extra_layer_sizes_and_head_shapes_at_224(name):
    torch.manual_seed(0)
    check_shapes_at_224(Detector(name, pretrained=False, adm=True), name)


def test_reference_width_follows_the_backbone():
    model = Detector("resnet18", adm=True, adm_width=None)
    assert model.adm.width == 512
    assert isinstance(model.adm.project, torch.nn.Identity)


def test_head_outputs_follow_the_anchor_order():
    torch.manual_seed(0)
    adm = ArtifactDetectionModule(96, width=32).eval()
    with torch.no_grad():
        fmap = torch.randn(2, 96, 7, 7)
        maps = adm.extra_maps(fmap)
        out = adm(fmap)
        conf7 = adm.conf_heads[0](maps[0])  # (B, 2 anchors * 2 classes, 7, 7)
        loc5 = adm.loc_heads[1](maps[1])  # (B, 2 anchors * 4, 5, 5)
        loc1 = adm.loc_heads[3](maps[3])
    i, j = 3, 4  # 7x7 cell row 3, column 4; anchor index 2*(i*7+j)+a
    for a in range(2):
        torch.testing.assert_close(out.conf[:, 2 * (i * 7 + j) + a], conf7[:, 2 * a : 2 * a + 2, i, j])
    i, j = 1, 2
    torch.testing.assert_close(out.loc[:, 98 + 2 * (i * 5 + j) + 1], loc5[:, 4:8, i, j])
    torch.testing.assert_close(out.loc[:, 166], loc1[:, 0:4, 0, 0])
    assert out.short.shape == (2, 96)  # the 32-wide 1x1 map projected to the backbone's 96 channels


def test_short_connection_and_binary_classifier():
    torch.manual_seed(0)
    model = Detector("resnet18", adm=True).eval()
    binary = Detector("resnet18", adm=False).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        fmap = model.backbone(x)
        pooled = fmap.mean(dim=(2, 3))
        out = model(x)
        torch.testing.assert_close(out.features, pooled + model.adm(fmap).short)
        torch.testing.assert_close(out.logits, model.fc(out.features))
        plain = binary(x)
    assert plain.extras == {} and binary.adm is None
    assert plain.features.shape == (2, 512) and plain.logits.shape == (2, 2)
    assert binary.fc.in_features == model.fc.in_features
    assert binary.mean == model.mean and binary.std == model.std


def test_other_input_sizes_resample_the_map_to_the_anchor_grid():
    # image_size=112 (scale=mini): ResNet's last map is 4x4; the ADM resamples it to 7x7, so the heads
    # still emit the 168 anchors (fractions of the image) and the classifier still sees pooled features
    torch.manual_seed(0)
    model = Detector("resnet18", adm=True, adm_width=32).eval()
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        fmap = model.backbone(x)
        assert fmap.shape[-2:] == (4, 4)
        out = model(x)
        up = torch.nn.functional.interpolate(fmap, size=(7, 7), mode="bilinear", align_corners=False)
        direct = model.adm(up)
    assert out.extras["loc"].shape == (2, 168, 4) and out.extras["conf"].shape == (2, 168, 2)
    assert torch.allclose(out.extras["loc"], direct.loc) and torch.allclose(out.extras["conf"], direct.conf)
    assert out.features.shape == (2, 512)


def test_forward_is_features_then_head():
    torch.manual_seed(0)
    model = Detector("resnet18", adm=True, adm_width=32).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        fmap = model.forward_features(x)
        head = model.forward_head(fmap)
        out = model(x)
    assert fmap.shape == (2, 512, 7, 7)
    torch.testing.assert_close(out.logits, head.logits)
    torch.testing.assert_close(out.features, head.features)
    assert Detector("xception", adm=False).mean == (0.5, 0.5, 0.5)  # the backbone's own normalisation


# one backbone per family (resnet50 shares resnet18's code; its 2048 channels are xception's too);
# a training step of xception at batch 2 takes seconds on a loaded 2-core CPU
@pytest.mark.parametrize(
    "name, adm", [("resnet18", True), ("resnet18", False), ("xception", True), ("efficientnet_b3", True)]
)
def test_two_training_steps_on_cpu(name, adm):
    torch.manual_seed(0)
    model = Detector(name, pretrained=False, adm=adm).train()
    loss_fn = DetectorLoss() if adm else ClassificationLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    mean, std = torch.tensor(model.mean).view(1, 3, 1, 1), torch.tensor(model.std).view(1, 3, 1, 1)
    x = (torch.rand(2, 3, 224, 224) - mean) / std
    labels = torch.tensor([0, 1])
    boxes = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.2, 0.25, 0.6, 0.75]])
    has_box = torch.tensor([False, True])
    watched = {"fc": model.fc.weight}
    if adm:
        watched["adm"] = model.adm.conf_heads[0].weight
        watched["end"] = model.adm.extra[3].body[0].weight
    first_conv = next(p for p in model.backbone.parameters() if p.dim() == 4)
    watched["backbone"] = first_conv
    before = {k: v.detach().clone() for k, v in watched.items()}
    for _ in range(2):
        parts = loss_fn(model(x), {"label": labels, "boxes": boxes, "has_box": has_box})
        assert torch.isfinite(parts["loss"])
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
    if adm:
        assert parts["num_pos"].item() >= 1 and parts["num_neg"].item() == 2 * parts["num_pos"].item()
    for key, value in watched.items():
        assert not torch.equal(value.detach(), before[key]), f"{key} did not change"
    if adm:
        check_shapes_at_224(model, name)


def test_detector_from_the_config_files():
    from pathlib import Path

    from omegaconf import OmegaConf

    from iid.models.families import build_family

    conf = Path(__file__).resolve().parents[2] / "src" / "iid" / "conf"
    for yaml in sorted((conf / "backbone").glob("*.yaml")):
        cfg = OmegaConf.load(yaml)
        assert cfg.name == yaml.stem and cfg.name in TIMM_NAMES
        # no network in default runs: random init, or ImageNet weights shipped in a package
        from iid.models.packaged_weights import has_packaged_weights

        assert cfg.pretrained is False or (cfg.pretrained == "imagenet" and has_packaged_weights(cfg.name))
    backbone = OmegaConf.load(conf / "backbone" / "resnet18.yaml")
    on, _ = build_family(OmegaConf.load(conf / "model" / "caddm.yaml"), backbone)
    off, _ = build_family(OmegaConf.load(conf / "model" / "binary.yaml"), backbone)
    assert on.adm is not None and on.adm.width == 512 and off.adm is None


def test_adm_and_loss_learn_a_fixed_batch():
    # a narrow ADM on fixed features: the total loss must fall well below its start within a few steps
    torch.manual_seed(0)
    adm = ArtifactDetectionModule(64, width=32)
    fc = torch.nn.Linear(64, 2)
    params = list(adm.parameters()) + list(fc.parameters())
    optimizer = torch.optim.Adam(params, lr=3e-3)
    loss_fn = DetectorLoss()
    fmap = torch.randn(4, 64, 7, 7)
    labels = torch.tensor([0, 1, 1, 1])
    boxes = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.3, 0.2, 0.48, 0.55], [0.1, 0.5, 0.6, 0.9]]
    )
    has_box = labels.bool()
    losses = []
    for _ in range(15):
        out = adm(fmap)
        features = fmap.mean(dim=(2, 3)) + out.short
        output = ModelOutput(fc(features), features, {"loc": out.loc, "conf": out.conf})
        parts = loss_fn(output, {"label": labels, "boxes": boxes, "has_box": has_box})
        optimizer.zero_grad()
        parts["loss"].backward()
        optimizer.step()
        losses.append(parts["loss"].item())
    assert losses[-1] < 0.2 * losses[0], losses[::3]

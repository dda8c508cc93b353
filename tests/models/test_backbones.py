import urllib.error

import huggingface_hub.constants
import pytest
import timm
import timm.models._builder
import torch

from iid.errors import UserError
from iid.models.backbones import TIMM_NAMES, create_backbone


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(UserError) as err:
        create_backbone("resnet1000")
    text = one_line(err)
    assert "resnet1000" in text
    for name in TIMM_NAMES:
        assert name in text


def test_hub_weights_offline_is_one_clear_line(monkeypatch, tmp_path):
    # what an offline machine sees: the hub refuses, and the cache (an empty tmp dir) has nothing
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(UserError) as err:
        create_backbone("resnet18", True)
    text = one_line(err)
    assert "pretrained=false" in text and "/path/to/weights" in text


def test_url_weights_offline_is_one_clear_line(monkeypatch):
    # legacy_xception's weights come from a plain URL, not the HF hub
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(timm.models._builder, "load_state_dict_from_url", no_network)
    with pytest.raises(UserError) as err:
        create_backbone("xception", "true")
    assert "pretrained=false" in one_line(err)


def test_local_weights_file_loads(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model(TIMM_NAMES["resnet18"], pretrained=False)  # with its ImageNet classifier
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = create_backbone("resnet18", str(path))
    loaded = backbone.model.state_dict()
    for key, value in source.state_dict().items():
        if key.startswith("fc."):
            assert key not in loaded
        else:
            torch.testing.assert_close(loaded[key], value)
    assert backbone.num_features == 512


def test_missing_or_mismatched_weights_file(tmp_path):
    with pytest.raises(UserError) as err:
        create_backbone("resnet18", str(tmp_path / "nope.pth"))
    assert "not found" in one_line(err)
    path = tmp_path / "resnet34.pth"
    torch.save(timm.create_model(TIMM_NAMES["resnet34"]).state_dict(), path)
    with pytest.raises(UserError) as err:
        create_backbone("resnet18", path)
    assert "does not fit" in one_line(err)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError) as err:
        create_backbone("resnet18", junk)
    assert "cannot read" in one_line(err)


def test_normalisation_comes_from_the_pretrained_cfg():
    assert create_backbone("xception").mean == (0.5, 0.5, 0.5)
    resnet = create_backbone("resnet18", "false")
    assert resnet.mean == pytest.approx((0.485, 0.456, 0.406))
    assert resnet.std == pytest.approx((0.229, 0.224, 0.225))

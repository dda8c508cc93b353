"""timm backbones: the last feature map (B, C, 7, 7) at 224 input, plus the backbone's normalisation.

Our names map to timm models with an explicit pretrained tag, chosen to match the weights the
reference code starts from (torchvision ResNets, the Cadene/TF Xception, the TF EfficientNets of
efficientnet-pytorch) rather than timm's newer recipes. The EfficientNet-Lites are the networks whose
ImageNet weights ship inside registry packages (iid.models.packaged_weights), so they start from
ImageNet offline: the mini scale runs on them.

`pretrained` is one of:
- False: random init;
- True or "imagenet": ImageNet weights: from the installed package where one ships them
  (efficientnet_lite0/1/2, no network), else timm's hub (network on first use, then timm's cache);
- a path to a local weights file (.pth/.bin/.safetensors state_dict of the timm model, e.g. the file
  timm downloads); loaded strictly apart from the ImageNet classifier, which is dropped.
"""

from __future__ import annotations

from pathlib import Path

import timm
from torch import Tensor, nn

from iid.errors import UserError
from iid.models.packaged_weights import has_packaged_weights, packaged_state_dict

# our name -> timm name with pretrained tag
TIMM_NAMES: dict[str, str] = {
    "resnet18": "resnet18.tv_in1k",
    "resnet34": "resnet34.tv_in1k",
    "resnet50": "resnet50.tv_in1k",
    "xception": "legacy_xception.tf_in1k",
    "efficientnet_b3": "tf_efficientnet_b3.aa_in1k",
    "efficientnet_b4": "tf_efficientnet_b4.aa_in1k",
    # TF "same" padding and batch-norm epsilon: the architecture the packaged TF-trained weights fit
    "efficientnet_lite0": "tf_efficientnet_lite0.in1k",
    "efficientnet_lite1": "tf_efficientnet_lite1.in1k",
    "efficientnet_lite2": "tf_efficientnet_lite2.in1k",
    # a 0.4 M-parameter ResNet for pipeline checks (the test suite's end-to-end runs), random init only
    "test_resnet": "test_resnet.r160_in1k",
}


class Backbone(nn.Module):
    """A timm model cut before pooling: forward(x (B,3,H,W)) -> (B, num_features, H/32, W/32)."""

    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.timm_name = TIMM_NAMES[name]
        self.model = model
        self.num_features: int = int(model.num_features)
        cfg = model.pretrained_cfg
        self.mean: tuple[float, float, float] = tuple(float(v) for v in cfg["mean"])
        self.std: tuple[float, float, float] = tuple(float(v) for v in cfg["std"])

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)


def _parse_pretrained(pretrained: bool | str | Path | None) -> bool | Path:
    if pretrained is None or isinstance(pretrained, bool):
        return bool(pretrained)
    text = str(pretrained).strip()
    if text.lower() in {"true", "false", "", "imagenet"}:  # tolerate strings from env vars or CLI quoting
        return text.lower() in {"true", "imagenet"}
    return Path(text).expanduser()


def _load_local_weights(model: nn.Module, path: Path, name: str) -> None:
    if not path.is_file():
        raise UserError(
            f"backbone weights file not found: {path} (set backbone.pretrained to an existing file, "
            "true for timm's hub weights, or false for random init)"
        )
    try:
        state = timm.models.load_state_dict(str(path))
    except Exception as err:  # unreadable/corrupt file: any loader error is the user's file
        raise UserError(
            f"cannot read backbone weights {path}: {type(err).__name__}: {err}".splitlines()[0]
        ) from err
    classifier = model.pretrained_cfg.get("classifier") or ()
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    state = {k: v for k, v in state.items() if not any(k.startswith(h + ".") for h in heads)}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise UserError(
            f"weights file {path} does not fit backbone {name} ({TIMM_NAMES[name]}): "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:2]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:2]})"
        )


def create_backbone(name: str, pretrained: bool | str | Path = False) -> Backbone:
    """Build backbone `name` (see TIMM_NAMES) with random, hub or local-file weights."""
    if name not in TIMM_NAMES:
        raise UserError(f"unknown backbone {name!r}; choose one of: {', '.join(TIMM_NAMES)}")
    timm_name = TIMM_NAMES[name]
    source = _parse_pretrained(pretrained)
    kwargs = dict(num_classes=0, global_pool="")
    if source is True and has_packaged_weights(name):
        model = timm.create_model(timm_name, pretrained=False)  # with its classifier: every tensor is mapped
        model.load_state_dict(packaged_state_dict(name, model))
        model.reset_classifier(0, global_pool="")
    elif source is True:
        try:
            model = timm.create_model(timm_name, pretrained=True, **kwargs)
        except (OSError, RuntimeError) as err:  # offline: LocalEntryNotFoundError, URLError (both OSError)
            raise UserError(
                f"cannot fetch pretrained weights for backbone {name} ({timm_name}) from timm's hub "
                f"({type(err).__name__}); set backbone.pretrained=false for random init, or "
                "backbone.pretrained=/path/to/weights file for local weights"
            ) from err
    else:
        model = timm.create_model(timm_name, pretrained=False, **kwargs)
        if isinstance(source, Path):
            _load_local_weights(model, source, name)
    return Backbone(name, model)

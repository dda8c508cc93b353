"""`python -m iid.predict ckpt=PATH input=FILE_OR_FOLDER [out=DIR] [frames=32|all] [faces=largest|all]
[threshold=0.5] [overlay=true] [landmarks=dlib]`

Scores videos (any container PyAV reads) and images (JPEG, PNG, WebP), a file or a folder
(recursively): frames at equal intervals, faces found and aligned as `prepare` aligns them for
training, the checkpoint's model as evaluation runs it. Writes one JSON per file (video score, per-frame
scores, the decision at the threshold, the ADM's best artifact box per frame in frame pixels) and
`summary.csv`; with overlay=true a contact sheet (PNG) and an overlay video (MP4). Files already scored
are skipped; a bad file gets one line and the run goes on. The flow is iid.inference.
"""

from __future__ import annotations

from iid.engine.cli import hydra_entry
from iid.inference.run import predict

__all__ = ["main", "predict"]


def main() -> None:
    hydra_entry("predict", predict)


if __name__ == "__main__":
    main()

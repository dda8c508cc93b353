import json

import numpy as np
import pytest

from iid.augment.show import main
from iid.data.records import VideoRecord

from .conftest import make_batch


def fabricate_store(root, n=6):
    """A tiny frame store in the docs/interfaces.md format (numpy arrays + index/videos json)."""
    d = root / "synthetic" / "train"
    d.mkdir(parents=True)
    b = make_batch(n, fakes=[1, 0] * (n // 2), seed=4)
    np.save(d / "frames.npy", b["image"].permute(0, 2, 3, 1).numpy())
    np.save(d / "sources.npy", b["source"].permute(0, 2, 3, 1).numpy())
    np.save(d / "masks.npy", b["face_mask"][:, 0].numpy())
    np.save(d / "landmarks.npy", b["landmarks"].numpy().astype(np.float32))
    videos = [
        VideoRecord("synthetic", "real", "000", 0, "train", "r.mp4", ("a",)),
        VideoRecord("synthetic", "Deepfakes", "000_001", 1, "train", "f.mp4", ("a", "b"),
                    source_key="synthetic/real/000"),
    ]
    (d / "videos.json").write_text(json.dumps([v.to_dict() for v in videos]))
    rows = [{"key": videos[1 - i % 2].key, "frame": i, "label": 1 - i % 2, "identity": "a",
             "has_source": i % 2 == 0} for i in range(n)]
    (d / "index.json").write_text(json.dumps(rows))
    return d


def test_show_writes_a_png_grid(tmp_path):
    store = fabricate_store(tmp_path)
    main([f"store={store}", f"out={tmp_path / 'fig.png'}", "n=3", "seed=1"])
    data = (tmp_path / "fig.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_show_bad_store_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main([f"store={tmp_path / 'nope'}", "out=x.png"])
    assert err.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1

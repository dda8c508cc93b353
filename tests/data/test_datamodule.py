import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DistributedSampler

sys.path.insert(0, str(Path(__file__).parent))
from store_fixture import ffpp_records, write_store  # noqa: E402

from iid.data.datamodule import IIDDataModule  # noqa: E402
from iid.data.records import VideoRecord  # noqa: E402
from iid.errors import UserError  # noqa: E402

CONF = Path(__file__).parents[2] / "src" / "iid" / "conf" / "data"
METHODS = ("Deepfakes", "FaceSwap", "Face2Face")


def celebdf_test_records() -> list[VideoRecord]:
    recs = [VideoRecord("celebdf", "real", f"id{i}_0000", 0, "test", f"r/id{i}_0000.mp4", (f"id{i}",)) for i in range(3)]
    recs += [VideoRecord("celebdf", "Celeb-synthesis", f"id{i}_id{i + 1}_0000", 1, "test", "s.mp4",
                         (f"id{i}", f"id{i + 1}")) for i in range(3)]
    return recs


@pytest.fixture
def stores(tmp_path):
    """ffpp train/val/test and a celebdf test store (celebdf also has a train store sharing ids)."""
    root = tmp_path / "stores"
    write_store(root, ffpp_records("train", [("000", "003"), ("003", "000"), ("010", "011"), ("012", "013")],
                                   METHODS), 8, no_source={"ffpp/Face2Face/010_011"}, seed=1)
    write_store(root, ffpp_records("val", [("020", "021")], METHODS), 8, seed=2)
    write_store(root, ffpp_records("test", [("030", "031"), ("040", "041")], METHODS),
                {"ffpp/real/030": 32, "ffpp/real/040": 7, **{f"ffpp/{m}/{p}": 5 for m in METHODS
                                                                for p in ("030_031", "040_041")}}, seed=3)
    write_store(root, celebdf_test_records(), 4, seed=4)
    write_store(root, [VideoRecord("celebdf", "real", "id1_0005", 0, "train", "x.mp4", ("id1",))], 2, seed=5)
    return root


def make(root, **kw):
    args = dict(name="ffpp", store_root=str(root), test_sets=["ffpp", "celebdf", "dfdc"], batch_size=16,
                batches_per_epoch=4)
    args.update(kw)
    return IIDDataModule(**args)


def test_batches_have_documented_dtypes_and_shapes(stores, caplog):
    dm = make(stores)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    spec = {"image": (torch.uint8, (16, 3, 16, 16)), "source": (torch.uint8, (16, 3, 16, 16)),
            "has_source": (torch.bool, (16,)), "face_mask": (torch.uint8, (16, 1, 16, 16)),
            "landmarks": (torch.float32, (16, 68, 2)), "label": (torch.int64, (16,)),
            "identity": (torch.int64, (16,)), "video": (torch.int64, (16,)), "frame": (torch.int64, (16,))}
    assert set(batch) == set(spec)
    for k, (dtype, shape) in spec.items():
        assert batch[k].dtype == dtype and tuple(batch[k].shape) == shape, k
    assert len(dm.train_dataloader()) == 4
    # values: the image is the stored HWC frame seen as CHW; identity/video index the dm lists
    store = dm.stores["train"]
    rows = batch["frame"].numpy()
    np.testing.assert_array_equal(batch["image"].permute(0, 2, 3, 1).numpy(), store.arrays["frames"][rows])
    for i, r in enumerate(rows):
        key = dm.videos["train"][batch["video"][i]]
        assert key == store.videos[store.video[r]].key
        rec = store.videos[store.video[r]]
        assert dm.identities[batch["identity"][i]] == f"ffpp/{rec.identity}"
    assert dm.stats["train_fake_without_source"] == 8


def test_test_loaders_cover_every_frame_once_and_skip_missing(stores, caplog):
    dm = make(stores)
    with caplog.at_level(logging.WARNING):
        dm.setup("test")
    assert dm.test_sets == ["ffpp", "celebdf"]
    skipped = [r.message for r in caplog.records if "dfdc" in r.message]
    assert len(skipped) == 1 and "python -m iid.prepare" in skipped[0]
    shared = [r.message for r in caplog.records if "identities" in r.message]
    assert len(shared) == 1 and "celebdf" in shared[0] and "1 of" in shared[0]
    loaders = dm.test_dataloader()
    assert len(loaders) == 2
    for name, loader in zip(dm.test_sets, loaders):
        frames = torch.cat([b["frame"] for b in loader]).numpy()
        assert sorted(frames) == list(range(len(dm.stores[name])))
        videos = {dm.videos[name][v] for b in loader for v in b["video"].tolist()}
        assert videos == set(dm.videos[name])


def test_test_frames_cap_takes_equal_intervals(stores):
    dm = make(stores, test_frames=4)
    dm.setup("test")
    store = dm.stores["ffpp"]
    b = dm._datasets["ffpp"][dm.rows["ffpp"]]  # one read of every kept row
    frames_of = {}
    for v, f in zip(b["video"].tolist(), store.frame[b["frame"].numpy()].tolist()):
        frames_of.setdefault(dm.videos["ffpp"][v], []).append(f)
    assert frames_of["ffpp/real/030"] == [0, 8, 16, 24]  # 32 stored -> 4 at equal intervals
    assert frames_of["ffpp/real/040"] == [0, 1, 3, 5]  # 7 stored
    assert frames_of["ffpp/Deepfakes/030_031"] == [0, 1, 2, 3]  # 5 stored


def test_same_pair_id_under_two_methods_gets_two_video_indices(stores):
    dm = make(stores)
    dm.setup("test")
    keys = dm.videos["ffpp"]
    assert "ffpp/Deepfakes/030_031" in keys and "ffpp/FaceSwap/030_031" in keys
    batch = next(iter(dm.test_dataloader()[0]))
    by_video = {}
    for v, r in zip(batch["video"].tolist(), batch["frame"].tolist()):
        by_video.setdefault(v, set()).add(dm.stores["ffpp"].videos[dm.stores["ffpp"].video[r]].method)
    assert all(len(m) == 1 for m in by_video.values())  # a video index never mixes methods


def test_balance_gives_half_fakes(stores):
    plain = make(stores, batches_per_epoch=40, batch_size=64)
    plain.setup("fit")
    share = torch.cat([b["label"] for b in plain.train_dataloader()]).float().mean()
    assert 0.7 < share < 0.8  # 3 fakes per real video in the store
    bal = make(stores, batches_per_epoch=40, batch_size=64, balance=True)
    bal.setup("fit")
    share = torch.cat([b["label"] for b in bal.train_dataloader()]).float().mean()
    assert 0.45 < share < 0.55


def test_methods_filter_keeps_reals_and_chosen_fakes_only(stores, caplog):
    dm = make(stores, methods=["Face2Face", "FaceShifter"], batches_per_epoch=20, batch_size=64)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert any("FaceShifter" in r.message for r in caplog.records)  # asked for, not in the store
    methods = set()
    for b in dm.train_dataloader():
        methods |= {dm.stores["train"].videos[v].method for v in b["video"].tolist()}
    assert methods == {"real", "Face2Face"}
    val_methods = {dm.stores["val"].videos[v].method for v in dm.stores["val"].video[dm.rows["val"]]}
    assert val_methods == {"real", "Face2Face"}
    # test sets stay complete (supplement §B tests sub-dataset models on all of FF++)
    assert len(dm.rows["ffpp"]) == len(dm.stores["ffpp"])
    with pytest.raises(UserError, match="fake"):
        make(stores, methods=["NeuralTextures"]).setup("fit")


def test_fake_without_source_trains_with_zero_source(stores):
    dm = make(stores, batches_per_epoch=10, batch_size=64)
    dm.setup("fit")
    seen = 0
    for b in dm.train_dataloader():
        missing = (b["label"] == 1) & ~b["has_source"]
        seen += int(missing.sum())
        assert not b["source"][missing].any()
        assert b["source"][b["has_source"]].flatten(1).any(1).all()
    assert seen > 0


def test_missing_train_store_names_the_prepare_command(tmp_path):
    dm = make(tmp_path, prepare_hint="python -m iid.prepare data=synthetic")
    with pytest.raises(UserError) as e:
        dm.setup("fit")
    assert "\n" not in str(e.value) and "python -m iid.prepare data=synthetic" in str(e.value)


def test_video_in_two_splits_is_user_error(stores):
    write_store(stores, [VideoRecord("ffpp", "real", "000", 0, "test", "o.mp4", ("000",))], 2)  # replaces test
    with pytest.raises(UserError, match="ffpp/real/000"):
        make(stores).setup("fit")


def test_val_loader_and_two_rank_split(stores):
    dm = make(stores, eval_batch_size=7)
    dm.setup("fit")
    rows = torch.cat([b["frame"] for b in dm.val_dataloader()])
    assert sorted(rows.tolist()) == list(range(len(dm.stores["val"])))
    assert dm.videos["val"] == dm.stores["val"].keys


def test_from_config_with_every_data_yaml(stores):
    from iid.engine.config import Budget, EvalProtocol
    from iid.engine.data import build_datamodule

    names = sorted(p.stem for p in CONF.glob("*.yaml"))
    assert {"synthetic", "ffpp", "celebdf", "dfdc", "deepfakebench"} <= set(names)
    budget, protocol = Budget(epochs=1, batches_per_epoch=3, batch_size=8), EvalProtocol(test_frames=5, val_frames=2)
    for name in names:
        cfg = OmegaConf.merge({"paths": {"data": "data", "stores": "${paths.data}/stores"}},
                              {"data": OmegaConf.load(CONF / f"{name}.yaml")})
        OmegaConf.resolve(cfg)
        dm = build_datamodule(OmegaConf.to_container(cfg), budget, protocol, num_workers=0)
        assert dm.name == cfg.data.name and dm.batch_size == 8 and dm.batches_per_epoch == 3
        assert (dm.test_frames, dm.val_frames) == (5, 2)
        assert dm.store_root.startswith("data/stores")
    syn = OmegaConf.merge({"paths": {"data": "D", "stores": "${paths.data}/stores"}},
                          {"data": OmegaConf.load(CONF / "synthetic.yaml")}).data
    assert syn.root == "D/synthetic/FaceForensics++" and syn.landmarks == "oracle"
    syn = {**OmegaConf.to_container(syn, resolve=True), "store_root": str(stores), "test_sets": ["ffpp"]}
    dm = build_datamodule({"data": syn}, budget, protocol, num_workers=0)
    dm.setup("fit")
    assert dm.test_sets == ["ffpp"]


def test_worker_process_reads_the_same_batches(stores):
    dm = make(stores, num_workers=1, test_sets=["ffpp"])
    dm.setup("test")
    loader = dm.test_dataloader()[0]
    assert isinstance(loader.sampler, DistributedSampler)  # Lightning will not wrap it in a padding one
    direct = dm._datasets["ffpp"]
    for b in loader:
        ref = direct[b["frame"].numpy()]
        for k in ref:
            assert torch.equal(b[k], ref[k]), k
        assert b["image"].is_contiguous(memory_format=torch.channels_last)


def test_lightning_fit_and_test_run_on_the_loaders(stores):
    import pytorch_lightning as pl

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))
            self.frames = {}

        def training_step(self, batch, _):
            return (self.w - batch["label"].float().mean()).pow(2).sum()

        def validation_step(self, batch, _):
            pass

        def test_step(self, batch, _, dataloader_idx=0):
            self.frames.setdefault(dataloader_idx, []).append(batch["frame"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = make(stores, batches_per_epoch=3)
    model = Tiny()
    trainer = pl.Trainer(accelerator="cpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 6
    trainer.test(model, datamodule=dm, verbose=False)
    for i, name in enumerate(dm.test_sets):
        assert sorted(torch.cat(model.frames[i]).tolist()) == list(range(len(dm.stores[name])))


def test_on_stores_built_by_prepare(synthetic_root, tmp_path):
    """The stores `prepare` writes from the synthetic benchmark load, train and evaluate."""
    from iid.data.preparation import prepare_dataset

    store = tmp_path / "stores"
    for reader, sub in [("ffpp", "FaceForensics++"), ("celebdf", "Celeb-DF-v2"), ("dfdc", "DFDC")]:
        prepare_dataset(reader, synthetic_root / sub, store, frames=3, landmarks="oracle", progress=False)
    dm = IIDDataModule("ffpp", str(store), ["ffpp", "celebdf", "dfdc"], batch_size=8, batches_per_epoch=2)
    dm.setup("fit")
    assert dm.test_sets == ["ffpp", "celebdf", "dfdc"] and dm.stores["train"].size == 256
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 3, 256, 256) and batch["face_mask"].max() == 1
    fakes = batch["label"] == 1
    assert batch["has_source"][fakes].all() and not batch["has_source"][~fakes].any()
    for name, loader in zip(dm.test_sets, dm.test_dataloader()):
        frames = torch.cat([b["frame"] for b in loader])
        assert sorted(frames.tolist()) == list(range(len(dm.stores[name])))
    assert all(k.startswith("ffpp/") for k in dm.videos["ffpp"])


def _rank_frames(rank: int, world: int, root: str, init_file: str, out: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        dm = make(Path(root), eval_batch_size=5)
        dm.setup("test")
        got = {name: torch.cat([b["frame"] for b in loader]).tolist()
               for name, loader in zip(dm.test_sets, dm.test_dataloader())}
        steps = [len(loader) for loader in dm.test_dataloader()]
        train = [b["frame"].tolist() for b in make(Path(root), batches_per_epoch=5).train_dataloader()]
        Path(out).write_text(repr({"test": got, "steps": steps, "train": train}))
    finally:
        torch.distributed.destroy_process_group()


def test_two_real_ranks_score_every_test_frame_once(stores, tmp_path):
    """torch.distributed (gloo, 2 processes): the samplers take rank and world size from it."""
    import ast

    outs = [str(tmp_path / f"rank{r}.txt") for r in range(2)]
    ctx = torch.multiprocessing.get_context("fork")  # fork: no re-import of torch per rank
    procs = [ctx.Process(target=_rank_frames, args=(r, 2, str(stores), str(tmp_path / "init"), outs[r]))
             for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    for p in procs:
        if p.is_alive():  # never leave a hung rank behind
            p.kill()
    assert all(p.exitcode == 0 for p in procs)
    res = [ast.literal_eval(Path(o).read_text()) for o in outs]
    dm = make(stores)
    dm.setup("test")
    for name in dm.test_sets:
        a, b = res[0]["test"][name], res[1]["test"][name]
        assert not set(a) & set(b) and sorted(a + b) == list(range(len(dm.stores[name])))  # no pad, none lost
    assert len(res[0]["train"]) == len(res[1]["train"]) == 3  # ceil(5 / 2) steps on each rank
    assert res[0]["train"][0] != res[1]["train"][0]

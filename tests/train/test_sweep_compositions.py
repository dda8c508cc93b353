"""A sweep's jobs are composed once by check_overrides and once by Hydra's launcher, no more."""

from __future__ import annotations

import pytest


def test_a_sweep_composes_each_job_once_before_and_once_when_it_runs(tmp_path, monkeypatch):
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.plugins.sweeper import Sweeper

    from iid.engine.cli import hydra_entry

    calls, ran = [], []
    original = ConfigLoaderImpl.load_configuration

    def counted(self, config_name, overrides, *args, **kwargs):
        calls.append(list(overrides))
        return original(self, config_name, overrides, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", counted)
    validate_before = (Sweeper.validate_batch_is_legal, vars(BasicSweeper).get("validate_batch_is_legal"))
    hydra_entry("config", lambda cfg: ran.append(cfg.seed),
                ["-m", "seed=3,4,5", "debug=smoke", f"hydra.sweep.dir={tmp_path}"])
    assert sorted(ran) == [3, 4, 5]
    # check_overrides: the first job (the sweep's params) + each job; Hydra: its mode, the sweep config and
    # each job at launch. Hydra's own re-validation (one more per job) and the selections-only composition
    # (one more per job without a `+key`) are left out
    assert len(calls) == 1 + 3 + 2 + 3, calls
    # Hydra's classes as they were after the run (other sweepers keep their own check throughout)
    assert (Sweeper.validate_batch_is_legal, vars(BasicSweeper).get("validate_batch_is_legal")) == validate_before


def test_a_new_top_level_key_is_still_refused_in_a_sweep(tmp_path, capsys):
    from iid.engine.cli import hydra_entry

    ran = []
    with pytest.raises(SystemExit) as exc:
        hydra_entry("config", ran.append, ["-m", "seed=1,2", "+sede=3", f"hydra.sweep.dir={tmp_path}"])
    assert exc.value.code == 2 and not ran
    err = capsys.readouterr().err
    assert err.startswith("error: unknown key 'sede' (sweep job seed=1 +sede=3): did you mean seed"), err

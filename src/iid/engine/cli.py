"""The one shape of every entry point: a Hydra app on the package's configs (`pkg://iid.conf`).

Before Hydra starts, the command line is composed with Hydra's compose API: an unknown group
option, a key the config does not have (`foo=1`), a new top-level key (`+foo=1`, which Hydra would
silently accept) or a malformed override ends in one `error: ...` line and exit code 2, instead of
Hydra's page; an unknown key's line names the closest keys the config has (`workers=2` on prepare:
`prepare.workers`), since keys move between groups as the suite grows. A sweep (`-m`) is expanded as Hydra's basic sweeper will expand it (the config's
`hydra.sweeper.params` and the command line) and every job is composed and validated by the entry
point's `validate` first, so a bad value in the last job fails before the first one trains. A
UserError raised inside the job ends the same way.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from iid.errors import UserError, exit_on_user_error

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CONF_MODULE = "iid.conf"
# flags that take a value as the next argument
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-path", "-cp",
                     "--config-dir", "-cd", "--info", "--experimental-rerun"}  # fmt: skip


def hydra_entry(config_name: str, job: Callable[[Any], Any], argv: Sequence[str] | None = None,
                validate: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Run `job(cfg)` as a Hydra app on conf/<config_name>.yaml; `validate(plain config)` checks every
    job's config (all jobs of a sweep) before anything runs."""
    import hydra

    @exit_on_user_error
    def _job(cfg) -> None:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        job(cfg)

    argv = sys.argv[1:] if argv is None else list(argv)
    exit_on_user_error(check_overrides)(config_name, argv, validate)
    saved = sys.argv
    sys.argv = [saved[0], *argv]  # hydra.main reads the command line from sys.argv
    try:
        with _jobs_validated_already():
            hydra.main(config_path=f"pkg://{CONF_MODULE}", config_name=config_name, version_base="1.3")(_job)()
    finally:
        sys.argv = saved


@contextmanager
def _jobs_validated_already():
    """Hydra's basic sweeper composes every job of a batch once more before launching it, to catch a config
    that does not compose (`validate_batch_is_legal`). check_overrides has composed and validated every job
    of that sweeper's expansion already, so that second composition (~0.5 s a job, a third of a tiny
    sweep's time) is left out while Hydra runs. Any other sweeper expands jobs its own way: it keeps its
    check."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    name = "validate_batch_is_legal"
    own = vars(BasicSweeper).get(name)  # None: inherited from Sweeper
    setattr(BasicSweeper, name, lambda self, batch: None)
    try:
        yield
    finally:
        if own is None:
            delattr(BasicSweeper, name)
        else:
            setattr(BasicSweeper, name, own)


def user_overrides(argv: Sequence[str]) -> list[str]:
    """The config overrides of a command line: no flags, no hydra.* settings."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg.startswith("-"):
            skip = arg in _FLAGS_WITH_VALUE
            continue
        key = arg.lstrip("+~").split("=", 1)[0]
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):
            continue
        out.append(arg)
    return out


def primary_groups(config_name: str, conf_dir: Path = CONF_DIR) -> set[str]:
    """The config groups in the defaults list of conf/<config_name>.yaml (synth's `scale=tiny` is a value,
    train's `scale=mini` a group option)."""
    import yaml

    defaults = (yaml.safe_load((conf_dir / f"{config_name}.yaml").read_text()) or {}).get("defaults") or []
    names = set()
    for d in defaults:
        if isinstance(d, dict):
            for k in d:
                name = k.replace("optional ", "").replace("override ", "").strip().lstrip("/")
                if not name.startswith("hydra"):
                    names.add(name)
    return names


def check_group_overrides(argv: Sequence[str], conf_dir: Path = CONF_DIR, groups: set[str] | None = None) -> None:
    """`group=option` naming no config file ends in one line listing the options (multirun lists too).
    groups: the primary config's groups (None: every folder of conf/)."""
    for arg in argv:
        m = re.fullmatch(r"\+{0,2}([A-Za-z_][\w]*)=(.*)", arg)
        if not m:
            continue
        group, value = m.groups()
        folder = conf_dir / group
        if not folder.is_dir() or value in ("", "null") or (groups is not None and group not in groups):
            continue
        options = sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))
        for v in value.split(","):
            v = v.strip().strip("'\"")
            if v and v not in options:
                raise UserError(f"unknown {group} {v!r}: choose one of {', '.join(options)} ({group}=<name>)")


def _one_job(overrides: list[str]) -> list[str]:
    """A multirun command line as the overrides of its first job (each sweep reduced to its first value)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    out = []
    for raw, o in zip(overrides, parsed):
        if o.is_sweep_override():
            first = next(iter(o.sweep_string_iterator()), None)
            if first is None:
                continue
            out.append(f"{o.get_key_element()}={first}")
        else:
            out.append(raw)
    return out


def _sweep(compose: Callable, config_name: str, overrides: list[str]) -> list[list[str]]:
    """The jobs of a multirun, as the basic sweeper makes them: the config's hydra.sweeper.params,
    then the command line (a key given in both takes the command line's values), cartesian product."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    first = compose(config_name, overrides=_one_job(overrides), return_hydra_config=True)
    params = [f"{k}={v}" for k, v in (first.hydra.sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create().parse_overrides(params + list(overrides))
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def check_overrides(config_name: str, argv: Sequence[str],
                    validate: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Compose the command line (every job of a sweep); any problem is one UserError line."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from iid.engine.config import plain_config

    overrides = user_overrides(argv)
    groups = primary_groups(config_name)
    check_group_overrides(overrides, groups=groups)
    multirun = any(a in ("-m", "--multirun") for a in argv)
    try:
        _one_job(overrides)
    except Exception as err:  # the override grammar's own error
        raise UserError(f"cannot parse the command line: {_first_line(err)}") from None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            jobs = _sweep(compose, config_name, overrides) if multirun else [_one_job(overrides)]
            for job in jobs:
                # what the chosen group options add (experiment=..., debug=...) is known; another new key is a typo
                selections = [o for o in job if o.lstrip("+~").split("=", 1)[0] in groups]
                where = f" (sweep job {' '.join(job)})" if multirun else ""
                try:
                    cfg = compose(config_name, overrides=job)
                except Exception as err:
                    raise UserError(_explain(err, _known_keys(compose, config_name, selections, groups), _values(job))
                                    + where) from None
                # only a `+key=...` adds a top-level key (Hydra refuses `key=...` for a key the config lacks):
                # without one, the composition of the selections alone (~0.5 s) is not needed
                adds = [o for o in job if o.startswith("+") and o.lstrip("+").split("=", 1)[0] not in groups]
                base = compose(config_name, overrides=selections) if adds else cfg
                added = sorted(set(cfg) - set(base))
                if added:
                    known, values = config_keys(base, groups), _values(job)
                    hints = {k: h for k in added if (h := did_you_mean(k, known, values.get(k)))}
                    if len(added) == 1:
                        head = f"unknown key {added[0]!r}{where}: " + (f"did you mean {hints[added[0]]}? " if hints else "")
                    else:
                        head = f"unknown key(s) {added}{where}: " + (
                            f"did you mean {', '.join(f'{h} (for {k})' for k, h in hints.items())}? " if hints else "")
                    raise UserError(head + f"`python -m iid.{_entry(config_name)} --cfg job` lists the config")
                if validate is not None:
                    try:
                        validate(plain_config(cfg))
                    except UserError as err:
                        raise UserError(f"{err}" + (f" (sweep job {' '.join(job)})" if multirun else "")) from None
    except UserError:
        raise
    except Exception as err:
        raise UserError(_explain(err)) from None
    finally:
        GlobalHydra.instance().clear()


def _known_keys(compose: Callable, config_name: str, selections: list[str], groups: set[str]) -> dict[str, Any]:
    """The keys of the config the group selections compose, for an error's hints ({} when they fail too)."""
    try:
        return config_keys(compose(config_name, overrides=selections), groups)
    except Exception:
        return {}


def _values(overrides: Sequence[str]) -> dict[str, str]:
    """{key: value as typed} of `key=value` overrides."""
    return {o.lstrip("+~").split("=", 1)[0]: o.split("=", 1)[1] for o in overrides if "=" in o}


def _entry(config_name: str) -> str:
    return {"config": "train"}.get(config_name, config_name)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def config_keys(cfg: Any, groups: set[str] = frozenset()) -> dict[str, Any]:
    """{dotted key: value} of a composed config, inner nodes and the config's groups too, Hydra's own aside."""
    from omegaconf import OmegaConf

    def walk(node: Any, prefix: str) -> None:
        for k, v in node.items():
            keys[f"{prefix}{k}"] = v
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")

    keys: dict[str, Any] = {g: {} for g in groups}
    walk({k: v for k, v in OmegaConf.to_container(cfg, resolve=False).items() if k != "hydra"}, "")
    return keys


def _accepts(current: Any, value: Any) -> bool:
    """Whether a key holding `current` could take `value` (a group takes an option's name)."""
    if current is None or value is None:
        return True
    if isinstance(value, bool) or isinstance(current, bool):
        return isinstance(value, bool) and isinstance(current, bool)
    if isinstance(value, int | float):
        return isinstance(current, float) or (isinstance(current, int) and isinstance(value, int))
    if isinstance(value, str):
        return isinstance(current, str | dict)
    return isinstance(current, type(value))


def did_you_mean(key: str, known: dict[str, Any], value: str | None = None, n: int = 3) -> str:
    """The closest known keys that take `value`, as `a or b`: by the whole dotted key and by its last
    part (a key moved into a group keeps its name: workers -> prepare.workers); "" when none is close."""
    from difflib import SequenceMatcher

    import yaml

    try:
        parsed = yaml.safe_load(value) if value is not None else None
    except yaml.YAMLError:
        parsed = value
    last = key.rsplit(".", 1)[-1]
    scored = []
    for k, current in known.items():
        whole = SequenceMatcher(None, key, k).ratio()
        score = max(whole, SequenceMatcher(None, last, k.rsplit(".", 1)[-1]).ratio())
        if score >= 0.44 and _accepts(current, parsed):  # 0.44: 4 of 9 letters in order, as scale and size
            scored.append((-score, -whole, len(k), k))
    scored.sort()
    # a key far closer than the rest is named alone
    return " or ".join(k for s, *_, k in scored[:n] if s <= scored[0][0] + 0.2)


def _explain(err: BaseException, known: dict[str, Any] | None = None, values: dict[str, str] | None = None) -> str:
    """One line for a compose error; an unknown key's names the closest `known` keys taking its value."""
    msg = str(err).strip()
    m = re.search(r"Could not override '([^']+)'", msg)
    if m:
        hint = did_you_mean(m.group(1), known or {}, (values or {}).get(m.group(1)))
        return f"unknown key {m.group(1)!r}: " + (f"did you mean {hint}? " if hint else "check its spelling; ") + (
            "`--cfg job` prints the composed config")
    m = re.search(r"Could not append to config. An item is already at '([^']+)'", msg)
    if m:
        return f"{m.group(1)} exists already: drop the leading + ({m.group(1)}=...)"
    return _first_line(err)

"""Scorecard lines from the analyses of Implicit Identity Leakage (the outputs of `python -m iid.analyze`).

`python -m iid.report mode=scorecard sweeps=[...] analyses=[<out>,...]` reads each folder an
`iid.analyze <analysis> ... out=<out>` run wrote (<out>/probe/probe.json, interaction/, overlap/;
several folders are merged, a later one winning per model and data set) and adds one line per
hypothesis, pair of models and data set, with the verdict rule of the table lines
(iid.reporting.scorecard_line.verdict). What each line measures (docs/analyses.md, "On the scorecard"):

- ID probe (§3.1 Hypothesis 1, §5.2 Fig. 5b/5d): the held-out identity accuracy of one model minus
  another's. Both are tested on the same held-out frames (the split depends on the data and the seed
  only), so the 95% interval is a paired bootstrap over the held-out videos: a drawn video brings all
  its frames, for both models (probe/probe_frames.csv holds each frame's video and correctness).
- I([N]) (§3.2 Hypothesis 2, Table 1): the binary classifier's frame AUC of I([N]) minus 0.5, > 0
  in-dataset and < 0 cross-dataset; the interval is the analysis' own bootstrap over videos
  (interaction.json's auc_I_ci95, 1000 resamples), the paper's number its Table 1 for the backbone.
- ID overlap (supplement §A, Fig. 7): the overlap rate (the share of pairs of identities whose PCA
  rectangles overlap, averaged over the IoU thresholds) of one model minus another's; the interval
  resamples identities (the same draws for both models) and counts the pairs among the drawn ones.

Models are told apart by the names given to iid.analyze (`names=[binary,ours,control,da_mfs]`): the
roles below; `analysis_names.ours=o` (or `analysis_names={ours: o}`) maps a role to the name a run used.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iid.errors import UserError
from iid.reporting import stats
from iid.reporting.scorecard_line import Line
from iid.reporting.tables import PAPER_DIR

EXPERIMENT = "analyses"  # Line.experiment of every line here: the writers group them under their own heading
ROLES = ("binary", "ours", "control", "da_mfs")
ANALYSES = ("probe", "interaction", "overlap")
ARTIFACTS = {"probe": "IIL Fig. 2, 5b/5d: ID probe", "interaction": "IIL Table 1: I([N])",
             "overlap": "IIL Supp. Fig. 7: ID overlap"}  # fmt: skip
METRICS = {"probe": "id_accuracy", "interaction": "auc_I", "overlap": "overlap_rate"}
METRIC_TITLES = {"id_accuracy": "ID accuracy", "auc_I": "AUC of I([N]) − 0.5", "overlap_rate": "ID overlap rate"}
DEFAULT_SETS = ("ffpp", "celebdf", "dfdc")  # the data sets a missing output's gap lines name
CHANCE = "chance (AUC 0.5)"
H2_TEXT = "Hypothesis 2 (§3.2 text): > 0.5 in-dataset, < 0.5 cross-dataset"


@dataclass(frozen=True)
class Pair:
    """A comparison of two models' identity: the paper's sign of "row carries more identity than ref"."""

    row: str
    ref: str
    direction: int
    basis: str
    always: bool = False  # listed, as gaps, even when a model was not analysed


PAIRS = (
    Pair("binary", "ours", 1, "§5.2 text (Fig. 5b/5d), Supp. §A (Fig. 7)", always=True),
    # with the network before training (iid.analysis.control): Hypothesis 1 says training puts identity in
    Pair("binary", "control", 1, "Hypothesis 1 (§3.1): identity is learned in training"),
    Pair("control", "ours", 1, "§4: the ADM keeps ours from learning identity (read: below its start)"),
    # the components (Table 2's DA+MFS row without the ADM): the paper credits the ADM
    Pair("da_mfs", "ours", 1, "§5.2: the ADM alleviates the leakage"),
    Pair("binary", "da_mfs", 0, "none: the paper credits the ADM; this is DA+MFS's share of the drop"),
)


@dataclass
class Found:
    """One analysis' results over the folders given: a later folder wins per (model, data set)."""

    analysis: str
    results: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # model -> set -> numbers
    folder: dict[tuple[str, str], Path] = field(default_factory=dict)  # (model, set) -> folder of its CSV rows
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    _tables: dict[Path, list[dict[str, str]] | None] = field(default_factory=dict)

    def sets(self, *models: str) -> list[str]:
        """The data sets these models (or any) were analysed on, in the outputs' order."""
        pick = [m for m in models if m in self.results] or list(self.results)
        return list(dict.fromkeys(s for m in pick for s in self.results[m]))

    def rows(self, model: str, data_set: str, stem: str) -> list[dict[str, str]] | None:
        """The CSV rows `<stem>.csv` holds for (model, data set); None when the file is missing."""
        path = self.folder[(model, data_set)] / f"{stem}.csv"
        if path not in self._tables:
            self._tables[path] = None
            if path.is_file():
                with path.open(newline="") as f:
                    self._tables[path] = list(csv.DictReader(f))
        table = self._tables[path]
        return None if table is None else [r for r in table if r.get("model") == model and r.get("set") == data_set]


def read(folders: Sequence[Path], analysis: str) -> Found | None:
    """The analysis' JSON documents in `folders` (<folder>/<analysis>/<analysis>.json or <folder>/<analysis>.json)."""
    found = None
    for folder in folders:
        path = next((p for p in (folder / analysis / f"{analysis}.json", folder / f"{analysis}.json") if p.is_file()), None)
        if path is None:
            continue
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"analyses: cannot read {path}: {type(err).__name__}") from None
        found = found or Found(analysis, protocol=doc.get("protocol") or {})
        found.checkpoints.update(doc.get("checkpoints") or {})
        for model, per in (doc.get("results") or {}).items():
            found.results.setdefault(model, {}).update(per)
            found.folder.update({(model, s): path.parent for s in per})
    return found


def role_names(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """Role -> the model name in the analyses' outputs (the role itself unless mapped)."""
    if mapping is not None and not isinstance(mapping, Mapping):
        raise UserError(f"analysis_names={mapping!r}: give a mapping of roles to names, e.g. analysis_names.ours=o")
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(ROLES))
    if unknown:
        raise UserError(f"analysis_names: unknown role(s) {unknown}; the roles are {', '.join(ROLES)}")
    return {r: str(mapping.get(r, r)) for r in ROLES}


def _gap(found: Found | None, analysis: str, roles: Sequence[str], names: Mapping[str, str], data_set: str) -> str | None:
    """Why (roles) on `data_set` cannot be measured from `found`; None when they can."""
    if found is None:
        return (f"no {analysis}.json in the analyses given (analyses=[<folder>]): write it with "
                f"python -m iid.analyze {analysis} ckpt=[...] names=[{','.join(roles)}] out=<folder>")  # fmt: skip
    for role in roles:
        m = names[role]
        if m not in found.results:
            return (f"no model named {m!r} in {analysis}.json (it has {', '.join(found.results) or 'none'}): map the "
                    f"role, analysis_names.{role}=<name>, or name the checkpoints in python -m iid.analyze ... names=[...]")  # fmt: skip
        r = found.results[m].get(data_set)
        if r is None:
            return f"{m!r} was not analysed on {data_set} ({analysis})"
        if r.get("skipped"):
            return f"{m!r} on {data_set}: {r['skipped']}"
    return None


def _pair_lines(found: Found | None, analysis: str, names: Mapping[str, str], sign: int) -> list[tuple[Pair, Line]]:
    """A line per pair of models and data set: `sign` turns "carries more identity" into the measure's
    direction (+1: a higher probe accuracy; -1: a lower overlap rate)."""
    out = []
    for pair in PAIRS:
        a, b = names[pair.row], names[pair.ref]
        if not pair.always and (found is None or a not in found.results or b not in found.results):
            continue  # the control and DA+MFS lines exist only where those models were analysed
        sets = (found.sets(a, b) if found else []) or list(DEFAULT_SETS)
        for s in sets:
            line = Line(EXPERIMENT, ARTIFACTS[analysis], pair.row, pair.ref, s, METRICS[analysis], None,
                        sign * pair.direction, pair.basis)  # fmt: skip
            line.gap = _gap(found, analysis, (pair.row, pair.ref), names, s)
            out.append((pair, line))
    return out


def probe_lines(found: Found | None, names: Mapping[str, str], n_boot: int) -> list[Line]:
    lines = []
    for pair, line in _pair_lines(found, "probe", names, +1):
        lines.append(line)
        if line.gap:
            continue
        a, b, s = names[pair.row], names[pair.ref], line.column
        held = {m: found.rows(m, s, "probe_frames") for m in (a, b)}
        if any(h is None for h in held.values()):
            line.gap = f"no probe_frames.csv beside probe.json ({found.folder[(a, s)]}): re-run the probe (older outputs)"
            continue
        correct = {m: {(r["video"], r["frame"]): float(r["correct"]) for r in h} for m, h in held.items()}
        if not correct[a] or set(correct[a]) != set(correct[b]):
            line.gap = (f"{a!r} and {b!r} were not probed on the same held-out frames of {s} (other data or seed): "
                        "probe them in one python -m iid.analyze probe run")  # fmt: skip
            continue
        keys = sorted(correct[a])  # the same frames, in one order, for both: the bootstrap is paired
        line.ours = stats.paired_mean_difference([correct[a][k] for k in keys], [correct[b][k] for k in keys],
                                                 [k[0] for k in keys], n_boot)  # fmt: skip
        ra, rb = found.results[a][s], found.results[b][s]
        line.notes.append(f"{pair.row} {ra['final_test_acc']:.3f}, {pair.ref} {rb['final_test_acc']:.3f} "
                          f"(chance {ra['chance']:.3f}); {len(keys)} frames of {line.ours.videos} held-out videos")  # fmt: skip
    return lines


def overlap_lines(found: Found | None, names: Mapping[str, str], n_boot: int) -> list[Line]:
    lines = []
    for pair, line in _pair_lines(found, "overlap", names, -1):
        lines.append(line)
        if line.gap:
            continue
        from iid.analysis.overlap import overlap_pairs

        a, b, s = names[pair.row], names[pair.ref], line.column
        boxes = {m: _boxes(found.rows(m, s, "overlap")) for m in (a, b)}
        if any(v is None for v in boxes.values()):
            line.gap = f"overlap.csv has no rectangles (x0, y0, x1, y1) for {s}: re-run python -m iid.analyze overlap"
            continue
        if set(boxes[a]) != set(boxes[b]) or len(boxes[a]) < 2:
            line.gap = f"{a!r} and {b!r} were not analysed on the same identities of {s} (at least two)"
            continue
        ids = sorted(boxes[a])
        ths = [float(t) for t in found.protocol.get("thresholds") or (0.1, 0.2, 0.3, 0.4, 0.5)]
        pa, pb = (overlap_pairs(np.array([boxes[m][i] for i in ids]), ths) for m in (a, b))
        line.ours = stats.paired_pair_rate_difference(pa, pb, n_boot)
        k = len(ids)
        line.notes.append(f"overlap rate {pair.row} {pa.sum() / (k * (k - 1)):.3f}, {pair.ref} {pb.sum() / (k * (k - 1)):.3f}; "
                          f"{k} identities resampled; IoU >= {', '.join(f'{t:g}' for t in ths)}")  # fmt: skip
    return lines


def _boxes(rows: list[dict[str, str]] | None) -> dict[str, tuple[float, ...]] | None:
    """identity -> its rectangle, from overlap.csv's rows (one per threshold; the rectangle is the same)."""
    if not rows or any(rows[0].get(k) in (None, "") for k in ("x0", "y0", "x1", "y1")):
        return None
    return {r["identity"]: tuple(float(r[k]) for k in ("x0", "y0", "x1", "y1")) for r in rows}


def read_table1() -> dict[tuple[str, str], float]:
    """The paper's Table 1: (backbone, data set) -> frame AUC of I([N])."""
    with open(PAPER_DIR / "table1_interaction.csv", newline="") as f:
        return {(r["row"], r["column"]): float(r["value"]) for r in csv.DictReader(f)}


def table1_difference(backbone: str | None, data_set: str, kind: str) -> tuple[float | None, str]:
    """(the paper's AUC - 0.5, its basis): the backbone's Table 1 number, else the mean over its
    backbones; None where Table 1 has no such column (DFDC) or the model was trained elsewhere."""
    paper = read_table1()
    trained_on_ffpp = kind == ("in-dataset" if data_set == "ffpp" else "cross-dataset")
    if not trained_on_ffpp or not any(c == data_set for _, c in paper):
        return None, H2_TEXT
    if (backbone, data_set) in paper:
        return paper[(backbone, data_set)] - 0.5, ""
    values = [v for (_, c), v in paper.items() if c == data_set]
    return float(np.mean(values)) - 0.5, f"mean of the paper's {len(values)} backbones"


def interaction_lines(found: Found | None, names: Mapping[str, str]) -> list[Line]:
    """Hypothesis 2 on the binary classifier: a line per data set, its AUC of I([N]) against 0.5."""
    m = names["binary"]
    lines = []
    for s in (found.sets(m) if found else []) or list(DEFAULT_SETS):
        r = found.results.get(m, {}).get(s) if found else None
        kind = (r or {}).get("kind") or ("in-dataset" if s == "ffpp" else "cross-dataset")
        backbone = (found.checkpoints.get(m) or {}).get("backbone") if found else None
        paper, basis = table1_difference(backbone, s, kind)
        line = Line(EXPERIMENT, ARTIFACTS["interaction"], "binary", CHANCE, s, METRICS["interaction"], paper,
                    1 if kind == "in-dataset" else -1, basis)  # fmt: skip
        line.gap = _gap(found, "interaction", ("binary",), names, s)
        lines.append(line)
        if line.gap:
            continue
        ci = r.get("auc_I_ci95") or [None, None]
        if r.get("auc_I") is None or any(v is None or math.isnan(v) for v in ci):
            line.gap = f"interaction.json has no AUC of I([N]) with an interval on {s}: re-run python -m iid.analyze interaction"
            continue
        line.ours = stats.Cell(r["auc_I"] - 0.5, ci[0] - 0.5, ci[1] - 0.5, float("nan"), 1, int(r.get("videos", 0)))
        line.notes.append(f"AUC of I([N]) {r['auc_I']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}], {kind}; {r.get('frames')} frames "
                          f"of {r.get('videos')} videos" + (f"; {backbone}" if backbone else ""))  # fmt: skip
    return lines


def check_folders(folders: Sequence[str | Path]) -> list[Path]:
    for f in folders:
        if not Path(f).is_dir():
            raise UserError(f"analyses: {f} is not a folder (give iid.analyze out= folders: analyses=[runs/analyses,...])")
    return [Path(f) for f in folders]


def lines(folders: Sequence[str | Path], names: Mapping[str, str] | None = None, n_boot: int = 1000) -> list[Line]:
    """Every analysis line: the ID probe's, Table 1's I([N]), the ID overlap's (gaps where missing)."""
    roles = role_names(names)
    found = {a: read(check_folders(folders), a) for a in ANALYSES}
    return [*probe_lines(found["probe"], roles, n_boot), *interaction_lines(found["interaction"], roles),
            *overlap_lines(found["overlap"], roles, n_boot)]  # fmt: skip


def no_verdict(folders: Sequence[str | Path], names: Mapping[str, str] | None = None) -> list[str]:
    """The analyses without a verdict line, each with why (the Markdown lists them)."""
    roles = role_names(names)
    tsne = read(check_folders(folders), "tsne")
    sil = []
    for s in tsne.sets() if tsne else []:  # the numbers, for the reader: identity silhouette per model
        per = {role: tsne.results.get(roles[role], {}).get(s, {}).get("silhouette_identity") for role in ROLES}
        if any(v is not None for v in per.values()):
            sil.append(f"{s}: " + ", ".join(f"{role} {v:.2f}" for role, v in per.items() if v is not None))
    sil_text = f" Identity silhouettes (tsne.json), {'; '.join(sil)}." if sil else ""
    return [
        "t-SNE (IIL Fig. 5a/5c): a picture of 100 frames; the paper's reading of it (the binary classifier's "
        "identities separable, ours' overlapping) is what the ID probe and ID overlap lines measure with intervals, "
        "and tsne.json's silhouettes carry none." + sil_text,
        "Visual results (IIL Fig. 6): the ADM's boxes drawn on faces; the paper states no difference with a sign.",
        "I([N]) of ours, the control or DA+MFS: the paper's Table 1 is of binary classifiers only.",
    ]

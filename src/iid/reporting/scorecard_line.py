"""One line of the reproduction scorecard and its verdict rule (iid.reporting.scorecard builds the
lines of the experiments, iid.reporting.scorecard_analyses those of the analyses)."""

from __future__ import annotations

from dataclasses import dataclass, field

from iid.reporting import stats


def verdict(direction: int, ours: stats.Cell | None) -> str:
    """Where our 95% interval lies with respect to zero, on the side of the paper's sign."""
    if ours is None:
        return "gap"
    if direction == 0:
        return "no direction"
    low, high = sorted((direction * ours.low, direction * ours.high))
    if low > 0:
        return "confirmed"
    return "contradicted" if high < 0 else "unresolved"


@dataclass
class Line:
    experiment: str
    artifact: str  # the paper and its table, e.g. "IIL Table 2"
    row: str
    compared_with: str  # "" for a trend
    column: str
    metric: str
    paper_diff: float | None = None
    direction: int = 0  # the paper's sign: +1, -1, 0 (none)
    basis: str = ""  # where the paper's difference comes from when it is not its two numbers
    ours: stats.Cell | None = None
    gap: str | None = None  # why there is no measurement
    notes: list[str] = field(default_factory=list)

    @property
    def comparison(self) -> str:
        return f"{self.row} vs {self.compared_with}" if self.compared_with else self.row

    @property
    def verdict(self) -> str:
        return "gap" if self.gap is not None else verdict(self.direction, self.ours)

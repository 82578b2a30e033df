"""Small statistics and the result row every benchmark produces."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Goal = Literal[
    "ratio<=",
    "ratio>=",
    "value<=",
    "value>=",
    "ahead-lower",
    "ahead-higher",
    "faster>=",  # reference / ours at least the bound (times, lower is better)
    "ok",
    "info",
]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def p90(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]


@dataclass
class Row:
    """One line of the table: a metric of ours beside its reference and target."""

    bench: str
    metric: str
    unit: str
    ours: float | None
    reference: float | None = None
    ref_name: str = ""
    goal: Goal = "info"
    bound: float | None = None
    note: str = ""
    status: str = ""  # set to "unavailable: reason" when a side could not run
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.reference:
            return None
        return self.ours / self.reference

    @property
    def target(self) -> str:
        if self.goal == "ahead-lower":
            return "ahead (lower)"
        if self.goal == "ahead-higher":
            return "ahead (higher)"
        if self.goal in ("ok", "info") or self.bound is None:
            return {"ok": "all succeed"}.get(self.goal, "-")
        b = self.bound
        return {
            "ratio<=": f"ratio ≤ {b:g}",
            "ratio>=": f"ratio ≥ {b:g}",
            "value<=": f"≤ {b:g} {self.unit}",
            "value>=": f"≥ {b:g} {self.unit}",
            "faster>=": f"≥ {b:g}× faster",
        }[self.goal]

    @property
    def verdict(self) -> str:
        if self.status:
            return self.status
        r, v, b = self.ratio, self.ours, self.bound
        if self.goal == "info":
            return "info"
        if self.goal == "ok":
            return "met" if v else "missed"
        if v is None:
            return "missed"
        met = {
            "ratio<=": r is not None and b is not None and r <= b,
            "ratio>=": r is not None and b is not None and r >= b,
            "value<=": b is not None and v <= b,
            "value>=": b is not None and v >= b,
            "ahead-lower": r is not None and r < 1.0,
            "ahead-higher": r is not None and r > 1.0,
            "faster>=": r is not None and b is not None and r > 0 and 1 / r >= b,
        }[self.goal]
        return "met" if met else "missed"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ratio=self.ratio, target=self.target, verdict=self.verdict)
        return data


def rotate(items: Sequence[Any], turn: int) -> list[Any]:
    """``items`` rotated by ``turn``: ABC, BCA, CAB… so no side always runs first."""
    if not items:
        return []
    k = turn % len(items)
    return [*items[k:], *items[:k]]

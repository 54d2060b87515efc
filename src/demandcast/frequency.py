"""The period of a sales table: a day or a week. One small value, recorded in the bundle.

Everything that steps through time (feature windows, baselines, drift windows, the API's date
arithmetic) counts in *periods* of a :class:`Frequency`, never in hard-coded days. Bottom layer:
imports nothing from the package, so the API can use it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Frequency:
    name: Literal["day", "week"]
    days: int  # length of one period in days
    season: int  # periods in the short repeating cycle: 7 weekdays; 1 for weeks (none)
    year: int  # periods in a year that keeps the season aligned: 364 days = 52 weeks; 52 weeks

    def step(self, periods: int = 1) -> dt.timedelta:
        """The time ``periods`` periods span."""
        return dt.timedelta(days=self.days * periods)

    def periods(self, days: int) -> int:
        """About ``days`` days in whole periods (at least one)."""
        return max(1, round(days / self.days))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "days": self.days, "season": self.season, "year": self.year}


DAY = Frequency("day", days=1, season=7, year=364)
WEEK = Frequency("week", days=7, season=1, year=52)
FREQUENCIES = {f.name: f for f in (DAY, WEEK)}


def from_dict(raw: dict[str, Any]) -> Frequency:
    """The frequency recorded in a bundle; ``ValueError`` if it is not one this code knows."""
    known = FREQUENCIES.get(raw.get("name", ""))
    if known is None or known.as_dict() != raw:
        raise ValueError(f"unknown frequency {raw!r}; this code knows {list(FREQUENCIES)}")
    return known

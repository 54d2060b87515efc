"""The data feed: ``python -m demandcast append --days N`` adds the next N days of sales.

The synthetic source is a pure function of ``data.synthetic`` in params.yaml, and its generator
is append-only (each series draws its noise one day at a time), so "the next N days" is an edit
of params.yaml: ``days += N``; an injected change is an entry of ``changes`` (or a cohort of new
items) starting on the first new day. Every earlier day stays exactly as it was, as in a real
daily export. The edit keeps the file's comments and layout, and the result is validated before
it replaces the file.

A user's file source has no generator to continue: its new data arrives as a newer export in
``data/raw/`` (replace the file, or ``dvc update`` a ``dvc import-url``); see the README.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from demandcast.config import Params, Synthetic, parse_params
from demandcast.data.synthetic import last_day
from demandcast.errors import ConfigError


@dataclass(frozen=True)
class Injection:
    """A change to the new days: demand level, weekday pattern, new series."""

    level_shift: float = 0.0  # +0.3 = 30% more demand from the first new day on
    weekly_pattern: tuple[float, ...] | None = None  # Monday..Sunday, relative
    stores: tuple[int, ...] | None = None  # the stores the shift/pattern applies to; None = all
    new_items: int = 0  # items that start selling on the first new day, in every store

    @property
    def changes_demand(self) -> bool:
        return self.level_shift != 0.0 or self.weekly_pattern is not None


@dataclass(frozen=True)
class Appended:
    first_day: dt.date
    last_day: dt.date
    injection: Injection

    def describe(self) -> str:
        parts = [f"{self.first_day} .. {self.last_day}"]
        inj = self.injection
        where = f" in stores {list(inj.stores)}" if inj.stores else ""
        if inj.level_shift:
            parts.append(f"level shift {inj.level_shift:+.0%}{where}")
        if inj.weekly_pattern is not None:
            parts.append(f"weekly pattern {list(inj.weekly_pattern)}{where}")
        if inj.new_items:
            parts.append(f"{inj.new_items} new items in every store")
        return ", ".join(parts)


def float_list(text: str) -> tuple[float, ...]:
    """``"1,1.5,2"`` -> ``(1.0, 1.5, 2.0)``, for command-line options."""
    return tuple(float(part) for part in text.split(",") if part.strip())


def int_list(text: str) -> tuple[int, ...]:
    """``"1,2"`` -> ``(1, 2)``, for command-line options."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def check(injection: Injection, cfg: Synthetic, days: int) -> None:
    """Refuse options that make no sense for this configuration, with what to do instead."""
    if days < 1:
        raise ConfigError(f"--days {days}: append at least one day")
    if injection.level_shift <= -1:
        raise ConfigError(
            f"--level-shift {injection.level_shift}: demand would be <= 0; use a value above -1"
        )
    pattern = injection.weekly_pattern
    if pattern is not None and (len(pattern) != 7 or min(pattern) <= 0):
        raise ConfigError(
            f"--weekly-pattern {','.join(map(str, pattern))}: give 7 positive numbers, "
            "Monday to Sunday (e.g. 1,1,1,1,1,1.5,1.5)"
        )
    if injection.stores is not None:
        if not injection.changes_demand:
            raise ConfigError("--stores restricts --level-shift/--weekly-pattern; give one of them")
        unknown = sorted(set(injection.stores) - set(range(1, cfg.stores + 1)))
        if unknown:
            raise ConfigError(f"--stores: no store {unknown}; stores are 1..{cfg.stores}")
    if injection.new_items < 0:
        raise ConfigError(f"--new-items {injection.new_items}: must be >= 0")
    if injection.new_items and cfg.new_items:
        raise ConfigError(
            f"data.synthetic already has {cfg.new_items} new items (from "
            f"{cfg.new_items_start or cfg.start}); the generator supports one cohort of new items"
        )


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments, quotes and layout
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _section(parent: CommentedMap, key: str) -> CommentedMap:
    if not isinstance(parent.get(key), dict):
        parent[key] = CommentedMap()
    return parent[key]


def _flow(value: CommentedMap | CommentedSeq) -> CommentedMap | CommentedSeq:
    value.fa.set_flow_style()
    return value


def append_days(text: str, days: int, injection: Injection | None = None) -> tuple[str, Appended]:
    """The text of a params file with ``days`` more synthetic days (and the injection).

    Raises :class:`ConfigError` when the file is invalid, is not a synthetic source, or the
    options do not fit it.
    """
    injection = injection or Injection()
    params = parse_params(text)
    if params.data.source != "synthetic":
        raise ConfigError(
            f"data.source is {params.data.source!r}: append continues the synthetic generator "
            f"only. New data for your file arrives as a newer export: replace "
            f"{params.data.path} with it (or `dvc update` it if you track it with "
            "`dvc import-url`), then `dvc repro -s drift` to check drift, `dvc repro` to retrain."
        )
    cfg = params.data.synthetic
    check(injection, cfg, days)
    first = last_day(cfg) + dt.timedelta(days=1)
    appended = Appended(first, first + dt.timedelta(days=days - 1), injection)

    yaml = _yaml()
    doc = yaml.load(text) or CommentedMap()
    synthetic = _section(_section(doc, "data"), "synthetic")
    synthetic["days"] = cfg.days + days
    if injection.changes_demand:
        change = CommentedMap(start=str(first))  # quoted in the file: DVC reads dates as text
        if injection.level_shift:
            change["level_shift"] = injection.level_shift
        if injection.weekly_pattern is not None:
            change["weekly_pattern"] = _flow(CommentedSeq(map(float, injection.weekly_pattern)))
        if injection.stores is not None:
            change["stores"] = _flow(CommentedSeq(injection.stores))
        changes = synthetic.get("changes")
        if not isinstance(changes, list):
            changes = synthetic["changes"] = CommentedSeq()
        if not changes:
            _flow(changes)
        changes.append(_flow(change))
    if injection.new_items:
        synthetic["new_items"] = injection.new_items
        synthetic["new_items_start"] = str(first)
    out = io.StringIO()
    yaml.dump(doc, out)
    new_text = out.getvalue()
    _verify(parse_params(new_text, "params.yaml after append"), params, appended)
    return new_text, appended


def _verify(new: Params, old: Params, appended: Appended) -> None:
    """The edited file says exactly what was asked, and nothing else changed."""
    cfg = new.data.synthetic
    expected_changes = len(old.data.synthetic.changes) + appended.injection.changes_demand
    if last_day(cfg) != appended.last_day or len(cfg.changes) != expected_changes:
        raise AssertionError(f"params edit went wrong: {cfg}")  # a bug here, not a user error
    unchanged = new.model_dump(exclude={"data": {"synthetic"}})
    if unchanged != old.model_dump(exclude={"data": {"synthetic"}}):
        raise AssertionError("params edit changed more than data.synthetic")

"""Chain-table benchmark: the pipeline on a lookalike of the public drug-store chain export.

The real table (1,115 stores, 2013-01-01 .. 2015-07-31, one row per store and day) cannot be
shipped or downloaded, so this script synthesises a LOOKALIKE with the same columns, the same
messy types and the same kinds of effects, deterministic from ``--seed``, then runs the whole
pipeline on it in a scratch repository (as ``benchmarks/pipeline.py`` does; the stages run the
scratch copy of ``src/``, through ``PYTHONPATH``, not the working tree) with the data contract
of the README, and compares its RMSPE with a "covariates only" XGBoost (no sales lags),
the reference users quote (0.129 on the real table; the target is RMSPE <= 0.11).

    python benchmarks/chain_table.py                  # 1,115 stores, ~1.02 M rows
    python benchmarks/chain_table.py --stores 100     # a quick run
    python benchmarks/chain_table.py --seed 7 --keep  # keep the scratch repository

The files (``data/raw/train.csv`` and ``data/raw/store.csv`` of the scratch repository)
--------------------------------------------------------------------------------------------
``train.csv``: ``Store, DayOfWeek, Date, Sales, Customers, Open, Promo, StateHoliday,
SchoolHoliday``, sorted by Date descending then Store, as the real export is.

* ``DayOfWeek``: 1 = Monday .. 7 = Sunday; ``Customers``: an integer, 0 on closed days (both
  are in the file but are not mapped by the params: the pipeline must ignore them).
* ``StateHoliday``: ``0`` (none), ``a`` (public holiday), ``b`` (Easter: Good Friday, Easter
  Monday), ``c`` (Christmas: 25 and 26 December), from the ``holidays`` package's calendar of
  the store's federal state (stores are spread over 11 states, so the column differs between
  stores on the same day). Rows from 2014-01-01 on (the first ~60% of the file) write it as
  quoted text (``"0"``, ``"a"``), older rows write the number ``0`` bare: pandas reads the
  column as a mix of the int ``0`` and the strings ``"0"``/``"a"``, as with the real file.
  ``SchoolHoliday`` is written the same way (``"1"`` quoted from 2014, ``1`` bare before).
* ``Open``: 0 on closed days, whose ``Sales`` (and ``Customers``) are 0. Closed: Sundays for
  every store except the Sunday stores (all of store type ``b`` + 1.5% of the others, ~30 of
  1,115); every ``b``/``c`` holiday, and the store's ``a`` holidays except for Sunday stores;
  refurbishments (below). A few open days have ``Sales`` 0 anyway (54 per 1,115 stores, as in
  the real table: open but nothing sold).
* The half-year gap: the stores of one state (Bavaria; 180 of 1,115 stores, scaled with
  ``--stores``) have NO rows from 2014-07-01 to 2014-12-31 (not zero rows: none).
* Refurbishments: 3% of the stores (33 of 1,115; at least 1) close once for 14..70 days
  (rows present, ``Open`` 0, ``Sales`` 0). The last of them always reopens inside the last 90
  days, so the holdout always has one reopening.

``store.csv``: ``Store, StoreType (a-d: 54/1.5/13/31%), Assortment (a/b/c; b only in type b),
CompetitionDistance (metres, lognormal median 2.3 km, 20 m .. 76 km; 3 per 1,115 stores empty,
at least 1), CompetitionOpenSinceMonth/Year (empty for 32%; 20% of the known ones open during
the data), Promo2 (0/1, 49%), Promo2SinceWeek/Year, PromoInterval ("Jan,Apr,Jul,Oct",
"Feb,May,Aug,Nov" or "Mar,Jun,Sept,Dec"; empty without Promo2)``.

How Sales are made (multiplicative, per open store-day)
-------------------------------------------------------
``Sales = round(level x effects x exp(noise))``, then the whole table is scaled so that the
mean over open days with sales is 6,955 (the real table's).

* store level: lognormal, sd 0.33 in log; type ``b`` x1.6, type ``d`` x1.02; assortment ``c``
  x1.08, ``b`` x0.8; Promo2 stores x0.93;
* trend: each store grows ``g`` per year, g ~ N(2%, 4%) (a store's level moves);
* slow local drift: an AR(1) on the log scale per store, daily coefficient 0.995, stationary
  sd 4% (what the covariates cannot see; 90-day-old sales still carry 64% of it);
* day of week: Mon 1.15, Tue 1.02, Wed 0.97, Thu 0.96, Fri 1.01, Sat 0.88, Sun 1.05 (Sunday
  stores), times a per-store perturbation (lognormal, sd 3%);
* promotion (``Promo``, chain-wide, Monday..Friday of every other week with an occasional extra
  week off; ~35% of days): x(1 + u), u ~ U(0.20, 0.40) per store, 1.25 u on Mondays;
* Promo2 (the store's ``PromoInterval`` months, once started): x1.03;
* month: Jan 0.94, Feb 0.95, Mar 0.99, Apr..Jun 1.00, Jul 1.03, Aug 0.99, Sep 0.97, Oct
  0.98, Nov 1.03, Dec 1.06; day of month (paydays): 1st..3rd x1.06, 4th..5th x1.02, 16th..22nd
  x0.97, 29th..31st x1.03;
* December: 14th..23rd a ramp from x1.10 to x1.45, 24th x0.85 (short day), 27th..30th x1.15,
  31st x0.85;
* holidays, per store: the last open day before a holiday closure (also across a Sunday)
  x1.20, the open day before that x1.07, the first open day after x1.10; a Sunday store open
  on an ``a`` holiday x1.15;
* school holidays (``SchoolHoliday``: per state, Christmas, Easter 2 weeks, Whitsun 11 days
  in BY and BW, summer ~6 weeks staggered by state and year, autumn 12 days, public holidays):
  x(1 + v), v ~ U(0, 8%) per store;
* competition: a competitor opening during the data (``CompetitionOpenSince``) cuts sales by
  5% + 15% exp(-distance / 2 km), reached linearly over 30 days;
* reopening after a refurbishment: x(1 + A exp(-k / 4)) on day k after reopening (k = 0, 1,
  ..), A ~ U(0.5, 1.0) per refurbishment;
* noise: multiplicative lognormal per store-day, sd 0.09 (~9%).

Customers = Sales / basket (U(7, 12) per store, x1.1 for assortment c) / promo_effect^0.4 x
lognormal noise sd 5%, rounded.

What it prints
--------------
From ``reports/metrics.json``: RMSPE on open days (``holdout_open``), SMAPE on all days and on
open days, the baselines (SMAPE, WAPE); the time of ``dvc repro`` (and of each stage), the
peak RSS of the pipeline's largest process; then the covariates-only XGBoost's RMSPE on the
same rows (open days with Sales > 0 in the last 90 days), the RMSPE of the generator's true
median (the floor the noise leaves), and the RMSPE of each forecast by kind of day (promotion,
weekday, around holidays, after a refurbishment, stores of the half-year gap, a new competitor).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
import pandas as pd
import yaml
from dateutil.easter import easter

ROOT = Path(__file__).resolve().parents[1]
START, END = pd.Timestamp("2013-01-01"), pd.Timestamp("2015-07-31")
GAP_START, GAP_END = pd.Timestamp("2014-07-01"), pd.Timestamp("2014-12-31")
QUOTED_FROM = pd.Timestamp("2014-01-01")  # StateHoliday/SchoolHoliday written as quoted text
HORIZON = 90
REAL_STORES = 1115
MEAN_SALES = 6955.0  # mean sales per open store-day with sales, as in the real table
NOISE_SD = 0.09

TYPES = {"a": 602, "b": 17, "c": 148, "d": 348}
TYPE_EFFECT = {"a": 1.0, "b": 1.6, "c": 1.0, "d": 1.02}
ASSORTMENT_EFFECT = {"a": 1.0, "b": 0.8, "c": 1.08}
GAP_STATE = "BY"
# the other states' shares of the stores outside BY, percent
STATES = {"NW": 31, "HE": 12, "SH": 11, "BE": 10, "BW": 10, "SN": 8, "NI": 7}
STATES |= {"RP": 4, "TH": 4, "ST": 3}
DOW = [1.15, 1.02, 0.97, 0.96, 1.01, 0.88, 1.05]
MONTH = [0.94, 0.95, 0.99, 1.00, 1.00, 1.00, 1.03, 0.99, 0.97, 0.98, 1.03, 1.06]
INTERVALS = {"Jan,Apr,Jul,Oct": 0.6, "Feb,May,Aug,Nov": 0.23, "Mar,Jun,Sept,Dec": 0.17}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec"]


@dataclass
class Lookalike:
    train: pd.DataFrame  # the rows of train.csv, in file order (StateHoliday as text)
    store: pd.DataFrame  # store.csv
    truth: pd.DataFrame  # Store, Date, median (the noise-free sales) and tags of each row


def _scaled(count: int, stores: int, minimum: int = 1) -> int:
    return max(minimum, round(count * stores / REAL_STORES))


def _state_calendars(states: list[str], dates: pd.DatetimeIndex, rng: np.random.Generator):
    """Per state: the StateHoliday letter of each day and the SchoolHoliday flag."""
    years = sorted(set(dates.year))
    letters, school = {}, {}
    for state in states:
        letter = np.full(len(dates), "0", dtype=object)
        days = holidays.country_holidays("DE", subdiv=state, years=years)
        for day in days:
            at = dates.get_indexer([pd.Timestamp(day)])[0]
            if at < 0:
                continue
            letter[at] = "a"
            if day in (easter(day.year) - dt.timedelta(2), easter(day.year) + dt.timedelta(1)):
                letter[at] = "b"
            if day.month == 12 and day.day in (25, 26):
                letter[at] = "c"
        flag = letter != "0"
        spans = []
        for year in [*years, years[-1] + 1]:
            e = pd.Timestamp(easter(year))
            spans.append((pd.Timestamp(year - 1, 12, 23), pd.Timestamp(year, 1, 6)))
            shift = int(rng.choice([-7, 0, 0, 7]))
            spans.append((e - pd.Timedelta(days=8 - shift), e + pd.Timedelta(days=6 + shift)))
            if state in ("BY", "BW"):
                pentecost = e + pd.Timedelta(days=50)
                spans.append((pentecost + pd.Timedelta(days=1), pentecost + pd.Timedelta(days=11)))
            offset = int(rng.integers(36, 42) if state == "BY" else rng.integers(0, 40))
            summer = pd.Timestamp(year, 6, 22) + pd.Timedelta(days=offset)
            spans.append((summer, summer + pd.Timedelta(days=43)))
            autumn = pd.Timestamp(year, 10, 5) + pd.Timedelta(days=int(rng.integers(0, 22)))
            spans.append((autumn, autumn + pd.Timedelta(days=11)))
        for lo, hi in spans:
            flag |= (dates >= lo) & (dates <= hi)
        letters[state], school[state] = letter, flag
    return letters, school


def _promo_days(dates: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """Chain-wide promotions: Monday..Friday of every other week, now and then a week more off."""
    week = (dates - pd.Timestamp("2012-12-31")).days // 7
    on_weeks = set()
    w = 0
    while w <= week.max():
        on_weeks.add(w)
        w += 3 if rng.random() < 0.1 else 2
    return np.isin(week, list(on_weeks)) & (dates.dayofweek < 5)


def _shift(matrix: np.ndarray, by: int) -> np.ndarray:
    """``out[:, d] = matrix[:, d + by]`` (False beyond the edges)."""
    out = np.zeros_like(matrix)
    if by > 0:
        out[:, :-by] = matrix[:, by:]
    else:
        out[:, -by:] = matrix[:, :by]
    return out


def synthesize(n_stores: int, seed: int) -> Lookalike:
    """The lookalike train and store tables (see the module docstring for every effect)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range(START, END, freq="D")
    n_days, s_ids = len(dates), np.arange(1, n_stores + 1)
    dow, month, day = dates.dayofweek.to_numpy(), dates.month.to_numpy(), dates.day.to_numpy()

    # --- the store file
    p = np.array(list(TYPES.values()), dtype=float)
    store_type = rng.choice(list(TYPES), n_stores, p=p / p.sum())
    assortment = np.where(rng.random(n_stores) < 0.53, "a", "c").astype(object)
    is_b = store_type == "b"
    assortment[is_b] = np.where(rng.random(is_b.sum()) < 9 / 17, "b", "a")
    distance = np.clip(np.round(np.exp(rng.normal(np.log(2300), 1.2, n_stores)), -1), 20, 75860)
    no_distance = rng.choice(n_stores, _scaled(3, n_stores), replace=False)
    distance[no_distance] = np.nan
    since_known = (rng.random(n_stores) > 0.32) & ~np.isnan(distance)
    recent = rng.random(n_stores) < 0.2
    since_year = np.where(recent, rng.integers(2013, 2016, n_stores), 0)
    old = 2012 - np.minimum(rng.geometric(0.18, n_stores) - 1, 22)
    since_year = np.where(recent, since_year, old)
    since_month = rng.integers(1, 13, n_stores)
    since_month = np.where(since_year == 2015, np.minimum(since_month, 6), since_month)
    promo2 = rng.random(n_stores) < 0.49
    p2_year = rng.choice([2009, 2010, 2011, 2012, 2013, 2014, 2015], n_stores)
    p2_week = rng.choice([1, 5, 10, 13, 14, 18, 22, 23, 27, 31, 35, 37, 40, 44, 45, 48], n_stores)
    p2_week = np.where(p2_year == 2015, np.minimum(p2_week, 22), p2_week)
    interval = rng.choice(list(INTERVALS), n_stores, p=list(INTERVALS.values()))
    store = pd.DataFrame(
        {
            "Store": s_ids,
            "StoreType": store_type,
            "Assortment": assortment,
            "CompetitionDistance": pd.array(distance, dtype="Float64").astype("Int64"),
            "CompetitionOpenSinceMonth": pd.array(np.where(since_known, since_month, 0)),
            "CompetitionOpenSinceYear": pd.array(np.where(since_known, since_year, 0)),
            "Promo2": promo2.astype(int),
            "Promo2SinceWeek": pd.array(p2_week),
            "Promo2SinceYear": pd.array(p2_year),
            "PromoInterval": interval.astype(object),
        }
    )
    for column in ("CompetitionOpenSinceMonth", "CompetitionOpenSinceYear"):
        store[column] = store[column].astype("Int64").where(since_known)
    for column in ("Promo2SinceWeek", "Promo2SinceYear"):
        store[column] = store[column].astype("Int64").where(promo2)
    store["PromoInterval"] = store["PromoInterval"].where(promo2)

    # --- states, calendars, who opens when
    n_gap = _scaled(180, n_stores)
    gap_store = np.zeros(n_stores, dtype=bool)
    gap_store[rng.choice(n_stores, n_gap, replace=False)] = True
    weights = np.array(list(STATES.values()), dtype=float)
    state = np.where(
        gap_store, GAP_STATE, rng.choice(list(STATES), n_stores, p=weights / weights.sum())
    )
    letters, school = _state_calendars(sorted(set(state)), dates, rng)
    letter = np.stack([letters[s] for s in state])  # (stores, days)
    school_flag = np.stack([school[s] for s in state])
    sunday_store = is_b | (rng.random(n_stores) < 0.015)
    if not sunday_store.any():
        sunday_store[rng.integers(n_stores)] = True
    present = np.ones((n_stores, n_days), dtype=bool)
    present[np.ix_(gap_store, (dates >= GAP_START) & (dates <= GAP_END))] = False
    holiday_open = sunday_store[:, None] & (letter == "a")
    holiday_closed = (letter != "0") & ~holiday_open
    sunday_closed = (dow == 6)[None, :] & ~sunday_store[:, None]
    refurb = np.zeros((n_stores, n_days), dtype=bool)
    spike = np.zeros((n_stores, n_days))
    after_refurb = np.zeros((n_stores, n_days), dtype=bool)
    n_refurb = _scaled(33, n_stores)
    holdout_start = n_days - HORIZON
    for k, s in enumerate(rng.choice(n_stores, n_refurb, replace=False)):
        length = int(rng.integers(14, 71))
        if k == n_refurb - 1:  # one reopening inside the holdout, always
            reopen = int(rng.integers(holdout_start + 10, n_days - 30))
            start = reopen - length
        else:
            start = int(rng.integers(30, n_days - 20))
            reopen = start + length
        refurb[s, start : min(reopen, n_days)] = True
        after = np.arange(reopen, min(reopen + 28, n_days))
        spike[s, after] = np.log1p(rng.uniform(0.5, 1.0) * np.exp(-(after - reopen) / 4))
        after_refurb[s, reopen : min(reopen + 14, n_days)] = True
    is_open = ~(holiday_closed | sunday_closed | refurb)
    closed = ~is_open
    pre1 = is_open & (_shift(holiday_closed, 1) | (_shift(closed, 1) & _shift(holiday_closed, 2)))
    pre2 = is_open & _shift(pre1, 1)
    post1 = is_open & (
        _shift(holiday_closed, -1) | (_shift(closed, -1) & _shift(holiday_closed, -2))
    )
    promo = _promo_days(dates, rng)

    # --- the log of the noise-free sales
    level = rng.normal(np.log(5500), 0.33, n_stores)
    level += np.log([TYPE_EFFECT[t] for t in store_type])
    level += np.log([ASSORTMENT_EFFECT[a] for a in assortment]) + np.log(0.93) * promo2
    years = (dates - START).days.to_numpy() / 365.25
    log_mu = level[:, None] + rng.normal(0.02, 0.04, n_stores)[:, None] * years[None, :]
    profile = np.log(DOW)[None, :] + rng.normal(0, 0.03, (n_stores, 7))
    log_mu += profile[:, dow]
    uplift = rng.uniform(0.20, 0.40, n_stores)[:, None] * np.where(dow == 0, 1.25, 1.0)
    promo_effect = np.log1p(uplift) * promo[None, :]
    log_mu += promo_effect
    log_mu += np.log(MONTH)[month - 1][None, :]
    payday = np.select(
        [day <= 3, day <= 5, (day >= 16) & (day <= 22), day >= 29], [1.06, 1.02, 0.97, 1.03], 1.0
    )
    december = np.ones(n_days)
    dec = month == 12
    december[dec & (day >= 14) & (day <= 23)] = (
        1.10 + (day[dec & (day >= 14) & (day <= 23)] - 14) / 9 * 0.35
    )
    december[dec & (day == 24)] = 0.85
    december[dec & (day >= 27) & (day <= 30)] = 1.15
    december[dec & (day == 31)] = 0.85
    log_mu += np.log(payday * december)[None, :]
    log_mu += np.log(1.20) * pre1 + np.log(1.07) * pre2 + np.log(1.10) * post1
    log_mu += np.log(1.15) * (holiday_open & is_open)
    log_mu += np.log1p(rng.uniform(0, 0.08, n_stores))[:, None] * school_flag
    in_interval = np.array(
        [[MONTHS[m - 1] in iv.split(",") for m in range(1, 13)] for iv in interval]
    )[:, month - 1]
    p2_start = pd.to_datetime(
        [f"{y}-W{w:02d}-1" for y, w in zip(p2_year, p2_week, strict=True)], format="%G-W%V-%u"
    )
    p2_active = promo2[:, None] & (dates.to_numpy()[None, :] >= p2_start.to_numpy()[:, None])
    log_mu += np.log(1.03) * (p2_active & in_interval)
    comp_start = pd.to_datetime(
        {"year": np.where(since_known, since_year, 1900), "month": since_month, "day": 1}
    ).to_numpy()
    in_data = since_known & (comp_start > np.datetime64(START))
    days_since = (dates.to_numpy()[None, :] - comp_start[:, None]) / np.timedelta64(1, "D")
    drop = 0.05 + 0.15 * np.exp(-np.nan_to_num(distance, nan=1e9) / 2000)
    ramp = np.clip(days_since / 30, 0, 1) * in_data[:, None]
    log_mu += np.log1p(-drop)[:, None] * ramp
    new_competitor = in_data[:, None] & (days_since >= 0) & (days_since < 365)
    drift = np.empty((n_stores, n_days))
    drift[:, 0] = rng.normal(0, 0.04, n_stores)
    shocks = rng.normal(0, 0.04 * np.sqrt(1 - 0.995**2), (n_stores, n_days))
    for d in range(1, n_days):
        drift[:, d] = 0.995 * drift[:, d - 1] + shocks[:, d]
    log_mu += drift + spike

    # --- noise, zeros, scale
    noise = rng.normal(0, NOISE_SD, (n_stores, n_days))
    raw = np.exp(log_mu + noise)
    sells = is_open & present
    candidates = np.flatnonzero(sells.ravel())
    nothing = rng.choice(candidates, _scaled(54, n_stores), replace=False)
    sells.ravel()[nothing] = False
    scale = MEAN_SALES / raw[sells].mean()
    sales = np.where(sells, np.round(raw * scale), 0.0)
    median = np.where(is_open, np.exp(log_mu) * scale, 0.0)
    basket = rng.uniform(7, 12, n_stores) * np.where(assortment == "c", 1.1, 1.0)
    customers = sales / basket[:, None] / np.exp(0.4 * promo_effect)
    customers = np.round(customers * np.exp(rng.normal(0, 0.05, (n_stores, n_days))))

    # --- rows: Date descending, Store ascending, as the real export
    d_rev, s = np.nonzero(present.T[::-1])
    d = n_days - 1 - d_rev
    train = pd.DataFrame(
        {
            "Store": s_ids[s],
            "DayOfWeek": dow[d] + 1,
            "Date": dates[d].strftime("%Y-%m-%d"),
            "Sales": sales[s, d].astype(np.int64),
            "Customers": customers[s, d].astype(np.int64),
            "Open": is_open[s, d].astype(np.int64),
            "Promo": promo[d].astype(np.int64),
            "StateHoliday": letter[s, d],
            "SchoolHoliday": school_flag[s, d].astype(np.int64),
        }
    )
    truth = pd.DataFrame(
        {
            "Store": s_ids[s],
            "Date": dates[d],
            "median": median[s, d],
            "promo": promo[d],
            "pre_holiday": pre1[s, d] | pre2[s, d],
            "post_holiday": post1[s, d],
            "after_refurb": after_refurb[s, d],
            "gap_store": gap_store[s],
            "sunday_store": sunday_store[s],
            "new_competitor": new_competitor[s, d],
            "school": school_flag[s, d],
        }
    )
    return Lookalike(train=train, store=store, truth=truth)


def write_csvs(look: Lookalike, raw_dir: Path) -> tuple[Path, Path]:
    """train.csv with StateHoliday/SchoolHoliday quoted from 2014 on, bare before; store.csv."""
    frame = look.train.copy()
    quoted = frame["Date"].to_numpy() >= QUOTED_FROM.strftime("%Y-%m-%d")
    for column in ("StateHoliday", "SchoolHoliday"):
        text = frame[column].astype(str)
        frame[column] = np.where(quoted, '"' + text + '"', text)
    train_path, store_path = raw_dir / "train.csv", raw_dir / "store.csv"
    # the quotes are in the values: write them as they are (no other field needs quoting)
    frame.to_csv(train_path, index=False, quoting=csv.QUOTE_NONE, quotechar="'")
    look.store.to_csv(store_path, index=False)
    return train_path, store_path


def chain_params() -> dict:
    """params.yaml with the data contract of the README for this table; other keys as is."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["horizon"] = HORIZON
    params["data"].update(
        {
            "source": "file",
            "path": "data/raw/train.csv",
            "columns": {"date": "Date", "store": "Store", "item": None, "sales": "Sales"}
            | {"open": "Open"},
            "covariates": {"Promo": "flag", "StateHoliday": "category", "SchoolHoliday": "flag"},
            "attributes": {
                "path": "data/raw/store.csv",
                "key": "store",
                "column": "Store",
                "columns": {
                    "StoreType": "category",
                    "Assortment": "category",
                    "CompetitionDistance": "number",
                    "Promo2": "flag",
                },
            },
            "future_path": None,
        }
    )
    params["features"]["holidays"] = {"country": "DE", "subdiv": None}
    return params


def _env(repo: Path) -> dict[str, str]:
    """dvc from this venv; the stages import the scratch copy of the package, not the tree."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONPATH": str(repo / "src")}


def sh(cmd: list[str], repo: Path, log: Path | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    with open(log or os.devnull, "w") as out:
        done = subprocess.run(cmd, cwd=repo, env=_env(repo), stdout=out, stderr=subprocess.STDOUT)
    return time.perf_counter() - started, done.returncode


def make_repo(scratch: Path, look: Lookalike) -> Path:
    repo = scratch / "repo"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    (repo / "data" / "raw").mkdir(parents=True)
    write_csvs(look, repo / "data" / "raw")
    (repo / "params.yaml").write_text(yaml.safe_dump(chain_params(), sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        sh(cmd, repo)
    sh(["dvc", "config", "core.analytics", "false"], repo)
    return repo


def rmspe(actual: np.ndarray, forecast: np.ndarray) -> float:
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    keep = actual > 0
    return float(np.sqrt(np.mean(((actual[keep] - forecast[keep]) / actual[keep]) ** 2)))


def covariate_xgb(raw_dir: Path, seed: int) -> pd.DataFrame:
    """The reference: XGBoost on the covariates alone (no sales lags), log target, trained on
    the open days with sales before the last 90 days; its forecast of those 90 days."""
    import xgboost as xgb

    train = pd.read_csv(raw_dir / "train.csv", dtype={"StateHoliday": str}, low_memory=False)
    stores = pd.read_csv(raw_dir / "store.csv")
    frame = train.merge(stores, on="Store", how="left")
    date = pd.to_datetime(frame["Date"])
    x = pd.DataFrame(
        {
            "Store": frame["Store"].astype("category"),
            "DayOfWeek": frame["DayOfWeek"],
            "month": date.dt.month,
            "day": date.dt.day,
            "weekofyear": date.dt.isocalendar().week.astype(int),
            "Promo": frame["Promo"],
            "StateHoliday": frame["StateHoliday"].astype("category"),
            "SchoolHoliday": frame["SchoolHoliday"],
            "StoreType": frame["StoreType"].astype("category"),
            "Assortment": frame["Assortment"].astype("category"),
            "CompetitionDistance": frame["CompetitionDistance"],
            "Promo2": frame["Promo2"],
        }
    )
    cutoff = date.max() - pd.Timedelta(days=HORIZON)
    fit_rows = ((date <= cutoff) & (frame["Open"] == 1) & (frame["Sales"] > 0)).to_numpy()
    ahead = (date > cutoff).to_numpy()
    dtrain = xgb.DMatrix(
        x[fit_rows], label=np.log(frame.loc[fit_rows, "Sales"]), enable_categorical=True
    )
    booster = xgb.train(
        {
            "objective": "reg:squarederror",
            "tree_method": "hist",
            "eta": 0.1,
            "max_depth": 10,
            "subsample": 0.9,
            "colsample_bytree": 0.7,
            "min_child_weight": 20,
            "max_cat_to_onehot": 1,
            "seed": seed,
            "nthread": os.cpu_count() or 2,
        },
        dtrain,
        num_boost_round=600,
    )
    predicted = np.exp(booster.predict(xgb.DMatrix(x[ahead], enable_categorical=True)))
    out = frame.loc[ahead, ["Store", "Sales", "Open"]].assign(Date=date[ahead].to_numpy())
    return out.assign(covariates_xgb=np.where(out["Open"] == 1, predicted, 0.0))


def pipeline_rows(repo: Path) -> pd.DataFrame:
    """The eval model's holdout rows (actual, predicted, baselines), from the scratch copy."""
    sys.path.insert(0, str(repo / "src"))
    from demandcast import bundle
    from demandcast.evaluate import holdout_frame

    prepared = pd.read_parquet(repo / "data" / "prepared.parquet")
    frame = holdout_frame(prepared, bundle.read(repo / "models" / "eval"))
    return frame.rename(columns={"store": "Store", "date": "Date"})


SEGMENTS = {
    "all": lambda f: np.ones(len(f), dtype=bool),
    "promo": lambda f: f["promo"],
    "no promo": lambda f: ~f["promo"],
    "Monday": lambda f: f["Date"].dt.dayofweek == 0,
    "Saturday": lambda f: f["Date"].dt.dayofweek == 5,
    "Sunday (open)": lambda f: f["Date"].dt.dayofweek == 6,
    "before a holiday": lambda f: f["pre_holiday"],
    "after a holiday": lambda f: f["post_holiday"],
    "school holiday": lambda f: f["school"],
    "14 days after refurb.": lambda f: f["after_refurb"],
    "half-year-gap stores": lambda f: f["gap_store"],
    "new competitor (<1y)": lambda f: f["new_competitor"],
}


def segment_table(rows: pd.DataFrame) -> str:
    """RMSPE of each forecast by kind of day (open days with sales); a baseline that does not
    cover every row (last_year: no sales a year before) is scored on the rows it covers (*)."""
    names = {
        "predicted": "ours",
        "covariates_xgb": "cov. XGB",
        "last_year": "last_year",
        "median": "true median",
    }
    lines = [f"{'RMSPE on':<24}{'rows':>8}" + "".join(f"{n:>13}" for n in names.values())]
    for label, select in SEGMENTS.items():
        part = rows.loc[np.asarray(select(rows), dtype=bool)]
        if part.empty:
            continue
        cells = ""
        for column in names:
            known = part[column].notna().to_numpy()
            value = (
                rmspe(part.loc[known, "actual"], part.loc[known, column]) if known.any() else np.nan
            )
            cells += f"{value:>12.4f}{'*' if not known.all() else ' '}"
        lines.append(f"{label:<24}{len(part):>8}{cells}")
    return "\n".join(lines)


def stage_times(log: Path) -> str:
    found = re.findall(r"^\S+ (\w+): done in ([\d.]+) s", log.read_text(), flags=re.M)
    return ", ".join(f"{name} {float(s):.0f} s" for name, s in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=REAL_STORES, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the scratch repository")
    args = parser.parse_args()
    if args.stores < 1:
        parser.error("--stores must be >= 1")

    started = time.perf_counter()
    look = synthesize(args.stores, args.seed)
    generated = time.perf_counter() - started
    scratch = Path(tempfile.mkdtemp(prefix="demandcast-chain-"))
    repo = make_repo(scratch, look)
    open_rows = look.train["Open"] == 1
    print(
        f"lookalike: {args.stores} stores, {len(look.train):,} rows "
        f"({START.date()} .. {END.date()}), {int((~open_rows).sum()):,} closed, mean sales "
        f"on open days {look.train.loc[open_rows & (look.train['Sales'] > 0), 'Sales'].mean():,.0f}"
        f"; made in {generated:.1f} s (seed {args.seed})"
    )

    log = scratch / "repro.log"
    seconds, code = sh(["dvc", "repro"], repo, log)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if code != 0:
        print(f"dvc repro FAILED (exit {code}) after {seconds:.0f} s; the end of {log}:")
        print("\n".join(log.read_text().splitlines()[-40:]))
        print(f"scratch repository kept: {repo}")
        raise SystemExit(1)
    print(f"dvc repro: {seconds:.0f} s ({stage_times(log)}); peak RSS {peak_mb:,.0f} MB")

    prepared = json.loads((repo / "reports" / "prepare.json").read_text())
    print(
        f"prepare: {prepared['series']} series, {prepared['rows_in']:,} rows in, "
        f"{prepared['rows_out']:,} out, {prepared['closed']:,} closed, "
        f"{prepared['outage']:,} unknown (outages), {prepared['filled_zero']:,} filled as 0"
    )
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    h, o = metrics["holdout"], metrics["holdout_open"]
    print(
        f"holdout {h['start']} .. {h['end']}: open days ({o['rows']:,} rows): RMSPE "
        f"{o['rmspe']}, SMAPE {o['smape']}, WAPE {o['wape']} | all days ({h['rows']:,} rows): "
        f"SMAPE {h['smape']}, WAPE {h['wape']}"
    )
    for name, b in metrics["baselines"].items():
        print(f"  baseline {name:<15} SMAPE {b['smape']}  WAPE {b['wape']}  (all days)")

    started = time.perf_counter()
    reference = covariate_xgb(repo / "data" / "raw", args.seed)
    xgb_seconds = time.perf_counter() - started
    ours = pipeline_rows(repo)
    rows = ours.merge(reference, on=["Store", "Date"], how="inner").merge(
        look.truth, on=["Store", "Date"], how="left"
    )
    rows = rows.loc[(rows["open"] != 0) & (rows["actual"] > 0)].reset_index(drop=True)
    print(
        f"covariates-only XGBoost ({xgb_seconds:.0f} s): RMSPE "
        f"{rmspe(rows['actual'], rows['covariates_xgb']):.4f} | ours "
        f"{rmspe(rows['actual'], rows['predicted']):.4f} | true median "
        f"{rmspe(rows['actual'], rows['median']):.4f} (open days with sales, {len(rows):,} rows)"
    )
    print(segment_table(rows))
    shrunk = {k: rmspe(rows["actual"], k * rows["predicted"]) for k in (0.99, 0.985, 0.98)}
    print(
        "diagnostic: RMSPE's best point forecast lies below the mean (for lognormal noise "
        "exp(-1.5 sd^2) x the median); ours scaled by "
        + ", ".join(f"{k}: {v:.4f}" for k, v in shrunk.items())
    )
    if args.keep:
        rows.to_parquet(scratch / "holdout_rows.parquet", index=False)
        print(f"scratch repository kept: {repo} (rows compared: {scratch}/holdout_rows.parquet)")
    else:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()

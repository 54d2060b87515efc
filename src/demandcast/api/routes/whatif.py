"""POST /whatif: what a scenario (other values of the covariates, or open, on some dates) does
to the expected sales of some series, against the plan. Computed with the booster at request
time (``api/whatif.py``)."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from demandcast.api import deps
from demandcast.api.errors import INPUTS_UP_TO, WHATIF_EXAMPLE, from_body, invalid, problem
from demandcast.api.lookup import locate_dates_list, locate_series_list
from demandcast.api.routes.forecast import (
    REF,
    PlainRoute,
    check_large_body,
    read_body,
    refuse_repeated_keys,
)
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import WhatIfResponse
from demandcast.api.settings import MAX_ROWS
from demandcast.api.whatif import refuse, scenario_changes, scenario_sales

WHATIF_BODY = {  # the route parses its body itself: see forecast.document_bodies
    "required": True,
    "content": {"application/json": {"schema": {"$ref": REF.format(model="WhatIfRequest")}}},
}
PERCENT_DECIMALS = 2

router = APIRouter()


async def whatif(request: Request) -> Response:
    """Expected sales of each series on each date under the plan and under the ``scenario``
    (the covariate values, and/or ``open``, it gives, on every one of those dates), their
    difference (``uplift``, and ``uplift_pct`` of the plan; null where the plan is 0) and the
    totals. ``dates`` default to every period of the horizon; series x dates is at most
    DEMANDCAST_MAX_ROWS. GET /health lists the model's covariates."""
    state = await deps.state(request)  # not injected: see PlainRoute
    model = state.serving()
    body = await read_body(request)
    max_rows = state.settings.max_rows
    if len(body) > INPUTS_UP_TO or body.count(b"{") > max_rows + 2:  # a series is an object
        check_large_body(body, max_rows, "series", others=2, example=WHATIF_EXAMPLE)
    try:
        asked = state.whatif_request.validate_json(body)
    except ValidationError as exc:
        raise from_body(exc, body, WHATIF_EXAMPLE) from None
    keys = len(asked.model_fields_set) + sum(map(len, asked.series)) + len(asked.scenario)
    if body.count(b":") != keys:  # see forecast.predict
        refuse_repeated_keys(body)
    problems: list[dict[str, str]] = []
    rows = locate_series_list(model, asked.series, problems)
    periods = locate_dates_list(model, asked.dates, problems)
    columns, is_open = scenario_changes(model, asked.scenario, problems)
    if problems:
        raise refuse(problems)
    count = len(rows) * len(periods)
    if count > max_rows:
        where = "series" if asked.dates is None else "dates"
        msg = (
            f"{len(rows)} series x {len(periods)} dates = {count:,} rows; at most {max_rows:,} "
            f"per request ({MAX_ROWS}): ask for fewer series or dates"
        )
        raise invalid([problem(where, msg)])
    cells = (np.asarray(rows)[:, None] * model.horizon + np.asarray(periods)[None, :]).ravel()
    plan = model.sales.reshape(-1)[cells]
    scenario = scenario_sales(model, cells, columns, is_open)
    uplift = (scenario - plan).round(3)
    state.predictions["/whatif"].inc(count)
    dates = [model.date_of(period) for period in periods]
    names, series = model.meta.series_keys, model.meta.series
    answers = []
    for n, (p, s, u) in enumerate(
        zip(plan.tolist(), scenario.tolist(), uplift.tolist(), strict=True)
    ):
        row, period = divmod(n, len(periods))
        answers.append(
            {
                **dict(zip(names, series[rows[row]], strict=True)),
                "date": dates[period],
                "plan": p,
                "scenario": s,
                "uplift": u,
                "uplift_pct": percent(u, p),
            }
        )
    total_plan, total_scenario = round(float(plan.sum()), 3), round(float(scenario.sum()), 3)
    total_uplift = round(total_scenario - total_plan, 3)
    body_out = {
        "model_version": model.version,
        "scenario": asked.scenario,
        "rows": answers,
        "total": {
            "plan": total_plan,
            "scenario": total_scenario,
            "uplift": total_uplift,
            "uplift_pct": percent(total_uplift, total_plan),
        },
    }
    return json_response(body_out, model=model)


def percent(uplift: float, plan: float) -> float | None:
    """100 x uplift / plan, or None when the plan is 0."""
    return round(100 * uplift / plan, PERCENT_DECIMALS) if plan else None


router.add_api_route(
    "/whatif",
    whatif,
    methods=["POST"],
    route_class_override=PlainRoute,
    response_model=WhatIfResponse,
    responses=error_responses(413, 422, 503),
    openapi_extra={"requestBody": WHATIF_BODY},
)

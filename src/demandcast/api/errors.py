"""Errors a client can act on: every 4xx and 503 answer is ``{"detail": ..., "errors": [...]}``.

``detail`` is one sentence (the first problem, and how many more); ``errors`` lists the first
:data:`MAX_PROBLEMS` problems as ``{"loc": "rows[3].date", "msg": ...}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_PROBLEMS = 20
EXAMPLE = '{"rows": [{"store": 1, "item": 1, "date": "2018-01-05"}]}'
_UNION_TAGS = ("constrained-int", "str")  # pydantic's names of the two branches of a key
_JSON_TYPES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "null",
    list: "an array",
    dict: "an object",
}


class ApiError(Exception):
    """Answer ``status`` with ``detail`` and the listed problems."""

    def __init__(
        self,
        status: int,
        detail: str,
        problems: Sequence[dict[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = list(problems[:MAX_PROBLEMS])
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.problems}


def problem(loc: str, msg: str) -> dict[str, str]:
    return {"loc": loc, "msg": msg}


def invalid(problems: Sequence[dict[str, str]], summary: str = "") -> ApiError:
    """A 422 whose detail is the first problem, then ``summary`` (how many there are)."""
    first = problems[0]
    more = f"; {summary}" if summary else ""
    return ApiError(422, f"{first['loc']}: {first['msg']}{more}", problems)


def from_validation(errors: Iterable[Mapping[str, Any]]) -> ApiError:
    """Pydantic's errors (of the body, or FastAPI's of query parameters) as one 422."""
    problems: dict[str, str] = {}
    for err in errors:
        loc = list(err["loc"])
        if loc and loc[0] in ("body", "query"):
            loc = loc[1:]
        if loc and loc[-1] in _UNION_TAGS:  # one problem per key, not one per branch
            loc = loc[:-1]
            err = {**err, "type": "key_type"}
        where = _format_loc(loc)
        if where not in problems:
            problems[where] = _message(err, in_row=any(isinstance(p, int) for p in loc))
    listed = [problem(loc, msg) for loc, msg in problems.items()]
    return invalid(listed, f"{len(listed)} problems" if len(listed) > 1 else "")


def _format_loc(loc: Sequence[str | int]) -> str:
    """``("rows", 3, "date")`` -> ``"rows[3].date"``; the empty location is the whole body."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "body"


def _message(err: Mapping[str, Any], in_row: bool) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "json_invalid":
        return f"not valid JSON ({err.get('ctx', {}).get('error', err['msg'])}); send {EXAMPLE}"
    if kind == "model_type":
        return f"expected a JSON object like {EXAMPLE}, got {json_type(value)}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        if in_row:
            return "unexpected key: a row has store, item (store x item models only) and date"
        return f"unexpected key: the body is {EXAMPLE}"
    if kind == "key_type":
        if isinstance(value, int) and not isinstance(value, bool):
            return "an integer key must fit in 64 bits"
        return f"expected an integer or a string, got {json_type(value)}"
    if kind == "too_short":
        return "empty: send at least one row"
    return err["msg"].removeprefix("Value error, ")


def json_type(value: Any) -> str:
    """What a JSON-decoded value was, in JSON's words: "a number", "null", ..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)

"""Errors a client can act on: every 4xx and 503 answer is ``{"detail": ..., "errors": [...]}``.

``detail`` is one sentence (the first problem, and how many more); ``errors`` lists the first
:data:`MAX_PROBLEMS` problems as ``{"loc": "rows[3].date", "msg": ...}``.

An error body is small whatever the request: a value of the client's quoted in a message is cut
to :data:`VALUE_CHARS` characters and an ellipsis, and every ``loc``, ``msg`` and ``detail`` to
:data:`TEXT_CHARS` (its start and its end, which says what to do), so a body stays under
about 10 KB even for a 50 MB store ID or query parameter name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from starlette.exceptions import HTTPException

from demandcast.api.settings import MAX_BODY_BYTES

MAX_PROBLEMS = 20
VALUE_CHARS = 40  # a client's value echoed in a message: at most this, then "…"
TEXT_CHARS = 300  # a loc, msg or detail: at most this (its start, "…", its end)
INPUTS_UP_TO = 1 << 20  # bodies up to this size have their invalid values typed in messages
EXAMPLE = '{"rows": [{"store": 1, "item": 1, "date": "2018-01-05"}]}'
WHATIF_EXAMPLE = '{"series": [{"store": 1, "item": 1}], "scenario": {"promo": 1}}'
# What an object inside a body holds, by the list it is in (for "unexpected key" messages)
_MEMBERS = {
    "rows": "a row has store, item (store x item models only), date, and optionally "
    "covariates and open",
    "series": "a series has store and item (store x item models only)",
}
_UNITS = {"rows": "rows", "series": "series", "dates": "dates"}  # lists a body may hold
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
        detail = bound(detail)
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.problems = [problem(p["loc"], p["msg"]) for p in problems[:MAX_PROBLEMS]]
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, "errors": self.problems}


class BodyTooLarge(HTTPException):
    """A request body over the limit: 413. An HTTPException, so that FastAPI's own body parsing
    passes it on (it answers 400 for any other error while reading a body)."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        got = f"of {size:,} bytes" if size is not None else "longer than that"
        super().__init__(
            413,
            f"at most {limit:,} bytes per request body ({MAX_BODY_BYTES}), this one is {got}: "
            "split the batch",
        )


def problem(loc: str, msg: str) -> dict[str, str]:
    """One entry of ``errors``, bounded (see the module's docstring)."""
    return {"loc": bound(loc), "msg": bound(msg)}


def shorten(value: str, limit: int = VALUE_CHARS) -> str:
    """A client's value as a message quotes it: its first ``limit`` characters, then "…"."""
    return value if len(value) <= limit else f"{value[:limit]}…"


# A quoted value (a repr, or a JSON string) longer than VALUE_CHARS; quotes inside words
# ("the model's") neither open nor close one.
_LONG_QUOTED = re.compile(
    rf"(?<!\w)'([^'\n]{{{VALUE_CHARS}}})[^'\n]+'(?!\w)"
    rf'|(?<!\w)"([^"\n]{{{VALUE_CHARS}}})[^"\n]+"(?!\w)'
)


def _cut_quoted(match: re.Match[str]) -> str:
    single = match.group(1)
    return f"'{single}…'" if single is not None else f'"{match.group(2)}…"'


def bound(text: str, limit: int = TEXT_CHARS) -> str:
    """``text`` for an error body: quoted values cut to VALUE_CHARS characters; if still longer
    than ``limit``, its start and end around "…". Messages are built from values as they came
    (``lookup`` quotes an unknown store ID whole), so the bound is applied here, once."""
    if len(text) > limit:
        half = (limit - 1) // 2
        text = f"{text[:half]}…{text[-half:]}"
    if len(text) > VALUE_CHARS:
        text = _LONG_QUOTED.sub(_cut_quoted, text)
    return text


def invalid(problems: Sequence[dict[str, str]], summary: str = "") -> ApiError:
    """A 422 whose detail is the first problem, then ``summary`` (how many there are)."""
    first = problems[0]
    more = f"; {summary}" if summary else ""
    return ApiError(422, f"{first['loc']}: {first['msg']}{more}", problems)


def from_body(exc: ValidationError, body: bytes | bytearray, example: str = EXAMPLE) -> ApiError:
    """Pydantic's errors of a request body as one 422, without copying the body into Python
    objects: pydantic's ``input`` of an error can be the whole body or all of its rows (a
    batch over the row limit), so the invalid values are typed only for small bodies.
    ``example``: a valid body of the route, for the messages."""
    errors = exc.errors(include_input=len(body) <= INPUTS_UP_TO, include_url=False)
    kind = json_kind(body)  # when the body is not an object
    return from_validation(
        ({**err, "input_type": kind} if err["type"] == "model_type" else err for err in errors),
        example,
    )


def json_kind(body: bytes | bytearray) -> str:
    """What a JSON text is, by its first byte: "an object", "an array", ..."""
    first = _FIRST_BYTE.match(body)
    return _JSON_STARTS.get(first.group(1) if first else b"", "another JSON value")


def from_validation(errors: Iterable[Mapping[str, Any]], example: str = EXAMPLE) -> ApiError:
    """Pydantic's errors (of the body, or FastAPI's of query parameters) as one 422."""
    problems: dict[str, str] = {}
    count = 0
    for err in errors:
        loc = list(err["loc"])
        if loc and loc[0] in ("body", "query"):
            loc = loc[1:]
        if loc and loc[-1] in _UNION_TAGS:  # one problem per key, not one per branch
            loc = loc[:-1]
            err = {**err, "type": "key_type"}
        where = _format_loc(loc)
        if where not in problems:
            count += 1
            if len(problems) < MAX_PROBLEMS:
                problems[where] = _message(err, loc, example)
            else:
                problems[where] = ""  # counted, not listed
    listed = [problem(loc, msg) for loc, msg in list(problems.items())[:MAX_PROBLEMS]]
    summary = f"{count} problems" if count > 1 else ""
    if count > MAX_PROBLEMS:
        summary += f"; errors lists the first {MAX_PROBLEMS}"
    return invalid(listed, summary)


def _format_loc(loc: Sequence[str | int]) -> str:
    """``("rows", 3, "date")`` -> ``"rows[3].date"``; the empty location is the whole body.
    A key the client made up is shortened."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            part = shorten(part)
            text += f".{part}" if text else part
    return text or "body"


def _message(err: Mapping[str, Any], loc: Sequence[str | int], example: str) -> str:
    kind, value = err["type"], err.get("input")
    within = str(loc[0]) if loc else ""  # the body's member the problem is in
    unit = _UNITS.get(within, "rows")
    if kind == "json_invalid":
        return f"not valid JSON ({err.get('ctx', {}).get('error', err['msg'])}); send {example}"
    if kind == "model_type":
        got = err.get("input_type") or json_type(value)
        return f"expected a JSON object like {example}, got {got}"
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        if len(loc) > 2 and isinstance(loc[1], int) and within in _MEMBERS:
            return f"unexpected key: {_MEMBERS[within]}"
        return f"unexpected key: the body is {example}"
    if kind == "dict_type":
        got = json_type(value) if "input" in err else "another value"
        return f"expected a JSON object, got {got}"
    if kind == "key_type":
        if "input" not in err:  # a large body: its values are not copied (see from_body)
            return "expected an integer (64 bits) or a string"
        if isinstance(value, int) and not isinstance(value, bool):
            return "an integer key must fit in 64 bits"
        return f"expected an integer or a string, got {json_type(value)}"
    if kind == "too_short":
        if within == "dates":
            return "empty: send at least one date, or leave dates out for the whole horizon"
        return f"empty: send at least one {unit.removesuffix('s') if unit == 'rows' else unit}"
    if kind == "too_long":
        ctx = err.get("ctx", {})
        return (
            f"{ctx.get('actual_length', 'too many')} {unit}; at most {ctx.get('max_length')} "
            "per request: split the batch"
        )
    return err["msg"].removeprefix("Value error, ")


def json_type(value: Any) -> str:
    """What a JSON-decoded value was, in JSON's words: "a number", "null", ..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


_FIRST_BYTE = re.compile(rb"[ \t\r\n]*(.)", re.DOTALL)
_JSON_STARTS = {  # the type of a JSON value by its first byte
    first.encode(): kind
    for firsts, kind in [
        ("[", "an array"),
        ('"', "a string"),
        ("-0123456789", "a number"),
        ("tf", "a boolean"),
        ("n", "null"),
        ("{", "an object"),
    ]
    for first in firsts
}

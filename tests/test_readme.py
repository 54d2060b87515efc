"""The README's curl examples still describe the API: each one is sent to the API serving a
small model, and its documented answer must match the real one in shape.

An example in README.md is an HTML comment, the fenced command, then the fenced answer:

    <!-- curl-example -->                (or <!-- curl-example status=422 -->; default 200)
    ```bash
    curl -s 'localhost:8000/forecast?store=1&item=1&days=3'
    ```
    ```json
    {"model_version": "...", ...}
    ```

"Same shape" means the same status code and, for JSON, the same keys and the same JSON types
(object, array, string, number, boolean, null), recursively: values may differ, since the model
here is not the default one. ``...`` in place of a member or an element marks that object or
array as abridged: its documented keys must exist, others may too. Each documented element of an
array must match some element of the real one. A ``text`` answer (``/metrics``) is Prometheus
exposition: every documented ``# HELP``/``# TYPE`` line must be in the real answer, and every
documented sample must have a real sample of the same metric with the same label names.

The model has the default data's calendar and series (10 stores x 50 items, trained through
2017-12-31, horizon 90), so every request of the README is valid for it as written.
"""

from __future__ import annotations

import json
import re
import shlex
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.plan import make_plan
from demandcast.data.validate import prepare_table
from demandcast.features import build
from demandcast.model import fit
from tests.api.helpers import serve

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
TOKEN = "readme-example-reload-token"  # DEMANDCAST_RELOAD_TOKEN of the app under test
VARIABLES = {"DEMANDCAST_RELOAD_TOKEN": TOKEN}  # what $NAME in a README command stands for
HOSTS = ("localhost:8000", "127.0.0.1:8000")
ABRIDGED = "\u2026"  # what `...` in a documented answer becomes: a key, or an element

EXAMPLE = re.compile(
    r"<!-- curl-example(?: status=(?P<status>\d{3}))? -->\s*\n"
    r"```[a-z]*\n(?P<command>.*?)```\s*\n"
    r"```(?P<lang>[a-z]*)\n(?P<answer>.*?)```",
    re.S,
)
FENCE = re.compile(r"^```[a-z]*\n(.*?)^```", re.S | re.M)
SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"')

# The default data's layout, calendar, covariates and closed days, trained small and fast.
PARAMS = {
    "horizon": 90,
    "data": {
        "synthetic": {"seed": 3, "stores": 10, "items": 50, "start": "2017-01-01", "days": 365},
        "columns": {"open": "open"},
        "covariates": {"promo": "flag", "holiday": "category"},
    },
    "train": {"n_estimators": 10, "max_depth": 3, "min_child_weight": 5, "nthread": 1},
}


@dataclass(frozen=True)
class Example:
    line: int  # of the command in README.md
    command: str
    status: int
    lang: str  # of the documented answer: json, or text (Prometheus)
    answer: str

    @property
    def label(self) -> str:
        request = " ".join(self.command.replace("\\\n", " ").split())
        return f"line {self.line}: {request[:90]}"


def examples(text: str) -> list[Example]:
    """Every marked example of ``text`` (a README), in order."""
    return [
        Example(
            line=text.count("\n", 0, found.start("command")) + 1,
            command=found["command"].strip(),
            status=int(found["status"] or 200),
            lang=found["lang"],
            answer=found["answer"],
        )
        for found in EXAMPLE.finditer(text)
    ]


def unmarked_requests(text: str) -> list[str]:
    """curl commands to the local API in a fenced block that is not a marked example's command."""
    marked = {found.start("command") for found in EXAMPLE.finditer(text)}
    return [
        line.strip()
        for block in FENCE.finditer(text)
        if block.start(1) not in marked
        for line in block[1].splitlines()
        if line.strip().startswith("curl ") and any(host in line for host in HOSTS)
    ]


def request_of(command: str) -> dict[str, Any]:
    """The curl command as the arguments of ``TestClient.request``; ``$NAME`` is VARIABLES'."""
    words = shlex.split(command.replace("\\\n", " "))
    if words[0] != "curl":
        raise ValueError(f"not a curl command: {command!r}")
    method, url, headers, body = None, None, {}, None
    args = iter(words[1:])
    for word in args:
        if word in ("-X", "--request"):
            method = next(args)
        elif word in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip()] = string.Template(value.strip()).substitute(VARIABLES)
        elif word in ("-d", "--data", "--data-raw"):
            body = next(args)
        elif word.startswith("-"):
            if word not in ("-s", "--silent", "-S", "--show-error"):
                raise ValueError(f"{word}: an option this test does not know; add it here")
        else:
            url = word
    if url is None or not url.startswith(HOSTS):
        raise ValueError(f"{command!r}: no URL of the local API ({' or '.join(HOSTS)})")
    return {
        "method": method or ("POST" if body is not None else "GET"),
        "url": url[url.index("/") :] if "/" in url else "/",
        "headers": headers,
        "content": body,
    }


def documented_json(text: str) -> Any:
    """The JSON of a documented answer; each ``...`` (outside strings) becomes an ABRIDGED
    member of its object or element of its array."""
    out: list[str] = []
    stack: list[str] = []
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(text[i : i + 2] if char == "\\" else char)
            i += 2 if char == "\\" else 1
            in_string = char != '"'
            continue
        if text.startswith("...", i):
            if not stack:
                raise ValueError("`...` outside an object or an array")
            out.append(f'"{ABRIDGED}": null' if stack[-1] == "{" else f'"{ABRIDGED}"')
            i += 3
            continue
        if char in "[{":
            stack.append(char)
        elif char in "]}":
            stack.pop()
        in_string = char == '"'
        out.append(char)
        i += 1
    return json.loads("".join(out))


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def shape_problems(documented: Any, actual: Any, path: str = "$") -> list[str]:
    """Where ``actual`` does not have the shape of ``documented`` (empty: it has)."""
    kind, got = json_type(documented), json_type(actual)
    if kind != got:
        return [f"{path}: documented {kind}, the API answers {got}"]
    if kind == "object":
        keys = documented.keys() - {ABRIDGED}
        problems = [
            f"{path}.{k}: documented, not in the answer" for k in sorted(keys - actual.keys())
        ]
        if ABRIDGED not in documented:
            extra = sorted(actual.keys() - keys)
            problems += [f"{path}.{k}: in the answer, not documented" for k in extra]
        for key in sorted(keys & actual.keys()):
            problems += shape_problems(documented[key], actual[key], f"{path}.{key}")
        return problems
    if kind == "array":
        items = [item for item in documented if item != ABRIDGED]
        if not items:
            abridged = len(items) < len(documented)
            return [] if abridged or not actual else [f"{path}: documented empty, answer is not"]
        if not actual:
            return [f"{path}: documented {len(items)} elements, the answer has none"]
        problems = []
        for n, item in enumerate(items):
            if not any(not shape_problems(item, value) for value in actual):
                problems += shape_problems(item, actual[0], f"{path}[{n}]")
        return problems
    return []


def sample_shape(line: str) -> tuple[str, frozenset[str]] | None:
    """A Prometheus sample line as its metric name and label names (None: not a sample)."""
    found = SAMPLE.fullmatch(line.strip())
    if found is None:
        return None
    float(found["value"])  # a sample's value is a number
    return found["name"], frozenset(LABEL.findall(found["labels"] or ""))


def metrics_problems(documented: str, actual: str) -> list[str]:
    lines = {line.strip() for line in actual.splitlines()}
    samples = {sample_shape(line) for line in lines if not line.startswith("#")}
    problems = []
    for line in documented.splitlines():
        line = line.strip()
        if not line or line == "...":
            continue
        if line.startswith("#"):
            if line not in lines:
                problems.append(f"{line!r}: not in the answer")
        elif (shape := sample_shape(line)) is None:
            problems.append(f"{line!r}: not a Prometheus sample")
        elif shape not in samples:
            problems.append(f"{line!r}: no sample of {shape[0]} with labels {sorted(shape[1])}")
    return problems


def answer_problems(example: Example, response: httpx.Response) -> list[str]:
    """Where the API's ``response`` to ``example`` differs from its documented answer."""
    problems = []
    if response.status_code != example.status:
        problems.append(
            f"status: documented {example.status}, the API answers {response.status_code}"
        )
    if example.lang == "json":
        try:
            actual = response.json()
        except ValueError:
            return [*problems, f"the answer is not JSON: {response.text[:200]!r}"]
        problems += shape_problems(documented_json(example.answer), actual)
    elif example.lang == "text":
        problems += metrics_problems(example.answer, response.text)
    else:
        problems.append(f"answer fenced as {example.lang!r}: use json, or text for /metrics")
    return problems


def check(example: Example, client: TestClient) -> list[str]:
    return answer_problems(example, client.request(**request_of(example.command)))


# --- the README -----------------------------------------------------------------------------

README_EXAMPLES = examples(README.read_text(encoding="utf-8"))


def train_default_like(directory: Path) -> Path:
    """The pipeline's prepare -> features -> train (serving model) on PARAMS, with a range:
    a negative-binomial dispersion in odd horizon weeks, Poisson in even ones (both kinds, as
    the default model has; the actual figures come from calibration, which is not run here)."""
    params = Params.model_validate(PARAMS)
    cfg = params.data.synthetic
    raw = synthetic.generate(cfg, with_true_mean=False)
    prepared, _ = prepare_table(raw, "test", params)
    plan, _ = make_plan(synthetic.plan(cfg, params.horizon), "synthetic", prepared, params)
    features = build(prepared, params.horizon, params.features, plan=plan)
    cutoff = features.loc[features["sales"].notna(), "date"].max()
    blocks = int(bundle.dispersion_blocks(params.horizon, 1)[-1]) + 1
    dispersion = [8.0 if block % 2 == 0 else None for block in range(blocks)]
    bundle.write(directory, fit(features, cutoff, params, dispersion=dispersion))
    return directory


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    model_dir = train_default_like(tmp_path_factory.mktemp("readme") / "serving")
    metrics = ROOT / "reports" / "metrics.json"  # the default model's evaluation, in git
    with serve(model_dir, metrics_path=metrics, reload_token=TOKEN) as test_client:
        assert test_client.get("/health").status_code == 200  # /metrics then has a request
        yield test_client


def test_readme_has_the_examples() -> None:
    routes = {request_of(e.command)["url"].partition("?")[0] for e in README_EXAMPLES}
    expected = {
        "/health",
        "/forecast",
        "/predict",
        "/whatif",
        "/model",
        "/metrics",
        "/admin/reload",
    }
    assert expected <= routes, f"no README example of {sorted(expected - routes)}"
    assert any(e.status == 422 for e in README_EXAMPLES), "no README example of a refusal"
    assert not unmarked_requests(README.read_text(encoding="utf-8")), (
        "curl examples without a <!-- curl-example --> marker (so never checked)"
    )


@pytest.mark.parametrize("example", README_EXAMPLES, ids=lambda e: e.label)
def test_readme_example_matches_the_api(example: Example, client: TestClient) -> None:
    problems = check(example, client)
    assert not problems, f"README.md {example.label}:\n  " + "\n  ".join(problems)


# --- the checker itself, on examples written here ---------------------------------------------

GOOD = """
<!-- curl-example -->
```bash
curl -s localhost:8000/health
```
```json
{"status": "ok", "model_version": "x", "trained_through": "2017-12-31", "frequency": "day",
 "horizon": 90, "horizon_days": 90, "outputs": ["sales", "p10", "p50", "p90"],
 "covariates": [{"name": "promo", "value": "flag"}, ...]}
```

<!-- curl-example status=422 -->
```bash
curl -s -X POST localhost:8000/predict -H 'Content-Type: application/json' \\
  -d '{"rows": [{"store": 99, "item": 1, "date": "2018-01-01"}]}'
```
```json
{"detail": "rows[0].store: unknown store 99 ...",
 "errors": [{"loc": "rows[0].store", "msg": "..."}]}
```

<!-- curl-example -->
```bash
curl -s localhost:8000/model
```
```json
{"model_version": "x", "metadata": {"horizon": 90, "series": [[1, 1], ...], ...}, ...}
```

<!-- curl-example -->
```bash
curl -s localhost:8000/metrics
```
```text
# TYPE demandcast_predictions_total counter
demandcast_predictions_total{route="/predict"} 2.0
...
```
"""


def test_correct_examples_pass(client: TestClient) -> None:
    found = examples(GOOD)
    assert [e.status for e in found] == [200, 422, 200, 200]
    assert [check(e, client) for e in found] == [[], [], [], []]


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ('"horizon": 90,', '"horizon": 90, "lag": 1,', "$.lag: documented, not in the answer"),
        ('"status": "ok", ', "", "$.status: in the answer, not documented"),
        (
            '"horizon": 90,',
            '"horizon": "90",',
            "$.horizon: documented string, the API answers number",
        ),
        (
            '["sales"',
            '[{"name": "sales"}',
            "$.outputs[0]: documented object, the API answers string",
        ),
        ("[[1, 1]", '[[1, "1"]', "$.metadata.series[0][1]: documented string"),
        ("status=422 ", "", "status: documented 200, the API answers 422"),
        ('{route="/predict"}', '{path="/predict"}', "no sample of demandcast_predictions_total"),
        (
            "# TYPE demandcast_predictions_total counter",
            "# TYPE demandcast_predictions gauge",
            "not in the answer",
        ),
    ],
)
def test_a_wrong_example_fails(client: TestClient, old: str, new: str, complaint: str) -> None:
    assert old in GOOD
    problems = [p for e in examples(GOOD.replace(old, new, 1)) for p in check(e, client)]
    assert any(complaint in p for p in problems), problems


def test_unmarked_examples_are_found() -> None:
    text = GOOD + "\n```bash\ncurl -s localhost:8000/health\n```\n"
    assert unmarked_requests(GOOD) == []
    assert unmarked_requests(text) == ["curl -s localhost:8000/health"]

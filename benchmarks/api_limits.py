"""Hostile bodies against the forecast API: what they cost the server, and whether it stays
responsive meanwhile.

Starts the API (``python -m demandcast.api`` on the pipeline's model, one uvicorn worker,
default settings: 50,000 rows and 12.8 MB per body) on CPU 0 and drives it from CPU 1, like
``api_load.py``. Each scenario sends its bodies as fast as the loopback takes them, each on its
own connection, while another connection asks ``GET /health`` every 10 ms; per scenario it
reports the answers, the seconds to the last one, the server's peak RSS above its RSS before
(``VmHWM``, reset through ``/proc/<pid>/clear_refs`` first) and the slowest ``/health``. The
scenarios run ``--rounds`` times, alternating (other work on a shared machine delays single
``/health`` answers by tens of ms): the table gives the costliest round's memory and the median
over rounds of the slowest ``/health``.

1. ``50 MB, Content-Length``: 1.22 M valid rows with their Content-Length (the issue's probe);
2. ``50 MB, chunked``: the same without a Content-Length, so only reading tells its size;
3. ``3 x 50 MB, chunked``: three of those at once;
4. ``12.7 MB, 310 k rows``: under the byte limit, over the row limit;
5. ``45,000 rows``: the largest valid batch of the default model, for comparison.

    .venv/bin/python benchmarks/api_limits.py --server-python /tmp/serve/bin/python
    # the code before the limits, for comparison: a copy of its src/ first on the path
    PYTHONPATH=<copy>/src .venv/bin/python benchmarks/api_limits.py --server-python ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import uvloop

from api_load import (
    CLIENT_CPU,
    ROOT,
    SERVER_CPU,
    Server,
    connect,
    every_row,
    free_port,
    http_request,
    wait_ready,
)

MB = 1_000_000
PIECE = 1 << 20  # bytes per write (and per chunk of a chunked body)


@contextlib.contextmanager
def api_server(python: str, model_dir: Path, logs: Path) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "DEMANDCAST_MODEL_DIR": str(model_dir)}
    log = (logs / "api.log").open("w")
    process = subprocess.Popen(
        [python, "-m", "demandcast.api"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    server = Server("api", process, port)
    try:
        if (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(process.pid, {SERVER_CPU})
            os.sched_setaffinity(0, {CLIENT_CPU})
        wait_ready(server, logs)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def rss_kb(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {line.split(":")[0]: int(line.split()[1]) for line in status if line.endswith("kB")}


async def upload(port: int, body: bytes, chunked: bool) -> tuple[int, float, str]:
    """POST ``body`` to /predict as one client would (all of it, then read the answer):
    (status, seconds to the answer, its detail)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    writer.write(
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{length}\r\n\r\n".encode()
    )
    with contextlib.suppress(ConnectionError):  # the server may close once it has answered
        for start in range(0, len(body), PIECE):
            piece = body[start : start + PIECE]
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    size = next(
        int(v) for k, _, v in (x.partition(":") for x in lines) if k.lower() == "content-length"
    )
    answer = await reader.readexactly(size)
    seconds = time.perf_counter() - started
    writer.close()
    status = int(lines[0].split()[1])
    detail = orjson.loads(answer).get("detail", "") if status != 200 else "200 OK"
    return status, seconds, str(detail)[:100]


async def health_probe(port: int, stop: asyncio.Event, latencies: list[float]) -> None:
    conn = await connect(port)
    raw = http_request("GET", "/health")
    while not stop.is_set():
        sent = time.perf_counter()
        status, _ = await conn.request(raw)
        latencies.append(time.perf_counter() - sent)
        if status != 200:
            raise RuntimeError(f"/health answered {status}")
        await asyncio.sleep(0.01)
    conn.transport.close()  # type: ignore[union-attr]


async def scenario(server: Server, bodies: list[tuple[bytes, bool]]) -> dict:
    pid = server.process.pid
    await asyncio.sleep(0.5)  # let the previous scenario's memory settle
    before = rss_kb(pid)["VmRSS"]
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
    stop, latencies = asyncio.Event(), []
    probe = asyncio.create_task(health_probe(server.port, stop, latencies))
    await asyncio.sleep(0.2)
    began = time.perf_counter()
    answers = await asyncio.gather(*(upload(server.port, b, c) for b, c in bodies))
    elapsed = time.perf_counter() - began
    await asyncio.sleep(0.2)
    stop.set()
    await probe
    after = rss_kb(pid)
    ms = sorted(x * 1000 for x in latencies)
    return {
        "answers": [{"status": s, "seconds": round(t, 3), "detail": d} for s, t, d in answers],
        "seconds": round(elapsed, 3),
        "rss_before_mb": before / 1024,
        "peak_above_before_mb": (after["VmHWM"] - before) / 1024,
        "rss_after_mb": after["VmRSS"] / 1024,
        "health_requests": len(ms),
        "health_max_ms": ms[-1],
        "health_p50_ms": ms[len(ms) // 2],
    }


def bodies(model_dir: Path) -> dict[str, list[tuple[bytes, bool]]]:
    rows = [orjson.dumps(row) for row in every_row(model_dir)]  # 45,000 for the default model

    def batch(size: int) -> bytes:
        """Valid rows, repeated, to ``size`` bytes or just under."""
        rows_needed = (size - 12) // (sum(map(len, rows)) / len(rows) + 1)
        chosen = [rows[n % len(rows)] for n in range(int(rows_needed))]
        return b'{"rows": [' + b",".join(chosen) + b"]}"

    fifty = batch(50 * MB)
    return {
        "50 MB, Content-Length": [(fifty, False)],
        "50 MB, chunked": [(fifty, True)],
        "3 x 50 MB, chunked": [(fifty, True)] * 3,
        "12.7 MB, over the row limit": [(batch(12_700_000), False)],
        f"{len(rows):,} rows (valid)": [(b'{"rows": [' + b",".join(rows) + b"]}", False)],
    }


async def run(server: Server, model_dir: Path, rounds: int) -> dict:
    conn = await connect(server.port)  # warm-up: the paths the scenarios take
    one = http_request("POST", "/predict", orjson.dumps({"rows": every_row(model_dir)[:1]}))
    for _ in range(200):
        await conn.request(one)
        await conn.request(http_request("GET", "/health"))
    conn.transport.close()  # type: ignore[union-attr]
    runs: dict[str, list[dict]] = {}
    for _ in range(rounds):  # scenarios alternate: other work on the machine hits them alike
        for name, sent in bodies(model_dir).items():
            runs.setdefault(name, []).append(await scenario(server, sent))
    report = {}
    for name, results in runs.items():
        worst = [r["health_max_ms"] for r in results]
        report[name] = {
            **max(results, key=lambda r: r["peak_above_before_mb"]),  # the costliest round
            "health_max_ms_median": statistics.median(worst),
            "health_max_ms_rounds": worst,
            "rounds": len(results),
        }
    return report


def markdown(report: dict) -> str:
    lines = [
        "| body | answers | seconds | server RSS: peak above before (most of any round) "
        "| slowest `/health` of a round: median (all rounds) |",
        "|---|---|---|---|---|",
    ]
    for name, r in report.items():
        statuses = ", ".join(str(a["status"]) for a in r["answers"])
        rounds = ", ".join(f"{ms:.0f}" for ms in r["health_max_ms_rounds"])
        lines.append(
            f"| {name} | {statuses} | {r['seconds']:.2f} | {r['peak_above_before_mb']:+.1f} MB "
            f"(before {r['rss_before_mb']:.0f} MB) | {r['health_max_ms_median']:.1f} ms "
            f"({rounds}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models/serving")
    parser.add_argument("--server-python", default=sys.executable)
    parser.add_argument("--rounds", type=int, default=5, help="of every scenario")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="api-limits-") as logs,
        api_server(args.server_python, args.model_dir, Path(logs)) as server,
    ):
        report = uvloop.run(run(server, args.model_dir, args.rounds))
        log = (Path(logs) / "api.log").read_text()
    report["machine"] = {"cpus": os.cpu_count(), "load_before": load_before}
    report["server_log_tracebacks"] = log.count("Traceback")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    machine = report.pop("machine")
    tracebacks = report.pop("server_log_tracebacks")
    print(markdown(report))
    for name, r in report.items():
        print(f"- {name}: " + "; ".join(f"{a['status']} {a['detail']!r}" for a in r["answers"][:1]))
    print(
        f"\n{machine['cpus']} CPUs, load average {machine['load_before']:.2f} before the run; "
        f"{tracebacks} tracebacks in the server log"
    )


if __name__ == "__main__":
    main()

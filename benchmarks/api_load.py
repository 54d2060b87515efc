"""Load test of the forecast API, client and servers on this machine (127.0.0.1 only).

Starts two uvicorn servers as subprocesses, one worker each: the API (``python -m
demandcast.api`` on the pipeline's model) and ``api_bare.py`` (a FastAPI endpoint returning a
constant). On a machine with 2+ CPUs the servers run on CPU 0 and this client on CPU 1. Then:

1. latency: one-row ``POST /predict`` at a fixed rate (default 200/s for 30 s), from the moment
   each request is written to the moment its response is read; errors = anything but a 200;
2. peak throughput of one-row ``POST /predict``, API and bare alternately (closed loop,
   ``--connections`` keep-alive connections, ``--rounds`` rounds), and their ratio;
3. ``POST /predict`` with every series x horizon day (45,000 rows for the default model), end
   to end: encode the body, send, receive, decode the answer; for a model with covariates, the
   same rows each carrying every covariate with another value than the plan's (a flag flipped,
   a category's next level, a number + 1), so that every row is computed by the booster at
   request time, and ``POST /whatif`` of every series over the horizon with the first
   covariate set (a flag to 1);
4. memory of the API process: RSS now and its peak (VmHWM).

The client is a minimal HTTP/1.1 keep-alive client on uvloop, cheap enough that one CPU drives
either server to saturation (the report shows both processes' CPU use during the peak runs).
On a busy machine the servers get less than their CPU: the report then also compares requests
per CPU-second of each server, which other work on the machine changes much less.

Run the servers on the image's dependency set (requirements/serve.lock: no pandas, which
xgboost would otherwise import) for the memory figure to be the image's; about 2.5 minutes:

    python3 -m venv /tmp/serve && /tmp/serve/bin/pip install -r requirements/serve.lock \
        && /tmp/serve/bin/pip install --no-deps -e .
    .venv/bin/python benchmarks/api_load.py --server-python /tmp/serve/bin/python
    .venv/bin/python benchmarks/api_load.py --duration 5 --peak-seconds 3 --rounds 1  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import uvloop

from demandcast import bundle

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10.0  # seconds for any one response
SERVER_CPU, CLIENT_CPU = 0, 1


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time (Content-Length)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None:
            return
        head = bytes(self.buffer[:end]).split(b"\r\n")
        length = next(
            int(value)
            for name, _, value in (line.partition(b":") for line in head[1:])
            if name.strip().lower() == b"content-length"
        )
        if len(self.buffer) >= end + 4 + length:
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            self.waiter.set_result((int(head[0].split()[1]), body))
            self.waiter = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)  # type: ignore[union-attr]
        return await asyncio.wait_for(self.waiter, TIMEOUT)


async def connect(port: int) -> Connection:
    _, conn = await asyncio.get_running_loop().create_connection(Connection, "127.0.0.1", port)
    return conn


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    return (head + "Content-Type: application/json\r\n\r\n").encode() + body


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        status = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        values = {line.split(":")[0]: int(line.split()[1]) for line in status if "kB" in line}
        return {"rss_mb": values["VmRSS"] / 1024, "peak_rss_mb": values["VmHWM"] / 1024}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def servers(python: str, model_dir: Path, logs: Path) -> Iterator[dict[str, Server]]:
    """The API and the bare app, listening on 127.0.0.1; stopped (and waited for) on exit."""
    api_port, bare_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(api_port),
        "DEMANDCAST_HOST": "127.0.0.1",
        "DEMANDCAST_MODEL_DIR": str(model_dir),
    }
    commands = {
        "api": [python, "-m", "demandcast.api"],
        "bare": [
            python,
            "-m",
            "uvicorn",
            "api_bare:app",
            "--app-dir",
            str(ROOT / "benchmarks"),
            "--host",
            "127.0.0.1",
            "--port",
            str(bare_port),
            "--no-access-log",
        ],
    }
    started: dict[str, Server] = {}
    try:
        for name, command in commands.items():
            log = (logs / f"{name}.log").open("w")
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)
            port = api_port if name == "api" else bare_port
            started[name] = Server(name, process, port)
        if (os.cpu_count() or 1) > 1:
            for server in started.values():
                os.sched_setaffinity(server.process.pid, {SERVER_CPU})
            os.sched_setaffinity(0, {CLIENT_CPU})
        for server in started.values():
            wait_ready(server, logs)
        yield started
    finally:
        for server in started.values():
            server.process.terminate()
        for server in started.values():
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def wait_ready(server: Server, logs: Path, timeout: float = 120.0) -> None:
    path = "/health" if server.name == "api" else "/predict"
    method = "GET" if server.name == "api" else "POST"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            sys.exit(f"{server.name} server exited; see {logs / server.name}.log")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock,
        ):
            sock.sendall(http_request(method, path))
            if sock.recv(64).startswith(b"HTTP/1.1 200"):
                return
        time.sleep(0.2)
    sys.exit(f"{server.name} server not ready after {timeout:.0f} s; see {logs / server.name}.log")


async def fixed_rate(port: int, raw: bytes, rate: float, seconds: float) -> dict:
    """Send ``rate`` requests per second for ``seconds``; latency percentiles in ms."""
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(16):
        idle.put_nowait(await connect(port))
    latencies: list[float] = []
    errors = 0
    worst_lag = 0.0

    async def one() -> None:
        nonlocal errors
        conn = await idle.get()
        sent = time.perf_counter()
        try:
            status, _ = await conn.request(raw)
        except (ConnectionError, TimeoutError):
            errors += 1
            conn = await connect(port)
        else:
            latencies.append(time.perf_counter() - sent)
            errors += status != 200
        idle.put_nowait(conn)

    tasks = []
    start = time.perf_counter() + 0.05
    for n in range(int(rate * seconds)):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        worst_lag = max(worst_lag, time.perf_counter() - due)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    return {
        "requests": len(tasks),
        "errors": errors,
        "achieved_rps": len(tasks) / elapsed,
        "p50_ms": ms[len(ms) // 2],
        "p99_ms": ms[int(len(ms) * 0.99) - 1],
        "max_ms": ms[-1],
        "worst_send_lag_ms": worst_lag * 1000,
    }


async def closed_loop(server: Server, raw: bytes, connections: int, seconds: float) -> dict:
    """Every connection sends its next request as soon as it has the answer to the last one."""
    conns = [await connect(server.port) for _ in range(connections)]
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def drive(conn: Connection) -> None:
        nonlocal done, errors
        while time.perf_counter() < stop:
            try:
                status, _ = await conn.request(raw)
            except (ConnectionError, TimeoutError):
                errors += 1
                return
            done += status == 200
            errors += status != 200

    cpu_server, cpu_client = server.cpu_seconds(), resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    await asyncio.gather(*(drive(conn) for conn in conns))
    elapsed = time.perf_counter() - began
    client = resource.getrusage(resource.RUSAGE_SELF)
    for conn in conns:
        conn.transport.close()  # type: ignore[union-attr]
    return {
        "rps": done / elapsed,
        "errors": errors,
        "server_cpu": (server.cpu_seconds() - cpu_server) / elapsed,
        "client_cpu": (
            client.ru_utime + client.ru_stime - cpu_client.ru_utime - cpu_client.ru_stime
        )
        / elapsed,
    }


async def batch(
    server: Server,
    rows: list[dict],
    repeats: int,
    path: str = "/predict",
    request: dict | None = None,
) -> dict:
    """End-to-end seconds of one big POST /predict (or ``request`` to ``path``, answering
    ``len(rows)`` rows): encode, send, answer, decode; and the server's CPU seconds for each
    (which other work on the machine changes much less)."""
    conn = await connect(server.port)
    times, cpu = [], []
    answers = "predictions" if request is None else "rows"
    for _ in range(repeats + 1):  # the first is a warm-up
        began, cpu_began = time.perf_counter(), server.cpu_seconds()
        status, body = await conn.request(
            http_request("POST", path, orjson.dumps(request or {"rows": rows}))
        )
        cpu.append(server.cpu_seconds() - cpu_began)
        answer = orjson.loads(body)
        times.append(time.perf_counter() - began)
        if status != 200 or len(answer[answers]) != len(rows):
            sys.exit(f"batch failed: HTTP {status}: {body[:300]!r}")
    conn.transport.close()  # type: ignore[union-attr]
    times, cpu = times[1:], cpu[1:]
    return {
        "rows": len(rows),
        "median_s": statistics.median(times),
        "max_s": max(times),
        "min_s": min(times),
        "server_cpu_median_s": statistics.median(cpu),
        "repeats": repeats,
    }


def every_row(model_dir: Path) -> list[dict]:
    meta = bundle.read_meta(model_dir)
    days = [str(meta.forecast_start + meta.frequency.step(d)) for d in range(meta.horizon)]
    return [
        {**dict(zip(meta.series_keys, values, strict=True)), "date": day}
        for values in meta.series
        for day in days
    ]


def changed_value(spec: bundle.FeatureSpec, planned: float) -> object:
    """A value of covariate ``spec`` other than the planned feature value: a flag flipped, a
    category's next level, a number + 1 (NaN, missing: 0 or the first level)."""
    missing = math.isnan(planned)
    if spec.value == "flag":
        return 0 if planned == 1 else 1
    if spec.value == "category":
        levels = spec.levels or [""]
        return levels[0 if missing else (int(planned) + 1) % len(levels)]
    return 0.0 if missing else planned + 1


def with_covariates(model_dir: Path, rows: list[dict]) -> list[dict]:
    """``rows`` (every series x period, in the bundle's forecast order) each carrying every
    covariate of the model with another value than the plan's; [] without covariates."""
    loaded = bundle.read(model_dir)
    meta = loaded.meta
    planned = {
        spec.name: loaded.forecast[:, meta.feature_names.index(spec.name)].tolist()
        for spec in meta.covariates
    }
    changed = []
    for n, row in enumerate(rows):
        values = {spec.name: changed_value(spec, planned[spec.name][n]) for spec in meta.covariates}
        changed.append({**row, "covariates": values})
    return changed


def whatif_request(model_dir: Path) -> dict | None:
    """POST /whatif of every series over the horizon, the first covariate set (a flag to 1)."""
    meta = bundle.read_meta(model_dir)
    if not meta.covariates:
        return None
    first = meta.covariates[0]
    value = changed_value(first, 0.0)  # a flag: 1
    series = [dict(zip(meta.series_keys, values, strict=True)) for values in meta.series]
    return {"series": series, "scenario": {first.name: value}}


async def run(args: argparse.Namespace, api: Server, bare: Server) -> dict:
    rows = every_row(args.model_dir)
    one_row = http_request("POST", "/predict", orjson.dumps({"rows": rows[:1]}))
    for server in (api, bare):  # warm-up
        await closed_loop(server, one_row, args.connections, 2)
    report: dict = {"latency": await fixed_rate(api.port, one_row, args.rate, args.duration)}
    peaks: dict[str, list[dict]] = {"api": [], "bare": []}
    for _ in range(args.rounds):
        for server in (bare, api):
            peaks[server.name].append(
                await closed_loop(server, one_row, args.connections, args.peak_seconds)
            )
    best = {name: max(runs, key=lambda r: r["rps"]) for name, runs in peaks.items()}
    per_cpu = {name: max(r["rps"] / r["server_cpu"] for r in runs) for name, runs in peaks.items()}
    report["peak"] = {
        **best,
        "ratio": best["api"]["rps"] / best["bare"]["rps"],
        "ratio_per_cpu": per_cpu["api"] / per_cpu["bare"],
        "rounds": peaks,
    }
    report["batch"] = await batch(api, rows, args.batches)
    changed = with_covariates(args.model_dir, rows)
    if changed:
        report["batch_covariates"] = await batch(api, changed, args.batches)
        request = whatif_request(args.model_dir)
        report["whatif"] = await batch(api, rows, args.batches, "/whatif", request)
    report["memory"] = api.memory_mb()
    return report


def timed_text(timed: dict) -> str:
    """A big batch's figures: end to end, and the server's CPU per request."""
    took = f"median {timed['median_s']:.3f} s, max {timed['max_s']:.3f} s"
    return f"{took} ({timed['repeats']} runs; server CPU {timed['server_cpu_median_s']:.2f} s)"


def markdown(report: dict, args: argparse.Namespace) -> str:
    lat, peak, big, mem = report["latency"], report["peak"], report["batch"], report["memory"]

    def throughput(run: dict) -> str:
        cpu = f"server CPU {run['server_cpu']:.0%}, client CPU {run['client_cpu']:.0%}"
        per_cpu = run["rps"] / run["server_cpu"]
        return f"{run['rps']:.0f} req/s, {run['errors']} errors ({cpu}; {per_cpu:.0f} per CPU-s)"

    rows = [
        (
            f"one-row POST /predict at {args.rate:.0f}/s for {args.duration:.0f} s",
            f"p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.1f} ms, "
            f"{lat['errors']} errors in {lat['requests']} requests",
        ),
        ("peak one-row POST /predict, API", throughput(peak["api"])),
        ("peak, bare FastAPI endpoint returning a constant", throughput(peak["bare"])),
        (
            "ratio API / bare",
            f"{peak['ratio']:.0%} (per server CPU-second: {peak['ratio_per_cpu']:.0%})",
        ),
        (f"POST /predict with {big['rows']:,} rows, end to end", timed_text(big)),
    ]
    for key, label in (
        ("batch_covariates", "POST /predict with {rows:,} rows, each with every covariate changed"),
        ("whatif", "POST /whatif of every series x horizon ({rows:,} rows), end to end"),
    ):
        if key in report:
            rows.append((label.format(rows=report[key]["rows"]), timed_text(report[key])))
    rows.append(
        ("API process memory", f"RSS {mem['rss_mb']:.0f} MB, peak {mem['peak_rss_mb']:.0f} MB")
    )
    machine = report["machine"]
    rows.append(
        (
            "machine",
            f"{machine['cpus']} CPUs, load average {machine['load_before']:.2f} "
            "(1 min) before the run",
        )
    )
    return "\n".join(["| measure | result |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models/serving")
    parser.add_argument(
        "--server-python",
        default=sys.executable,
        help="interpreter of both servers, e.g. of a venv of requirements/serve.lock as in the "
        "image (default: this one)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests/s of the latency run")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of the latency run")
    parser.add_argument("--connections", type=int, default=32, help="of the peak runs")
    parser.add_argument("--peak-seconds", type=float, default=5.0, help="per peak run")
    parser.add_argument("--rounds", type=int, default=6, help="peak runs per server (best counts)")
    parser.add_argument("--batches", type=int, default=10, help="timed big batches")
    parser.add_argument("--json", type=Path, help="also write the full report here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine skews every figure
    with (
        tempfile.TemporaryDirectory(prefix="api-load-") as logs,
        servers(args.server_python, args.model_dir, Path(logs)) as running,
    ):
        report = uvloop.run(run(args, running["api"], running["bare"]))
    report["machine"] = {"cpus": os.cpu_count(), "load_before": load_before}
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report, args))


if __name__ == "__main__":
    main()

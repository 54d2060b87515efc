"""Where the stages run (``engine`` in params.yaml): ``local`` or ``dask``.

``local`` is one process: a stage reads its whole table into one pandas frame. ``dask`` splits
the series into partitions (buckets of whole series, contiguous in key order) and runs a
stage's per-partition function on the workers of a Dask cluster: a ``LocalCluster`` on this
machine (``engine.scheduler: null``) or an existing cluster at ``engine.scheduler`` (Kubernetes,
YARN, SSH, a cloud service: anything ``dask.distributed`` connects to). Each task reads and
writes its own partition file; only small results (counts, pooled statistics, the holdout
rows) come back to the stage's process. The functions are the same on both engines, so the
results are too (README, "Large tables").

The workers must see the repository's files at the same path as the stage (on one machine
they do; on a cluster, a shared volume: ``docker-compose.dask.yml``).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from demandcast.config import EngineParams
from demandcast.errors import ConfigError, DataError

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger("demandcast")
T = TypeVar("T")
R = TypeVar("R")
ROWS_PER_PARTITION = 1_000_000  # partitions: auto
SCHEDULER_ENV = "DEMANDCAST_DASK_SCHEDULER"  # overrides engine.scheduler (and sets kind: dask)
SCRATCH = Path(".dvc/tmp")  # DVC's own ignored temp folder: intermediate files (scratch)
SPILL_DIR = SCRATCH / "dask"  # the workers' spill files


@dataclass
class Engine:
    """A running engine: ``client`` is None for ``local``."""

    params: EngineParams
    client: Client | None = None

    @property
    def distributed(self) -> bool:
        return self.client is not None

    def partitions(self, rows: int) -> int:
        """How many series partitions a table of ``rows`` rows gets: 1 on the local engine;
        ``engine.partitions``, or about ``ROWS_PER_PARTITION`` rows each (at least one per
        worker thread) on dask."""
        if self.client is None:
            return 1
        if self.params.partitions != "auto":
            return int(self.params.partitions)
        threads = sum(self.client.nthreads().values()) or 1
        return max(threads, math.ceil(rows / ROWS_PER_PARTITION))

    def share(self, value: T) -> T:
        """``value`` as an argument of many tasks: sent to each worker once (dask)."""
        if self.client is None:
            return value
        shared: T = self.client.scatter(value, broadcast=True)
        return shared

    def map(
        self, stage: str, function: Callable[..., R], items: Sequence[Any], *args: Any
    ) -> list[R]:
        """``[function(item, *args) for item in items]``, on the workers for dask (results in
        order; an item may hold dask objects, computed first), logging partitions done."""
        total = len(items)
        if self.client is None:
            return [function(item, *args) for item in items]
        import dask
        from distributed import as_completed

        task = dask.delayed(_refusing, pure=False)
        futures = self.client.compute([task(function, item, *args) for item in items])
        position = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * total
        last = started = time.perf_counter()
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            if isinstance(result, _Refused):  # the user's error, said by the stage
                raise result.error
            results[position[future.key]] = result
            now = time.perf_counter()
            if done == total or now - last >= 5:
                last = now
                log.info("%s: partitions %d/%d done, %.0f s", stage, done, total, now - started)
        return results


@dataclass(frozen=True)
class _Refused:
    """A task's ConfigError or DataError, returned rather than raised: the stage raises it, and
    the worker does not log it as a failed computation with its traceback."""

    error: ConfigError | DataError


def _refusing(function: Callable[..., R], item: Any, *args: Any) -> R | _Refused:
    try:
        return function(item, *args)
    except (ConfigError, DataError) as error:
        return _Refused(error)


def settings(params: EngineParams) -> EngineParams:
    """``params`` with ``$DEMANDCAST_DASK_SCHEDULER`` applied (a container's way to point the
    pipeline at its cluster: docker-compose.dask.yml)."""
    address = os.environ.get(SCHEDULER_ENV)
    if not address:
        return params
    return params.model_copy(update={"kind": "dask", "scheduler": address})


@contextmanager
def start(params: EngineParams) -> Iterator[Engine]:
    """The engine of ``params`` for the length of a stage: for dask, a client of the cluster at
    ``scheduler`` or of a new ``LocalCluster`` (closed at the end)."""
    params = settings(params)
    if params.kind == "local":
        yield Engine(params)
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a pipeline dependency
        raise ConfigError(
            "engine.kind dask needs dask[distributed]: pip install 'dask[distributed]'"
        ) from None
    if params.scheduler:
        try:
            client = Client(params.scheduler, timeout="10s")
        except OSError as exc:
            raise ConfigError(
                f"engine.scheduler {params.scheduler!r}: no Dask scheduler answers there "
                f"({exc}). Start the cluster, or set engine.scheduler: null for a local one."
            ) from None
        try:
            log.info(
                "engine: dask cluster %s, dashboard %s", params.scheduler, client.dashboard_link
            )
            yield Engine(params, client)
        finally:
            client.close()
        return
    for noisy in ("distributed", "tornado"):  # the cluster's own INFO lines
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the dashboard's warning that it answers any host name (it listens on this machine), and
    # the scheduler's notes of each shuffle starting and ending (logged as warnings)
    for noisy in ("bokeh", "distributed.shuffle"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    cluster = LocalCluster(**local_cluster_options(params))
    client = Client(cluster)
    try:
        workers = client.nthreads()
        log.info(
            "engine: dask LocalCluster, %d workers x %d thread(s), dashboard %s",
            len(workers),
            max(workers.values(), default=1),
            client.dashboard_link,
        )
        yield Engine(params, client)
    finally:
        client.close()
        cluster.close()


def _temp_root() -> Path:
    """``SCRATCH`` in a repository (made if need be), else the system's temp folder."""
    if not SCRATCH.parent.is_dir():
        return Path(tempfile.gettempdir())
    SCRATCH.mkdir(exist_ok=True)
    return SCRATCH


@contextmanager
def scratch(name: str) -> Iterator[Path]:
    """A new folder for a stage's intermediate files, removed at the end: under ``SCRATCH``
    (in the repository, so a cluster's workers see it at the same path as the stage; the
    system's temp folder outside a repository), as an absolute path."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=_temp_root())).resolve()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def local_cluster_options(params: EngineParams) -> dict[str, Any]:
    """A ``LocalCluster`` sized to this machine: one single-threaded worker process per core
    (pandas and numpy hold the GIL), or ``engine.workers`` of them, the memory shared out
    between them, spilling to ``SPILL_DIR``; the dashboard on a free port."""
    import psutil

    cores = max(1, os.cpu_count() or 1)
    workers = cores if params.workers == "auto" else int(params.workers)
    memory = int(psutil.virtual_memory().total * 0.9 / workers)
    spill = SPILL_DIR if _temp_root() == SCRATCH else Path(tempfile.gettempdir())
    spill.mkdir(exist_ok=True)
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "memory_limit": memory,
        "local_directory": str(spill),
        "dashboard_address": ":0",
        "silence_logs": logging.ERROR,  # the workers' notes (a task cancelled at the end, ...)
    }

"""``python -m demandcast.api``: serve the API with uvicorn, one worker.

``DEMANDCAST_HOST`` (default 127.0.0.1) and ``PORT`` (default 8000) say where; the model and
the rest come from the ``DEMANDCAST_*`` variables in ``settings``.
"""

from __future__ import annotations

import logging
import os

import uvicorn

from demandcast.api.app import app


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        app,
        host=os.environ.get("DEMANDCAST_HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        access_log=False,  # requests are counted and timed in GET /metrics
        log_level="info",
    )


main()

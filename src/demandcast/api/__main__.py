"""``python -m demandcast.api``: serve the API with uvicorn, one worker.

``DEMANDCAST_HOST`` (default 127.0.0.1) and ``PORT`` (default 8000) say where; the model and
the rest come from the ``DEMANDCAST_*`` variables (see ``settings``).
"""

from __future__ import annotations

import logging

import uvicorn

from demandcast.api.app import create_app
from demandcast.api.settings import Settings


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=False,  # requests are counted and timed in GET /metrics
        log_level="info",
    )


main()

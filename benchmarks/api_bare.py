"""The baseline of ``api_load.py``: the cheapest FastAPI endpoint, one that returns a constant.

Served by uvicorn exactly like the API (one worker, same loop and HTTP parser), it measures
what FastAPI + uvicorn cost on this machine before the API does any work.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.post("/predict")
async def predict() -> dict[str, int]:
    return {"sales": 1}

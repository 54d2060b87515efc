"""POST /admin/reload: swap in the bundle now in DEMANDCAST_MODEL_DIR, behind a bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from demandcast.api import deps
from demandcast.api.deps import ApiState
from demandcast.api.errors import ApiError
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import Reloaded
from demandcast.api.store import ModelError

BEARER = HTTPBearer(auto_error=False, description="the DEMANDCAST_RELOAD_TOKEN")

router = APIRouter()


@router.post("/admin/reload", response_model=Reloaded, responses=error_responses(401, 403, 409))
async def admin_reload(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    state: Annotated[ApiState, Depends(deps.state)],
) -> Response:
    """Load the bundle in DEMANDCAST_MODEL_DIR again and swap it in atomically. A bundle
    that is corrupt or incompatible is refused (409) and the current model keeps serving."""
    token = state.settings.reload_token
    if token is None:
        raise ApiError(403, "reload is disabled: start the API with DEMANDCAST_RELOAD_TOKEN")
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        msg = "send the header Authorization: Bearer <DEMANDCAST_RELOAD_TOKEN>"
        raise ApiError(401, msg, headers={"WWW-Authenticate": "Bearer"})
    previous = state.models.current
    try:
        model = await anyio.to_thread.run_sync(state.reload)
    except ModelError as exc:
        still = previous.version if previous else "nothing"
        raise ApiError(409, f"new model refused, still serving {still}: {exc}") from None
    body = {
        "status": "reloaded",
        "model_version": model.version,
        "previous_version": previous.version if previous else None,
    }
    return json_response(body, model=model)

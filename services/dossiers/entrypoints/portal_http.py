"""Where the national public service portal pushes online dossiers (POST
/portal/v1/dossiers on the service's HTTP side).

    401 UNSIGNED / BAD_SIGNATURE   the signature is missing or does not match the body
    403 STALE_PUSH                 an authentic push signed more than 5 minutes ago (replay)
    413, 415                       too large, not JSON
    400 INVALID_ARGUMENT + field   not of the form (nothing stored)
    422 REFUSED + field            the intake rules refuse it (unknown procedure, an agency
                                   that does not handle it, a bad PIN, missing papers): the
                                   portal records status 3 with `message` (Vietnamese)
    201 {"receipt_code", …}        taken in; 200 with the same receipt code and
                                   "duplicate": true for a repeat (replay, retry, race)

Answering with the receipt code is the acknowledgement: a portal whose answer was lost
pushes again and gets the same code, so it learns the code exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from lgsp.connectors.portal_push import PushRejected, verify
from services.dossiers.adapters.portal import MalformedDossier, refusal_message
from services.dossiers.domain.dossier import Dossier
from services.dossiers.domain.errors import DomainError, InvalidField

log = logging.getLogger("services.dossiers.portal")

MAX_PUSH_BYTES = 256 * 1024


def _error(status: int, code: str, message: str, **extra: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status)


def portal_routes(
    take_in: Callable[[object], tuple[Dossier, bool]], secret: Callable[[], str], path: str
) -> list[BaseRoute]:
    """The push route; `take_in` is PortalLink.take_in, `secret` the shared signing key."""

    async def push(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_PUSH_BYTES:
            return _error(413, "TOO_LARGE", f"at most {MAX_PUSH_BYTES} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_PUSH_BYTES:
                return _error(413, "TOO_LARGE", f"at most {MAX_PUSH_BYTES} bytes")
        try:
            verify(secret(), request.headers, body)
        except PushRejected as e:
            log.warning("portal push refused: %s", e)
            return _error(e.status, e.code, e.message)
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _error(415, "UNSUPPORTED_MEDIA_TYPE", "application/json required")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return _error(400, "INVALID_ARGUMENT", "the body is not JSON", field="body")
        try:
            dossier, new = await asyncio.to_thread(take_in, data)
        except MalformedDossier as e:
            return _error(400, "INVALID_ARGUMENT", e.reason, field=e.field)
        except InvalidField as e:
            return _error(422, "REFUSED", refusal_message(e), field=e.field, detail=e.reason)
        except DomainError as e:  # e.g. the day's receipt numbers ran out: try later
            return _error(503, "UNAVAILABLE", e.message)
        return JSONResponse(
            {
                "receipt_code": dossier.receipt_code,
                "portal_code": dossier.portal_code,
                "agency_code": dossier.agency_code,
                "status": int(dossier.status),
                "duplicate": not new,
            },
            status_code=201 if new else 200,
        )

    return [Route(path, push, methods=["POST"])]

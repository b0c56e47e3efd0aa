"""The national payment platform's notices (callbacks), on the dossiers service's HTTP side.

POST /payments/callback: the body must carry the platform's signature (HMAC-SHA256 with the
shared `[dossiers] payment_callback_secret`, header X-Payment-Signature) and have been signed
within `payment_callback_max_age_s`, else 401 and nothing recorded. A believed notice is
taken in once (DossiersApp.take_payment) and answered 200 whatever became of it — recorded,
a replay, or kept for reconciliation (a dossier no longer waiting, an amount that differs) —
so the platform stops retrying; only a failure here (5xx) makes it try again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from lgsp.connectors.payment import (
    MAX_NOTICE_BYTES,
    SIGNATURE_HEADER,
    NoticeRejected,
    verify_notice,
)
from services.dossiers.domain.fees import OnlinePayment

if TYPE_CHECKING:
    from services.dossiers.service_layer.dossiers import DossiersApp

CALLBACK_PATH = "/payments/callback"
log = logging.getLogger("dossiers.payments")


def payment_routes(app: DossiersApp, secret: str, *, max_age_s: float) -> list[BaseRoute]:
    async def callback(request: Request) -> JSONResponse:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_NOTICE_BYTES:
                return JSONResponse({"code": "TOO_LARGE", "message": "notice too large"}, 413)
        try:
            notice = verify_notice(
                body,
                request.headers.get(SIGNATURE_HEADER, ""),
                secret,
                now=time.time(),
                max_age_s=max_age_s,
            )
        except NoticeRejected as e:
            client = request.client.host if request.client else ""
            log.warning("payment notice refused", extra={"code": e.code, "client": client})
            status = 400 if e.code == "MALFORMED" else 401
            return JSONResponse({"code": e.code, "message": e.reason}, status)
        if notice.status != "PAID":
            return JSONResponse({"result": "ignored"})
        paid = OnlinePayment(
            notice.payment_id,
            notice.receipt_code,
            notice.amount_vnd,
            notice.transaction_ref,
            notice.paid_at,
        )
        outcome = await asyncio.to_thread(app.take_payment, paid, "callback")
        return JSONResponse({"result": str(outcome)})

    return [Route(CALLBACK_PATH, callback, methods=["POST"])]

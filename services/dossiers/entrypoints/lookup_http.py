"""The public lookup page on the dossiers' HTTP side: `GET /tra-cuu` (the form, `?ma=` prefilled
from the slip's QR code), `POST /tra-cuu` (the answer), `POST /tra-cuu/danh-gia` (the rating).

Guards, in order: a token bucket per client address (429 + Retry-After, shared with the gRPC
lookup), a small urlencoded body only (413/415), a double-submit CSRF token (cookie = hidden
field; SameSite=Strict), then the use cases, which check the receipt code and 4 digits and
lock a code after too many wrong digits. Every answer carries the CSP and no-store."""

from __future__ import annotations

import asyncio
import functools
import hmac
import math
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from lgsp.ratelimit import KeyedBuckets
from services.dossiers.adapters.proto import lookup_to_proto
from services.dossiers.domain import citizen
from services.dossiers.domain import errors as domain
from services.dossiers.entrypoints import lookup_page as page
from services.dossiers.service_layer.citizen import Locked
from services.dossiers.service_layer.dossiers import DossiersApp

CSRF_COOKIE = "tra_cuu_csrf"
MAX_BODY = 2048


class _Refused(Exception):
    def __init__(self, status: int, key: str, retry_after: float = 0.0) -> None:
        self.status, self.key, self.retry_after = status, key, retry_after


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status, headers={**page.HEADERS, **(headers or {})})


def _refusal(e: _Refused) -> HTMLResponse:
    headers = {"Retry-After": str(max(1, math.ceil(e.retry_after)))} if e.retry_after else None
    return _html(page.refusal_page(page.MESSAGES[e.key]), e.status, headers)


def _with_csrf(response: HTMLResponse, token: str) -> HTMLResponse:
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="strict", path="/tra-cuu", max_age=3600
    )
    return response


class LookupPage:
    def __init__(self, app: DossiersApp, limits: KeyedBuckets) -> None:
        self.app = app
        self.limits = limits

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/tra-cuu", self._guarded(self.form), methods=["GET"]),
            Route("/tra-cuu", self._guarded(self.lookup), methods=["POST"]),
            Route("/tra-cuu/danh-gia", self._guarded(self.rate), methods=["POST"]),
        ]

    def _guarded(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            wait = self.limits.take(request.client.host if request.client else "")
            try:
                if wait:
                    raise _Refused(429, "too_many", wait)
                response: Response = await handler(request)
                return response
            except _Refused as e:
                return _refusal(e)

        return endpoint

    async def form(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        code = request.query_params.get("ma", "")
        return _with_csrf(_html(page.form_page(token, code)), token)

    async def lookup(self, request: Request) -> Response:
        fields = await _form(request)
        code, digits = fields.get("ma", ""), fields.get("so", "")
        d, agency = await self._call(self.app.lookup, code, digits)
        token = request.cookies.get(CSRF_COOKIE, "")
        return _html(page.answer_page(lookup_to_proto(d, agency), token, digits.strip()))

    async def rate(self, request: Request) -> Response:
        fields = await _form(request)
        code, digits = fields.get("ma", ""), fields.get("so", "")
        score = fields.get("diem", "")
        if not (score.isascii() and score.isdigit()):
            raise _Refused(400, "rating")
        d, agency = await self._call(self.app.rate, code, digits, int(score))
        token = request.cookies.get(CSRF_COOKIE, "")
        note = "Cảm ơn ông/bà đã đánh giá."
        return _html(page.answer_page(lookup_to_proto(d, agency), token, digits.strip(), note))

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args)
        except Locked as e:
            raise _Refused(429, "locked", e.retry_after) from None
        except domain.NotFound:
            raise _Refused(404, "not_found") from None
        except domain.AlreadyExists:
            raise _Refused(409, "rated") from None
        except citizen.NotApplicable:
            raise _Refused(409, "not_returned") from None
        except domain.InvalidField as e:
            raise _Refused(400, "rating" if e.field == "rating" else "invalid") from None


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded fields of a small POST whose CSRF token matches its cookie."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise _Refused(415, "invalid")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _Refused(413, "too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _Refused(413, "too_large")
    try:
        parsed = parse_qs(body.decode("utf-8"), max_num_fields=10, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "invalid") from None
    fields = {k: v[0] for k, v in parsed.items()}
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = fields.get("csrf", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise _Refused(403, "csrf")
    return fields

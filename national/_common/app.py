"""The frame every national mock runs in: auth, faults, request counts, admin routes, serving.

A mock module supplies its API routes; `build_app` wraps them with:
- GET /healthz (200, or 503 while "down") for the operator console;
- GET/POST /_faults to read or replace the faults, GET /_stats and POST /_stats/reset to
  count the API calls that reached the process (tests use it to prove a call was not made);
- the API key check (header X-API-Key) on /api/*, answering 401 JSON;
- the faults and the rate limit (429 + Retry-After) on /api/*;
- a SERVER span per API call, continuing the caller's W3C trace context.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lgsp.config import NationalSettings
from lgsp.http_server import run_quietly
from lgsp.logs import setup_logging
from lgsp.telemetry import context_from_headers, setup_telemetry
from lgsp.tls import UvicornSsl
from national._common.errors import ApiError, error_response
from national._common.faults import Faults, FaultState, retry_after_header

DEFAULT_API_KEY = NationalSettings().api_key
API_KEY_HEADER = "x-api-key"
MAX_JSON_BYTES = 1024 * 1024
log = logging.getLogger("national")


@dataclass
class MockConfig:
    name: str
    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = DEFAULT_API_KEY
    data_dir: Path = field(default_factory=lambda: Path("data") / "national")
    seed: int = 2025
    faults: Faults = field(default_factory=Faults)
    # A mock's own flags (see `serve(add_options=...)`), by argparse dest.
    options: dict[str, Any] = field(default_factory=dict)
    # uvicorn's ssl_certfile/ssl_keyfile when [tls] is enabled (lgsp.tls.uvicorn_ssl).
    ssl: UvicornSsl = field(default_factory=lambda: UvicornSsl())

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.data_dir / f"{self.name}.db"


class MockState:
    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self.faults = FaultState(config.faults)
        self.calls: Counter[str] = Counter()


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object in the body; 400 naming "body" otherwise."""
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", "Nội dung yêu cầu quá lớn", field="body")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(
            400, "INVALID_JSON", "Nội dung yêu cầu không phải JSON hợp lệ", field="body"
        ) from None
    if not isinstance(data, dict):
        raise ApiError(
            400, "INVALID_JSON", "Nội dung yêu cầu phải là một đối tượng JSON", field="body"
        )
    return data


class _Guard:
    """ASGI middleware: counts, health, auth, faults and a server span around API calls."""

    def __init__(self, app: ASGIApp, state: MockState) -> None:
        self.app = app
        self.state = state
        self.tracer = trace.get_tracer(f"national.{state.config.name}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        faults = self.state.faults
        if path.startswith("/_"):
            await self.app(scope, receive, send)
            return
        if path == "/healthz":
            if faults.faults.down:
                await _answer(scope, receive, send, 503, "SERVICE_DOWN", "Hệ thống đang bảo trì")
            else:
                await JSONResponse({"status": "ok", "mock": self.state.config.name})(
                    scope, receive, send
                )
            return
        self.state.calls[f"{scope['method']} {path}"] += 1
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        ctx = context_from_headers(headers)
        name = f"{scope['method']} {path}"
        with self.tracer.start_as_current_span(name, context=ctx, kind=SpanKind.SERVER) as span:
            status = await self._guarded(scope, receive, send, path, headers)
            if status is not None:
                span.set_attribute("http.response.status_code", status)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, path: str, headers: dict[str, str]
    ) -> int | None:
        state = self.state.faults
        f = state.faults
        if f.down:
            return await _answer(
                scope,
                receive,
                send,
                503,
                "SERVICE_DOWN",
                "Hệ thống đang bảo trì, vui lòng thử lại sau",
            )
        is_api = path.startswith("/api/")
        if is_api:
            key = headers.get(API_KEY_HEADER)
            if not key:
                return await _answer(
                    scope, receive, send, 401, "UNAUTHORIZED", "Thiếu khóa API (X-API-Key)"
                )
            if key != self.state.config.api_key:
                return await _answer(
                    scope, receive, send, 401, "UNAUTHORIZED", "Khóa API không hợp lệ"
                )
            wait = state.take_token()
            if wait > 0:
                return await _answer(
                    scope,
                    receive,
                    send,
                    429,
                    "RATE_LIMITED",
                    "Vượt quá số lượng yêu cầu cho phép, vui lòng thử lại sau",
                    {"retry-after": retry_after_header(wait)},
                )
            outcome = state.draw()
            if outcome == "timeout":
                await _hold(receive, f.timeout_s)
                return await _answer(
                    scope, receive, send, 504, "GATEWAY_TIMEOUT", "Hết thời gian xử lý"
                )
            if f.latency_ms:
                await asyncio.sleep(f.latency_ms / 1000)
            if outcome == "error":
                return await _answer(
                    scope,
                    receive,
                    send,
                    f.error_status,
                    "SERVICE_UNAVAILABLE",
                    "Hệ thống tạm thời không phục vụ được, vui lòng thử lại sau",
                )
        status: list[int] = []

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, receive, send_status)
        return status[0] if status else None


async def _answer(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> int:
    await error_response(status, code, message, headers=headers)(scope, receive, send)
    return status


async def _hold(receive: Receive, seconds: float) -> None:
    """Sleep `seconds`, or less if the client goes away (no pile of abandoned sleepers)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)


def build_app(
    config: MockConfig,
    routes: Sequence[BaseRoute],
    *,
    on_shutdown: Callable[[], Awaitable[None] | None] | None = None,
    background: Callable[[Starlette], Coroutine[Any, Any, None]] | None = None,
) -> Starlette:
    """The mock's app; `background(app)` runs while it serves (a mock that sends, not only
    answers), cancelled at shutdown."""
    state = MockState(config)

    async def get_faults(request: Request) -> JSONResponse:
        return JSONResponse(state.faults.faults.as_dict())

    async def set_faults(request: Request) -> JSONResponse:
        data = await read_json(request)
        try:
            faults = Faults.from_mapping(data)
        except ValueError as exc:
            raise ApiError(400, "INVALID_FAULTS", str(exc), field="body") from None
        state.faults.set(faults)
        log.info("faults set", extra={"faults": faults.as_dict()})
        return JSONResponse(faults.as_dict())

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"total": sum(state.calls.values()), "calls": dict(state.calls)})

    async def reset_stats(request: Request) -> Response:
        state.calls.clear()
        return Response(status_code=204)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return error_response(405, "METHOD_NOT_ALLOWED", "Phương thức không được hỗ trợ")
        return error_response(404, "NOT_FOUND", "Không tìm thấy tài nguyên")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = None
        if background is not None:
            task = asyncio.create_task(background(app))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if on_shutdown is not None:
            result = on_shutdown()
            if result is not None:
                await result

    admin = [
        Route("/_faults", get_faults, methods=["GET"]),
        Route("/_faults", set_faults, methods=["POST"]),
        Route("/_stats", stats, methods=["GET"]),
        Route("/_stats/reset", reset_stats, methods=["POST"]),
    ]
    app = Starlette(
        routes=[*admin, *routes],
        exception_handlers={ApiError: api_error, 404: not_found, 405: not_found},
        lifespan=lifespan,
    )
    app.state.mock = state
    app.add_middleware(_Guard, state=state)
    return app


# --- command line --------------------------------------------------------------------------


AddOptions = Callable[[argparse.ArgumentParser], None]


def parse_config(
    name: str, argv: Sequence[str] | None = None, add_options: AddOptions | None = None
) -> MockConfig:
    """Settings (port from [national], host and data dir from [platform]) < env < flags;
    `add_options` adds a mock's own flags, handed over in `MockConfig.options`."""
    from lgsp.config import NATIONAL_MOCKS, ConfigError, load_settings
    from lgsp.tls import uvicorn_ssl

    parser = argparse.ArgumentParser(prog=f"python -m national.{name}")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--data-dir", help="directory of the mock's SQLite file")
    parser.add_argument("--seed", type=int, default=2025, help="seed of the generated data")
    parser.add_argument("--api-key", help="key callers must send (default: [national] api_key)")
    parser.add_argument("--faults", help='JSON, e.g. {"latency_ms": 200, "error_rate": 0.3}')
    parser.add_argument("--latency-ms", type=int)
    parser.add_argument("--error-rate", type=float)
    parser.add_argument("--timeout-rate", type=float)
    parser.add_argument("--down", action="store_true", default=None)
    parser.add_argument("--fault-seed", type=int)
    common = {a.dest for a in parser._actions}
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args(argv)
    own = {k: v for k, v in vars(args).items() if k not in common}

    try:
        settings = load_settings()
    except ConfigError as exc:
        parser.exit(2, f"{name}: configuration error:\n{exc}\n")
    faults: dict[str, Any] = {}
    for source in (
        os.environ.get("NATIONAL_FAULTS"),
        os.environ.get(f"NATIONAL_{name.upper()}_FAULTS"),
        args.faults,
    ):
        if source:
            try:
                faults.update(json.loads(source))
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                parser.error(f"faults: {exc}")
    for key in ("latency_ms", "error_rate", "timeout_rate", "down"):
        if getattr(args, key) is not None:
            faults[key] = getattr(args, key)
    if args.fault_seed is not None:
        faults["seed"] = args.fault_seed
    try:
        fault_config = Faults.from_mapping(faults)
    except ValueError as exc:
        parser.error(f"faults: {exc}")
    return MockConfig(
        name=name,
        host=args.host or settings.platform.host,
        port=args.port
        if args.port is not None
        else getattr(settings.national, NATIONAL_MOCKS[name]),
        api_key=args.api_key or settings.national.api_key,
        data_dir=Path(args.data_dir) if args.data_dir else settings.data_dir / "national",
        seed=args.seed,
        faults=fault_config,
        options=own,
        ssl=uvicorn_ssl(settings),
    )


def serve(
    name: str,
    create_app: Callable[[MockConfig], Starlette],
    argv: Sequence[str] | None = None,
    add_options: AddOptions | None = None,
) -> int:
    config = parse_config(name, argv, add_options)
    setup_logging(name)
    setup_telemetry(name)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(config)
    print(f"{name} mock on {config.public_url} (API key header X-API-Key)", flush=True)
    run_quietly(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            # Held "timeout" calls must not keep a stopping mock alive.
            timeout_graceful_shutdown=1,
            **config.ssl,
        )
    )
    return 0


def main(
    name: str,
    create_app: Callable[[MockConfig], Starlette],
    add_options: AddOptions | None = None,
) -> None:
    sys.exit(serve(name, create_app, add_options=add_options))

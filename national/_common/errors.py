"""Error answers in the shape the national APIs use: {"code", "message"[, "field"]}."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ApiError(Exception):
    """Raised by a handler; the app turns it into a JSON error answer."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        detail: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.detail = detail
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(
            self.status, self.code, self.message, self.field, self.headers, self.detail
        )


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    detail: str | None = None,
) -> JSONResponse:
    """`message` is for users (Vietnamese); `detail`, when given, is the technical reason."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def invalid(
    field: str, message: str, detail: str | None = None, code: str = "INVALID_ARGUMENT"
) -> ApiError:
    """400 naming the offending field; `message` is shown to users, so it is Vietnamese."""
    return ApiError(400, code, message, field=field, detail=detail)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def conflict(code: str, message: str) -> ApiError:
    return ApiError(409, code, message)

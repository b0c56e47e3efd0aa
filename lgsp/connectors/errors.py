"""What a caller of a national system sees when a call does not succeed.

Every error names the system and operation, the HTTP status and the API's error code when
there was an answer, and the API's message (Vietnamese, fit to show a user). The retry
question has one answer: `Unavailable` (and its kinds CircuitOpen, DeadlineExceeded) may
succeed later; everything else will fail the same way again.
"""

from __future__ import annotations


class ConnectorError(Exception):
    def __init__(
        self,
        system: str,
        operation: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        attempts: int = 1,
    ) -> None:
        where = f"{system}.{operation}"
        detail = f" (HTTP {status} {code})" if status is not None else ""
        super().__init__(f"{where}: {message}{detail}")
        self.system = system
        self.operation = operation
        self.message = message
        self.status = status
        self.code = code
        self.attempts = attempts


class NotFound(ConnectorError):
    """The system has no such record (404)."""


class InvalidRequest(ConnectorError):
    """The request was refused as malformed (400/413/415/422), or refused before sending."""

    def __init__(self, *args: object, field: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.field = field


class Unauthorized(ConnectorError):
    """The API key was missing or wrong (401): a configuration problem, not a transient one."""


class Forbidden(ConnectorError):
    """Authenticated but not allowed (403)."""


class Conflict(ConnectorError):
    """The request contradicts the system's state (409/410): idempotency key reused, stale…"""


class Unavailable(ConnectorError):
    """The system could not answer usefully now; `retryable` says whether later may work."""

    def __init__(
        self,
        *args: object,
        retryable: bool = True,
        retry_after: float | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retryable = retryable
        self.retry_after = retry_after


class CircuitOpen(Unavailable):
    """Refused without a network call: recent calls to this endpoint kept failing."""


class DeadlineExceeded(Unavailable):
    """The call's deadline passed before an answer (retries included)."""

"""What a domain rule answers when it says no; the entrypoint maps each to a gRPC status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the domain's refusals; `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(DomainError):
    """A field is missing or malformed (→ INVALID_ARGUMENT naming it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class NotFound(DomainError):
    """The named procedure or dossier does not exist (→ NOT_FOUND)."""


class AlreadyExists(DomainError):
    """A procedure code is taken (→ ALREADY_EXISTS)."""


class IllegalTransition(DomainError):
    """The status jump is not allowed by the one-stop rules (→ FAILED_PRECONDITION)."""

    def __init__(self, current: object, wanted: object) -> None:
        super().__init__(f"a dossier cannot go from {current} to {wanted}")
        self.current = current
        self.wanted = wanted


class StaleEtag(DomainError):
    """The record changed since the caller read it (→ ABORTED)."""


class Exhausted(DomainError):
    """A counter ran out, e.g. the 9,999 receipt codes of one agency and day."""


class NotEligible(DomainError):
    """The applicant exists but may not file now, e.g. a dissolved enterprise
    (→ FAILED_PRECONDITION)."""


class Unavailable(DomainError):
    """A system the decision needs (the national population database, the gateway) cannot
    answer now; nothing was stored and a retry may succeed (→ UNAVAILABLE)."""


class PaymentPlatformUnavailable(Unavailable):
    """The national payment platform could not be reached; nothing was stored (→ UNAVAILABLE,
    safe to retry)."""


class PaidOnline(DomainError):
    """The fee was already paid through the national payment platform: it is not taken again
    at the desk (→ FAILED_PRECONDITION)."""

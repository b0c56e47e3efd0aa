"""What a domain rule answers when it says no. The entrypoint maps each to a gRPC status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of the domain's refusals; `message` is safe to show to the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidField(DomainError):
    """A field of the request is missing or malformed (→ INVALID_ARGUMENT naming it)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid {field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidTransition(DomainError):
    """The document's status (or its nature) forbids the step (→ FAILED_PRECONDITION)."""

    def __init__(self, message: str, *, subject: str = "") -> None:
        super().__init__(message)
        self.subject = subject


class Forbidden(DomainError):
    """The caller lacks the role for the step in that agency (→ PERMISSION_DENIED)."""


class NotVisible(DomainError):
    """No such record, or the caller may not see it (→ NOT_FOUND: existence is not leaked)."""

    def __init__(self, message: str, *, resource: str = "document") -> None:
        super().__init__(message)
        self.resource = resource


class AlreadyRegistered(DomainError):
    """The document is in the book already (→ ALREADY_EXISTS)."""


class StaleVersion(DomainError):
    """The etag sent is not the current one (→ ABORTED)."""

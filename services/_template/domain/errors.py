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

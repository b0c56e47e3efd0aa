"""What a mail rule answers when it says no; the gRPC edge and the SMTP edge each map these
to their own codes (entrypoints/grpc.py `to_service_error`, entrypoints/smtp.py)."""

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
    """No such mailbox, folder or message (→ NOT_FOUND; SMTP 550 for a recipient)."""


class AlreadyExists(DomainError):
    """The address or folder name is taken (→ ALREADY_EXISTS)."""


class Forbidden(DomainError):
    """The caller may not open or send from this mailbox (→ PERMISSION_DENIED; SMTP 553)."""


class Conflict(DomainError):
    """The state forbids it: a folder not empty, a disabled mailbox (→ FAILED_PRECONDITION)."""


class StaleEtag(DomainError):
    """The mailbox changed since the caller read it (→ ABORTED)."""


class QuotaExceeded(DomainError):
    """The mailbox is full (→ RESOURCE_EXHAUSTED; SMTP 452/552)."""


class TooLarge(DomainError):
    """The message is over the size limit (→ INVALID_ARGUMENT; SMTP 552)."""


class TooComplex(DomainError):
    """The message's MIME structure is nested deeper than clients can follow (SMTP 554 5.6.0)."""


class AppPasswordRequired(DomainError):
    """The right password of an account with a second factor, at a mail client: identity
    takes only an app password there (a mail client cannot send the one-time code)."""

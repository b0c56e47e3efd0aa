"""Errors of the attachment store; `field` names what was wrong for the gRPC layer."""

from __future__ import annotations


class AttachmentError(ValueError):
    """A file is refused: bad name, disallowed type, wrong declared type or hash, bad key."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class AttachmentTooLarge(AttachmentError):
    """The stream went over the size limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__("content", f"the file is over the {limit}-byte limit")
        self.limit = limit


class AttachmentNotFound(KeyError):
    """No file with that sha256 is stored."""

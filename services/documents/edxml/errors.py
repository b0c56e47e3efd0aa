"""The one exception the edXML codec raises for anything wrong with a package."""

from __future__ import annotations


class EdxmlError(ValueError):
    """A package cannot be built or accepted; `field` names where (e.g. MessageHeader/Code).

    `field` is an element path below the envelope, such as ``MessageHeader/From/OrganId`` or
    ``AttachmentEncoded/Attachment[2]/ContentTransferEncoded``; ``document`` means the bytes as
    a whole (not XML, too large, a DOCTYPE…). `reason` is an English sentence for logs and for
    the status 02 description sent back to the sender.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

"""Caps on what the edXML codec parses and builds."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# libxml2 refuses a text node above 10,000,000 characters unless huge_tree is on (we keep it
# off), so one attachment's base64 must stay below that: 7 MiB encodes to about 9.8 MB.
MAX_ATTACHMENT_CEILING = 7 * MiB


@dataclass(frozen=True)
class Limits:
    """Caps applied when parsing (and building, so we never send what others would refuse)."""

    max_package_bytes: int = 48 * MiB
    max_attachment_bytes: int = MAX_ATTACHMENT_CEILING
    max_total_attachment_bytes: int = 32 * MiB
    max_attachments: int = 100

    def __post_init__(self) -> None:
        if not 0 < self.max_attachment_bytes <= MAX_ATTACHMENT_CEILING:
            raise ValueError(
                f"max_attachment_bytes must be 1..{MAX_ATTACHMENT_CEILING} "
                "(libxml2's text-node limit with huge_tree off)"
            )


DEFAULT_LIMITS = Limits()

"""FETCH ENVELOPE with header text as RFC 3501 §7.4.2 gives it: as in the header, non-ASCII
in RFC 2047 encoded words ("=?utf-8?b?…?="). pymap writes the decoded text as 8-bit UTF-8,
which a client that has not enabled UTF8=ACCEPT (RFC 6855) may show garbled.

Built on pymap 0.36's EnvelopeStructure and its (private) address-list writer: only the
subject and the display names change."""

from __future__ import annotations

from collections.abc import Sequence
from email.header import Header
from email.headerregistry import Address
from typing import Any

from pymap.message import BaseLoadedMessage
from pymap.mime import MessageContent
from pymap.parsing.primitives import List, Nil, String
from pymap.parsing.response.fetch import EnvelopeStructure, _AddressList
from pymap.parsing.specials import DateTime


def encoded(text: Any) -> str | None:
    """RFC 2047 encoded words for non-ASCII text, folded into words of at most 76 chars."""
    if text is None:
        return None
    text = str(text)
    return text if text.isascii() else Header(text, "utf-8").encode(linesep=" ")


class _EncodedAddresses(_AddressList):
    @classmethod
    def _parse(cls, address: Address) -> List:
        return List(
            [
                String.build(encoded(address.display_name)),
                Nil(),
                String.build(address.username),
                String.build(address.domain),
            ]
        )


class Envelope(EnvelopeStructure):
    def _addresses(self, headers: Sequence[Any] | None, fallback: Any = None) -> Any:
        if not headers and fallback:
            return self._addresses(fallback)
        return _EncodedAddresses(headers)

    @property
    def _value(self) -> Any:  # EnvelopeStructure._value with the subject encoded
        return List(
            [
                DateTime(self.date.datetime) if self.date and self.date.datetime else Nil(),
                String.build(encoded(self.subject)),
                self._addresses(self.from_),
                self._addresses(self.sender, self.from_),
                self._addresses(self.reply_to, self.from_),
                self._addresses(self.to),
                self._addresses(self.cc),
                self._addresses(self.bcc),
                String.build(self.in_reply_to),
                String.build(self.message_id),
            ]
        )


class LoadedMessage(BaseLoadedMessage):
    @classmethod
    def _get_envelope_structure(cls, msg: MessageContent) -> EnvelopeStructure:
        parsed = msg.header.parsed
        return Envelope(
            parsed.date,
            parsed.subject,
            parsed.from_,
            parsed.sender,
            parsed.reply_to,
            parsed.to,
            parsed.cc,
            parsed.bcc,
            parsed.in_reply_to,
            parsed.message_id,
        )

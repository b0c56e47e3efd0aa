"""FETCH ENVELOPE with header text as RFC 3501 §7.4.2 gives it: as in the header, non-ASCII
in RFC 2047 encoded words ("=?utf-8?b?…?="). pymap writes the decoded text as 8-bit UTF-8,
which a client that has not enabled UTF8=ACCEPT (RFC 6855) may show garbled.

Built on pymap 0.36's EnvelopeStructure and its (private) address-list writer: only the
subject and the display names change.

BODYSTRUCTURE's disposition as RFC 3501 §9 gives it, `("attachment" ("filename" "…"))`:
pymap writes the whole Content-Disposition header as one string, so clients that list
attachments from BODYSTRUCTURE (phones, Outlook) found none; non-ASCII values in RFC 2047
encoded words, as above."""

from __future__ import annotations

from collections.abc import Sequence
from email.header import Header
from email.headerregistry import Address
from typing import Any, cast

from pymap.message import BaseLoadedMessage
from pymap.mime import MessageContent
from pymap.parsing.primitives import List, Nil, String
from pymap.parsing.response.fetch import (
    BodyStructure,
    EnvelopeStructure,
    _AddressList,
)
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


class _Disposed(BodyStructure):
    """pymap's structure of one part, its extension data with the disposition as a list."""

    def __init__(self, inner: BodyStructure) -> None:
        self.inner = inner

    def write(self, writer: Any) -> None:
        self.inner.write(writer)

    def __bytes__(self) -> bytes:
        return bytes(self.inner)

    @property
    def extended(self) -> List:
        items = list(self.inner.extended.value)
        items[-3] = _disposition(self.inner.content_disposition)  # before language, location
        return List(items)


def _disposition(header: Any) -> Any:
    if header is None or not header.content_disposition:
        return Nil()
    params = [String.build(x) for k, v in header.params.items() for x in (k.lower(), encoded(v))]
    return List([String.build(header.content_disposition), List(params) if params else Nil()])


class LoadedMessage(BaseLoadedMessage):
    @classmethod
    def _get_body_structure(cls, msg: MessageContent) -> BodyStructure:
        return _Disposed(cast(BodyStructure, super()._get_body_structure(msg)))

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

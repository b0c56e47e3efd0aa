"""Split a MIME multipart message (RFC 2046 / RFC 2387 multipart/related) into its parts, safely.

For packages other systems send as "the XML part plus files as parts with a Content-ID" (SOAP
with attachments style). Written for hostile input instead of the stdlib `email` parser, which
is lenient (it repairs what it cannot read), recursive and slower on large parts: here the part
count and header sizes are capped, nested multiparts are refused, every part's transfer
encoding is checked, and parts are split with `bytes.find` without copying bodies twice. The
stdlib is still used for what it does well: parsing one bounded header block.

    mime = split(data)                   # data starts with its own MIME headers
    mime = split(body, content_type=h)   # or the headers came separately (HTTP)
    mime.root.decode(), mime.parts["qd-123.pdf"].decode()
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message

MAX_HEADER_BYTES = 16 * 1024
MULTIPART_TYPES = frozenset({"multipart/related", "multipart/mixed"})
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")  # RFC 2046
_LINE_END = re.compile(rb"[ \t]*\r?\n")


class MultipartError(ValueError):
    """The bytes are not an acceptable multipart message; `field` says where (e.g. part[2])."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class Part:
    """One body part: its headers and its body as sent (`raw`), decoded on demand."""

    index: int  # 1-based position in the message
    content_id: str  # without the angle brackets; "" when the part has none
    content_type: str  # media type, lower case ("application/pdf")
    transfer_encoding: str  # lower case; "7bit" when absent
    headers: Message = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def name(self) -> str:
        return f"part[{self.index}]"

    def decoded_size_bound(self) -> int:
        """An upper bound of the decoded size, known before decoding (for size caps)."""
        if self.transfer_encoding == "base64":
            return len(self.raw) // 4 * 3
        return len(self.raw)

    def decode(self) -> bytes:
        if self.transfer_encoding == "base64":
            compact = self.raw.translate(None, b" \t\r\n")  # lines of 76; C speed
            try:
                return base64.b64decode(compact, validate=True)
            except (binascii.Error, ValueError):
                raise MultipartError(self.name, "is not valid base64") from None
        if self.transfer_encoding == "quoted-printable":
            try:
                return binascii.a2b_qp(self.raw)
            except (binascii.Error, ValueError):
                raise MultipartError(self.name, "is not valid quoted-printable") from None
        return self.raw


@dataclass(frozen=True)
class Multipart:
    """The root part (the `start` parameter's part, else the first) and the others by id."""

    media_type: str
    root: Part
    parts: dict[str, Part]  # Content-ID → part, every part but the root


def looks_like_mime(data: bytes) -> bool:
    """True when the bytes open with a header line rather than with XML markup."""
    head = data[:200].lstrip(b"\xef\xbb\xbf \t\r\n")
    return bool(head) and not head.startswith(b"<") and b":" in head.split(b"\n", 1)[0]


def _headers(block: bytes, where: str) -> Message:
    if len(block) > MAX_HEADER_BYTES:
        raise MultipartError(where, f"headers are over {MAX_HEADER_BYTES} bytes")
    try:
        text = block.decode("ascii")
    except UnicodeDecodeError:
        raise MultipartError(where, "headers must be ASCII (RFC 2047 for other text)") from None
    return email.parser.HeaderParser(policy=email.policy.compat32).parsestr(text)


def _split_head(data: bytes, start: int, where: str) -> tuple[Message, int]:
    """The header block starting at `start` and the offset of the body after its blank line."""
    if data.startswith(b"\r\n", start) or data.startswith(b"\n", start):  # no headers at all
        return _headers(b"", where), start + (2 if data[start] == 13 else 1)
    end = _HEADER_END.search(data, start, start + MAX_HEADER_BYTES + 4)
    if end is None:
        raise MultipartError(where, "headers do not end with a blank line within the limit")
    return _headers(data[start : end.start()], where), end.end()


def _content_id(headers: Message) -> str:
    value = (headers.get("Content-ID") or "").strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value


def split(data: bytes, *, content_type: str | None = None, max_parts: int = 1000) -> Multipart:
    """The parts of a multipart message; MultipartError naming the part for anything wrong."""
    if content_type is None:
        top, body_start = _split_head(data, 0, "headers")
    else:
        top, body_start = _headers(f"Content-Type: {content_type}".encode(), "Content-Type"), 0
    media = top.get_content_type()
    if media not in MULTIPART_TYPES:
        raise MultipartError(
            "Content-Type", f"{media} is not one of {', '.join(sorted(MULTIPART_TYPES))}"
        )
    boundary = top.get_param("boundary")
    if not isinstance(boundary, str) or not _BOUNDARY.match(boundary):
        raise MultipartError("Content-Type", "needs a boundary of 1-70 allowed characters")
    delimiter = b"--" + boundary.encode("ascii")
    # The first delimiter opens a line; what comes before it is preamble and is ignored.
    if data.startswith(delimiter, body_start):
        at = body_start
    else:
        found = data.find(b"\n" + delimiter, body_start)
        if found < 0:
            raise MultipartError("body", "no part: the boundary never occurs")
        at = found + 1
    parts: list[Part] = []
    while True:
        after = at + len(delimiter)
        if data.startswith(b"--", after):
            break  # the close delimiter; anything after it is epilogue
        line_end = _LINE_END.match(data, after)
        if line_end is None:
            raise MultipartError(f"part[{len(parts) + 1}]", "boundary line has trailing text")
        if len(parts) >= max_parts:
            raise MultipartError("body", f"more than {max_parts} parts")
        index = len(parts) + 1
        where = f"part[{index}]"
        headers, content_start = _split_head(data, line_end.end(), where)
        nxt = data.find(b"\n" + delimiter, content_start - 1)
        if nxt < 0:
            raise MultipartError(where, "is not closed by a boundary (truncated message?)")
        content_end = nxt - 1 if nxt > 0 and data[nxt - 1] == 13 else nxt  # CRLF before it
        parts.append(_part(index, headers, data[content_start : max(content_end, content_start)]))
        at = nxt + 1
    if not parts:
        raise MultipartError("body", "has no parts")
    return _assemble(media, top, parts)


def _part(index: int, headers: Message, raw: bytes) -> Part:
    where = f"part[{index}]"
    media = headers.get_content_type()
    if media.startswith("multipart/"):
        raise MultipartError(where, "nested multiparts are not accepted")
    encoding = (headers.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    if encoding not in ("7bit", "8bit", "binary", "base64", "quoted-printable"):
        raise MultipartError(
            f"{where}/Content-Transfer-Encoding", f"{encoding!r} is not a MIME encoding"
        )
    return Part(index, _content_id(headers), media, encoding, headers, raw)


def _assemble(media: str, top: Message, parts: list[Part]) -> Multipart:
    start = top.get_param("start")
    root = parts[0]
    if isinstance(start, str) and start.strip():
        wanted = start.strip().removeprefix("<").removesuffix(">")
        matches = [p for p in parts if p.content_id == wanted]
        if not matches:
            raise MultipartError("Content-Type", f"start={start!r} names no part")
        root = matches[0]
    by_id: dict[str, Part] = {}
    for part in parts:
        if part is root:
            continue
        if not part.content_id:
            raise MultipartError(f"{part.name}/Content-ID", "is missing")
        if part.content_id in by_id or part.content_id == root.content_id:
            raise MultipartError(f"{part.name}/Content-ID", f"<{part.content_id}> is used twice")
        by_id[part.content_id] = part
    return Multipart(media, root, by_id)

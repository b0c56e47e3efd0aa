"""Mailbox names on the wire (RFC 3501 §5.1.3, modified UTF-7), decoded strictly.

pymap 0.36.7's `modutf7_decode` loops forever on a '&' with no closing '-' ("&ZZZ") and
raises UnicodeDecodeError on bad base64 ("&&&-"), which ends the connection with a
traceback. Its parser decodes a mailbox name before it checks the state, so one line from
anyone, before login, stopped the mail service's event loop. Importing this module makes
pymap's command parser use `decode` instead: a malformed name is NotParseable, which pymap
answers BAD, and the session goes on."""

from __future__ import annotations

import binascii
import re

import pymap.parsing.command.auth
import pymap.parsing.specials.mailbox
from pymap.parsing.exceptions import NotParseable

# '&' … '-' shifts to modified base64 (',' in place of '/'); "&-" is a literal '&'.
_SHIFTED = re.compile(rb"&([A-Za-z0-9+,]*)-")


def decode(data: bytes) -> str:
    """The name, or NotParseable when it is not modified UTF-7."""
    out, pos = [], 0
    for m in _SHIFTED.finditer(data):
        out.append(_ascii(data[pos : m.start()]))
        b64 = m.group(1)
        if not b64:
            out.append("&")
        else:
            padded = b64.replace(b",", b"/") + b"=" * (-len(b64) % 4)
            try:
                out.append(binascii.a2b_base64(padded, strict_mode=True).decode("utf-16-be"))
            except (binascii.Error, UnicodeDecodeError):
                raise NotParseable(memoryview(data)) from None
        pos = m.end()
    out.append(_ascii(data[pos:]))
    return "".join(out)


def _ascii(run: bytes) -> str:
    if b"&" in run:  # a shift never closed
        raise NotParseable(memoryview(run))
    return run.decode("latin-1")  # as pymap's decoder reads the rest, byte by byte


pymap.parsing.specials.mailbox.modutf7_decode = decode
pymap.parsing.command.auth.modutf7_decode = decode

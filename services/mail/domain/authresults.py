"""SPF and DKIM results on mail that came in, as RFC 8601 says to record them: the result
words, the `Authentication-Results:` header prepended at receipt, and the removal of such
headers carrying our own authserv-id that arrived with the message (RFC 8601 §5: a forged
"pass" from outside must not be believed by a mail client trusting our id)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 8601 §2.7.1 (DKIM) and §2.7.2 (SPF) result words used here.
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror", "policy")

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_FIELD = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.ASCII)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Authentication:
    """What the checks at receipt found; `summary` is the header's value."""

    spf: str = ""
    dkim: str = ""
    summary: str = ""


def header_value(
    authserv_id: str,
    *,
    spf: str,
    mail_from: str,
    helo: str,
    dkim: str,
    dkim_domain: str = "",
    dkim_selector: str = "",
    client_ip: str = "",
) -> str:
    """The value of an Authentication-Results header (RFC 8601 §2.2)."""
    spf_prop = f"smtp.mailfrom={_prop(mail_from)}" if mail_from else f"smtp.helo={_name(helo)}"
    parts = [authserv_id, f"spf={spf} ({_prop(client_ip) or 'unknown'}) {spf_prop}"]
    dkim_part = f"dkim={dkim}"
    if dkim_domain:
        dkim_part += f" header.d={_name(dkim_domain)}"
    if dkim_selector:
        dkim_part += f" header.s={_name(dkim_selector)}"
    parts.append(dkim_part)
    return ";\r\n\t".join(parts)


def _prop(value: str) -> str:
    """A property value as RFC 8601 allows it (no quoting issues, no CR/LF, bounded)."""
    return re.sub(r"[^A-Za-z0-9.@_+=:-]", "", value)[:200]


def _name(value: str) -> str:
    """A domain name (HELO) as a property value: letters, digits, dots and hyphens only."""
    return re.sub(r"[^A-Za-z0-9.-]", "", value)[:200]


def authserv_of(value: str) -> str:
    """The authserv-id of a header value: the first token, comments dropped."""
    text = _COMMENT.sub(" ", value)
    return text.split(";", 1)[0].split()[0].lower() if text.split(";", 1)[0].split() else ""


def strip_ours(raw: bytes, authserv_id: str) -> tuple[bytes, int]:
    """`raw` without the Authentication-Results headers naming `authserv_id` (folded
    continuation lines included), and how many were removed. The body is untouched."""
    end = _HEADER_END.search(raw)
    # Every header line keeps its own line ending; `rest` starts at the empty line.
    cut = (
        (end.start() + (2 if raw[end.start() : end.start() + 1] == b"\r" else 1))
        if end
        else len(raw)
    )
    head, rest = raw[:cut], raw[cut:]
    fields: list[list[bytes]] = []
    for line in head.splitlines(keepends=True):
        if fields and line[:1] in (b" ", b"\t"):
            fields[-1].append(line)
        else:
            fields.append([line])
    kept, removed = [], 0
    ours = authserv_id.lower()
    for lines in fields:
        m = _FIELD.match(lines[0])
        if m and m.group(1).lower() == b"authentication-results":
            value = b"".join(lines)[m.end() :].decode("utf-8", "replace")
            if authserv_of(value) == ours:
                removed += 1
                continue
        kept.append(b"".join(lines))
    return b"".join(kept) + rest, removed

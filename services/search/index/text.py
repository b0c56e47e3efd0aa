"""Vietnamese-aware folding, tokenizing and highlighting, shared by every backend.

The tokens here must equal what the engines index: tantivy's `simple` tokenizer (runs of
alphanumeric characters) + lowercase + ascii_fold, and Elasticsearch's analyzer with
lowercase + asciifolding. Queries are folded here, so the engines only ever see plain tokens.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from dataclasses import dataclass

# Runs of letters and digits: the boundaries of tantivy's simple tokenizer.
_WORD = re.compile(r"[^\W_]+")
# Control and format characters (C0, C1, zero-width, bidi overrides…) never reach an engine.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    # Latin-1 Supplement through Latin Extended Additional (Vietnamese: U+1EA0–U+1EF9).
    for cp in range(0x00C0, 0x1F00):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and base.isascii() and base.isalpha():
            table[cp] = base.lower()
    # Letters that do not decompose but ascii_fold/asciifolding still map.
    extra = {"đ": "d", "Đ": "d", "ø": "o", "Ø": "o", "æ": "ae", "Æ": "ae", "ß": "ss", "ł": "l"}
    table.update({ord(k): v for k, v in extra.items()})
    return table


_TABLE = _fold_table()


def nfc(text: str) -> str:
    """NFC form: decomposed input ("a" + U+0309) would split words at the combining mark."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def clean(text: str) -> str:
    """NFC with control characters replaced by spaces."""
    return _CONTROL.sub(" ", nfc(text))


def fold(text: str) -> str:
    """Lowercase and strip Vietnamese diacritics: "Quyết ĐỊNH" -> "quyet dinh"."""
    return nfc(text).lower().translate(_TABLE)


def tokens(text: str) -> list[str]:
    """The folded tokens of `text`, as the engines index them."""
    return [fold(m.group()) for m in _WORD.finditer(nfc(text))]


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded token) over `text` (already NFC), offsets in characters."""
    return [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]


def _matcher(terms: frozenset[str], phrases: tuple[tuple[str, ...], ...]) -> re.Pattern[str]:
    alts = [r"[\W_]+".join(map(re.escape, p)) for p in sorted(phrases, key=len, reverse=True)]
    alts += [re.escape(t) for t in sorted(terms, key=len, reverse=True)]
    return _compile("|".join(alts))


@functools.lru_cache(maxsize=256)
def _compile(alternatives: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])")


def _marked_slow(
    text: str, terms: frozenset[str], phrases: tuple[tuple[str, ...], ...]
) -> list[tuple[int, int]]:
    spans_tok = token_spans(text)
    folded = [t for _, _, t in spans_tok]
    marked: list[tuple[int, int]] = []
    for i, (start, end, tok) in enumerate(spans_tok):
        if tok in terms:
            marked.append((start, end))
            continue
        for phrase in phrases:
            n = len(phrase)
            if folded[i : i + n] == list(phrase):
                marked.append((start, spans_tok[i + n - 1][1]))
                break
    return marked


@dataclass(frozen=True, slots=True)
class Highlight:
    """Matching fragment of one field: the original text and the character spans that match."""

    field: str
    fragment: str
    spans: tuple[tuple[int, int], ...]

    def html(self, tag: str = "mark") -> str:
        """The fragment HTML-escaped, with each span wrapped in <tag>…</tag>."""
        out: list[str] = []
        pos = 0
        for start, end in self.spans:
            out.append(html.escape(self.fragment[pos:start]))
            out.append(f"<{tag}>{html.escape(self.fragment[start:end])}</{tag}>")
            pos = end
        out.append(html.escape(self.fragment[pos:]))
        return "".join(out)


def highlight(
    field: str,
    text: str,
    terms: frozenset[str],
    phrases: tuple[tuple[str, ...], ...],
    max_chars: int | None = None,
) -> Highlight | None:
    """Mark the tokens of `text` equal to a term, and runs equal to a phrase; None if none.

    With `max_chars`, the fragment is a window of that many characters around the first
    match, cut at word boundaries; the text keeps its diacritics.
    """
    if not text or (not terms and not phrases):
        return None
    text = nfc(text)
    folded_text = fold(text)
    if len(folded_text) == len(text):
        # Folding kept every character in place (always, for Vietnamese): one regex scan of
        # the folded text gives spans in the original.
        marked = [m.span() for m in _matcher(terms, phrases).finditer(folded_text)]
    else:
        marked = _marked_slow(text, terms, phrases)
    if not marked:
        return None
    # Merge overlapping spans (a phrase and a term over the same words).
    marked.sort()
    merged: list[tuple[int, int]] = [marked[0]]
    for start, end in marked[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    if max_chars is None or len(text) <= max_chars:
        return Highlight(field, text, tuple(merged))
    first = merged[0][0]
    lo = max(0, first - max_chars // 5)
    if lo > 0:  # start at a word boundary
        space = text.rfind(" ", 0, lo + 1)
        lo = space + 1 if space >= 0 and first - space < max_chars // 2 else lo
    hi = min(len(text), lo + max_chars)
    if hi < len(text):
        space = text.rfind(" ", lo, hi)
        hi = space if space > first else hi
    inside = tuple((s - lo, min(e, hi) - lo) for s, e in merged if s >= lo and s < hi)
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    shift = len(prefix)
    return Highlight(
        field,
        prefix + text[lo:hi] + suffix,
        tuple((s + shift, e + shift) for s, e in inside),
    )

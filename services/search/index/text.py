"""Vietnamese-aware folding, tokenizing and highlighting, shared by every backend.

The tokens here must equal what the engines index: tantivy's `simple` tokenizer (runs of
alphanumeric characters) + lowercase + ascii_fold, and Elasticsearch's analyzer with
lowercase + asciifolding. Queries are folded here, so the engines only ever see plain tokens.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from lgsp.textfold import FOLD_TABLE as _TABLE
from lgsp.textfold import fold as fold  # re-exported: the backends fold queries here
from lgsp.textfold import nfc

# Runs of letters and digits: the boundaries of tantivy's simple tokenizer.
_WORD = re.compile(r"[^\W_]+")
# Control and format characters (C0, C1, zero-width, bidi overrides…) never reach an engine.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


def clean(text: str) -> str:
    """NFC with control characters replaced by spaces."""
    return _CONTROL.sub(" ", nfc(text))


def tokens(text: str) -> list[str]:
    """The folded tokens of `text`, as the engines index them."""
    return [fold(m.group()) for m in _WORD.finditer(nfc(text))]


def typed_tokens(text: str) -> list[tuple[str, str]]:
    """(folded, as typed) for each token of `text`: as typed is lowercased NFC with its
    diacritics, or "" when it has none (folding does not change it)."""
    out = []
    for m in _WORD.finditer(nfc(text)):
        lower = m.group().lower()
        folded = lower.translate(_TABLE)
        out.append((folded, lower if lower != folded else ""))
    return out


def token_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, folded token) over `text` (already NFC), offsets in characters."""
    return [(m.start(), m.end(), fold(m.group())) for m in _WORD.finditer(text)]


def _letter_classes() -> dict[str, str]:
    """Each folded letter -> a regex class of every character that folds to it ("a" ->
    "[aAàáạ…]"), so highlights match the original text without folding it first."""
    chars: dict[str, set[str]] = {}
    for cp, base in _TABLE.items():
        if len(base) == 1:
            chars.setdefault(base, set()).add(chr(cp))
    out = {}
    for letter in "abcdefghijklmnopqrstuvwxyz":
        group = {letter, letter.upper(), *chars.get(letter, ())}
        out[letter] = "[" + "".join(sorted(group)) + "]"
    return out


_CLASSES = _letter_classes()
# Characters whose folding is not one letter for one character (æ -> ae): such a text takes
# the token-by-token path.
_MULTI = re.compile("[" + "".join(chr(cp) for cp, b in _TABLE.items() if len(b) != 1) + "]")


def _pattern(token: str) -> str:
    return "".join(_CLASSES.get(c) or re.escape(c) for c in token)


@functools.lru_cache(maxsize=256)
def _matcher(terms: frozenset[str], phrases: tuple[tuple[str, ...], ...]) -> re.Pattern[str]:
    alts = [r"[\W_]+".join(map(_pattern, p)) for p in sorted(phrases, key=len, reverse=True)]
    alts += [_pattern(t) for t in sorted(terms, key=len, reverse=True)]
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


# Only this much of a field is searched for a fragment: a 2 MB attachment text costs no more
# to highlight than its first pages.
SCAN_CHARS = 20_000


def highlight(
    field: str,
    text: str,
    terms: frozenset[str],
    phrases: tuple[tuple[str, ...], ...],
    max_chars: int | None = None,
) -> Highlight | None:
    """Mark the tokens of `text` equal to a term, and runs equal to a phrase; None if none.

    With `max_chars`, the fragment is the window of that many characters, within the first
    `SCAN_CHARS`, holding the most distinct query words (then the most matches): the densest
    passage, not the first mention. It is cut at word boundaries; only the window is marked.
    The text keeps its diacritics: matching is diacritic- and case-insensitive on the
    original, no folded copy is made.
    """
    if not text or (not terms and not phrases):
        return None
    text = nfc(text)
    if max_chars is not None and len(text) > SCAN_CHARS:
        text = text[:SCAN_CHARS]
    if _MULTI.search(text):
        return _highlight_slow(field, text, terms, phrases, max_chars)
    pattern = _matcher(terms, phrases)
    if max_chars is None or len(text) <= max_chars:
        whole = tuple(m.span() for m in pattern.finditer(text))
        return Highlight(field, text, whole) if whole else None
    found = [m.span() for m in pattern.finditer(text)]
    if not found:
        return None
    lo, hi = _window(text, _densest(text, found, max_chars), max_chars)
    # Spans inside the window only; a match cut by the window's end is cut with it.
    spans = [
        (max(s, lo), min(e, hi)) for s, e in (m.span() for m in pattern.finditer(text, lo, hi))
    ]
    return _fragment(field, text, lo, hi, spans)


def _densest(text: str, spans: list[tuple[int, int]], max_chars: int) -> int:
    """The start of the match that opens the best window: most distinct words matched, then
    most matches, then earliest. One pass (two pointers) over the matches."""
    keys = [fold(text[s:e]) for s, e in spans]
    reach = max_chars - max_chars // 5  # _window puts a fifth of the room before the match
    best, best_score = spans[0][0], (0, 0)
    j = 0
    for i, (start, _) in enumerate(spans):
        j = max(j, i + 1)
        while j < len(spans) and spans[j][1] <= start + reach:
            j += 1
        score = (len(set(keys[i:j])), j - i)
        if score > best_score:
            best, best_score = start, score
    return best


# A word's characters: a window never starts or ends inside one.
_WORDCHAR = re.compile(r"[^\W_]")


def _window(text: str, first: int, max_chars: int) -> tuple[int, int]:
    lo = max(0, first - max_chars // 5)
    while lo > 0 and lo < first and _WORDCHAR.match(text[lo - 1]):
        lo += 1  # inside a word: start at the next word (never past the match)
    hi = min(len(text), lo + max_chars)
    if hi < len(text):
        cut = hi
        while cut > first and _WORDCHAR.match(text[cut - 1]) and _WORDCHAR.match(text[cut]):
            cut -= 1  # inside a word: end before it
        hi = cut if cut > first else hi
    return lo, hi


def _fragment(field: str, text: str, lo: int, hi: int, spans: list[tuple[int, int]]) -> Highlight:
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    shift = len(prefix) - lo
    return Highlight(
        field,
        prefix + text[lo:hi] + suffix,
        tuple((s + shift, e + shift) for s, e in spans if s < e),
    )


def _highlight_slow(
    field: str,
    text: str,
    terms: frozenset[str],
    phrases: tuple[tuple[str, ...], ...],
    max_chars: int | None,
) -> Highlight | None:
    """Token by token, for text where folding changes lengths (æ -> ae)."""
    marked = _marked_slow(text, terms, phrases)
    if not marked:
        return None
    marked.sort()
    merged: list[tuple[int, int]] = [marked[0]]
    for start, end in marked[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    if max_chars is None or len(text) <= max_chars:
        return Highlight(field, text, tuple(merged))
    lo, hi = _window(text, _densest(text, merged, max_chars), max_chars)
    return _fragment(field, text, lo, hi, [(s, min(e, hi)) for s, e in merged if lo <= s < hi])

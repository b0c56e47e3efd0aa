"""Did you mean: a query that finds nothing because a word is mistyped ("truc tuyn") gets a
corrected query built from the index's own words ("truc tuyen").

A word is corrected when no document the caller may read holds it; the correction is the
indexed word (folded) at the smallest edit distance, 1 or 2, then the most documents. The
engines list candidates only from documents the caller may read (an outsider's query must
not learn the words of documents it cannot see). Only the words are looked at: quoted
phrases, numbers and notations are left as typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from . import text as tx
from .query import Node, positive_terms

MAX_EDITS = 2
MIN_LENGTH = 3  # shorter words have too many neighbours to guess from


def distance(a: str, b: str, limit: int = MAX_EDITS) -> int:
    """Levenshtein distance with adjacent transpositions, or limit + 1 when above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1] if prev[-1] <= limit else limit + 1


def best(word: str, candidates: Iterable[tuple[str, int]]) -> str | None:
    """The candidate nearest `word` (then the most documents, then alphabetically)."""
    ranked = sorted(
        (d, -count, term)
        for term, count in candidates
        if count > 0 and term != word and (d := distance(word, term)) <= MAX_EDITS
    )
    return ranked[0][2] if ranked else None


def suggest(
    text: str, node: Node | None, vocabulary: Callable[[str], list[tuple[str, int]]]
) -> str:
    """`text` with each word no readable document holds replaced by its correction; "" when
    nothing was corrected. `vocabulary(word)` lists (indexed word, readable documents) of
    the words that may be near `word`, `word` itself included when a document holds it."""
    terms, _ = positive_terms(node)
    fixes: dict[str, str] = {}
    for word in sorted(terms):
        if len(word) < MIN_LENGTH or not word.isalpha():
            continue
        candidates = vocabulary(word)
        if any(term == word and count > 0 for term, count in candidates):
            continue
        if (fix := best(word, candidates)) is not None:
            fixes[word] = fix
    if not fixes:
        return ""
    # Replace the words as typed (any case, any diacritics) by their corrections.
    return re.sub(r"[^\W_]+", lambda m: fixes.get(tx.fold(m.group()), m.group()), tx.clean(text))

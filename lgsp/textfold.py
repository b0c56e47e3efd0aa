"""Vietnamese-aware folding for accent-insensitive matching: "Quyết ĐỊNH" -> "quyet dinh",
"đ" -> "d". The same folding as Elasticsearch's asciifolding and tantivy's ascii_fold, so a
service's own substring search and the search service agree on what matches."""

from __future__ import annotations

import unicodedata


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


FOLD_TABLE = _fold_table()


def nfc(text: str) -> str:
    """NFC form: decomposed input ("a" + U+0309) would split words at the combining mark."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Lowercase and strip Vietnamese diacritics: "Quyết ĐỊNH" -> "quyet dinh"."""
    return nfc(text).lower().translate(FOLD_TABLE)

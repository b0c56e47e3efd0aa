"""Text as people search it: Vietnamese without diacritics, lowercase, one space between words.

fold("  Nguyễn  Văn Đức ") == "nguyen van duc"
"""

from __future__ import annotations

import unicodedata

__all__ = ["fold"]


def fold(text: str) -> str:
    """Lowercase, diacritics stripped (đ → d), runs of whitespace made one space, trimmed."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.split())

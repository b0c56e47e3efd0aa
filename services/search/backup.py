"""What `lgsp backup` keeps of search: the index root with the serving generation and the one
kept for roll-back (their tantivy segments and indexer state), the CURRENT and SERVED
pointers and the cursor key. A generation being built by `lgsp search reindex` is left out:
it is not served, is rewritten while it builds, and a restored platform serves CURRENT.
With Elasticsearch the root holds only the pointers, the cursor key and each generation's
indexer state; the index itself is saved with Elasticsearch's snapshots (docs/operations.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from lgsp.backup import Item
from lgsp.config import Settings
from services.search.adapters.generations import POINTER, SERVED, root_of


def items(settings: Settings) -> list[Item]:
    root = root_of(settings)

    def other_generations(folder: str, names: list[str]) -> set[str]:
        if Path(folder) != root:
            return set()
        return {n for n in names if (root / n).is_dir() and n not in kept_generations(root)}

    return [Item("search-index", root, "tree", check=whole, ignore=other_generations)]


def kept_generations(root: Path) -> set[str]:
    """The serving generation and the last one that served before it."""
    try:
        current = (root / POINTER).read_text().strip()
    except FileNotFoundError:
        return set()
    try:
        served = [n for n in (root / SERVED).read_text().split() if n != current]
    except FileNotFoundError:
        served = []
    return {current, *served[-1:]}


def whole(root: Path) -> bool:
    """The copy serves: CURRENT names a generation it holds (a reindex may switch during the
    copy) and every segment is there."""
    try:
        current = (root / POINTER).read_text().strip()
    except FileNotFoundError:
        return segments_present(root)  # nothing served yet
    return (root / current).is_dir() and segments_present(root)


def segments_present(root: Path) -> bool:
    """Every segment each copied meta.json names has its files: a merge that finished during
    the copy may have removed segments the copied meta.json still lists."""
    for meta in root.rglob("meta.json"):
        files = {p.name.split(".", 1)[0] for p in meta.parent.iterdir()}
        for segment in json.loads(meta.read_text()).get("segments", []):
            if segment["segment_id"].replace("-", "") not in files:
                return False
    return True

"""What `lgsp backup` keeps of search: the tantivy index root (the serving generation, the one
kept for roll-back, the CURRENT pointer and the cursor key). An Elasticsearch index is backed
up with Elasticsearch's snapshots (docs/operations.md)."""

from __future__ import annotations

import json
from pathlib import Path

from lgsp.backup import Item
from lgsp.config import Settings
from services.search.adapters.generations import root_of


def items(settings: Settings) -> list[Item]:
    if settings.search.backend != "tantivy":
        return []
    return [Item("search-index", root_of(settings), "tree", check=segments_present)]


def segments_present(root: Path) -> bool:
    """Every segment each copied meta.json names has its files: a merge that finished during
    the copy may have removed segments the copied meta.json still lists."""
    for meta in root.rglob("meta.json"):
        files = {p.name.split(".", 1)[0] for p in meta.parent.iterdir()}
        for segment in json.loads(meta.read_text()).get("segments", []):
            if segment["segment_id"].replace("-", "") not in files:
                return False
    return True

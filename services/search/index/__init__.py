"""The search engine layer: one `SearchIndex` interface, tantivy and Elasticsearch behind it.

index = open_index(backend="tantivy", index_dir="data/search-index")
index.upsert(docs); index.commit()
result = index.search(SearchQuery("cai cach hanh chinh"), Caller("000.00.00.H27"))
"""

from __future__ import annotations

from pathlib import Path

from .base import (
    DEFAULT_FACETS,
    FILTER_FIELDS,
    KEYWORD_FIELDS,
    MAX_PAGE_SIZE,
    SORT_FIELDS,
    Caller,
    Facet,
    FacetRequest,
    FacetValue,
    Filter,
    Hit,
    IndexedDocument,
    SearchIndex,
    SearchQuery,
    SearchResult,
    Sort,
    Suggestion,
)
from .errors import IndexLayoutError, SearchInputError
from .text import Highlight

__all__ = [
    "DEFAULT_FACETS",
    "FILTER_FIELDS",
    "KEYWORD_FIELDS",
    "MAX_PAGE_SIZE",
    "SORT_FIELDS",
    "Caller",
    "Facet",
    "FacetRequest",
    "FacetValue",
    "Filter",
    "Highlight",
    "Hit",
    "IndexLayoutError",
    "IndexedDocument",
    "SearchIndex",
    "SearchInputError",
    "SearchQuery",
    "SearchResult",
    "Sort",
    "Suggestion",
    "open_index",
]


def open_index(
    backend: str = "tantivy",
    *,
    index_dir: str | Path | None = None,
    url: str = "",
    username: str = "",
    password: str = "",
    index_name: str = "lgsp-documents",
    cursor_key: bytes | None = None,
    shards: int = 2,
    memory_lock: str = "none",
) -> SearchIndex:
    """The configured engine: tantivy in `index_dir` (None: in memory) or Elasticsearch.

    tantivy only: `shards`, how many indexes a new index is split into (searched in
    parallel; an existing index keeps the count it was created with); `memory_lock`, what
    of the index is locked in memory ("none", "postings", "all": see resident.py)."""
    if backend == "tantivy":
        from .tantivy_index import TantivyIndex

        return TantivyIndex(
            index_dir, cursor_key=cursor_key, shards=shards, memory_lock=memory_lock
        )
    if backend == "elasticsearch":
        if not url:
            raise ValueError("the elasticsearch backend needs search.url")
        from .elastic import ElasticIndex

        return ElasticIndex(
            url, index=index_name, username=username, password=password, cursor_key=cursor_key
        )
    raise ValueError(f"unknown search backend {backend!r}; use tantivy or elasticsearch")

"""Facets on the tantivy engine: per-shard term aggregations, merged."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .base import (
    Facet,
    FacetRequest,
    FacetValue,
)


def merge_counts(lists: Iterable[list[tuple[str, int]]]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for pairs in lists:
        for term, n in pairs:
            counts[term] = counts.get(term, 0) + int(n)
    return list(counts.items())


def facet_aggs(facets: tuple[FacetRequest, ...]) -> dict[str, Any]:
    """Each shard counts `shard_size` buckets per field (10× the size asked, at least 200;
    also per segment): the merged counts are exact unless a field has more distinct values
    than that among one shard's matches, as with one index and its segments."""
    aggs: dict[str, Any] = {}
    for f in facets:
        shard_size = max(10 * f.size, 200)
        aggs[f.field] = {
            "terms": {"field": f.field, "size": shard_size, "segment_size": shard_size}
        }
    aggs["_total"] = {"value_count": {"field": "version"}}  # every document has one
    return aggs


def merge_buckets(f: FacetRequest, outs: list[dict[str, Any]]) -> Facet:
    """One field's buckets from every shard: counts summed per value, most first (ties by
    value), cut to the size asked."""
    counts: dict[str, int] = {}
    for out in outs:
        for b in out.get(f.field, {}).get("buckets", []):
            key = str(b["key"])
            counts[key] = counts.get(key, 0) + int(b["doc_count"])
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: f.size]
    return Facet(f.field, tuple(FacetValue(v, n) for v, n in ranked))

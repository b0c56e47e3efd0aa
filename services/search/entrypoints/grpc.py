"""gRPC SearchService: proto request → engine query (rights from the token) → proto response.

Field names of the proto (document_type_code, promulgation_date…) are mapped to the
engine's; anything the engine refuses comes back as INVALID_ARGUMENT naming the field
(SearchInputError). The engine is synchronous: calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Iterable
from datetime import datetime, time, timedelta, timezone
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.api.search.v1 import search_pb2 as pb
from lgsp.auth import current_principal
from lgsp.grpc.errors import InvalidArgument
from services.search.index import (
    Facet,
    FacetRequest,
    Filter,
    Hit,
    SearchIndex,
    SearchQuery,
    Sort,
)
from services.search.service_layer.rights import AgencyTree, caller_of

VN = timezone(timedelta(hours=7))  # dates shown with hits are Vietnam dates

# Proto field names → engine field names (the engine's own names are accepted too).
FIELD_ALIASES = {
    "document_type_code": "doc_type",
    "promulgation_date": "issued_date",
    "recipient_agency_code": "recipient_agency_codes",
    "update_time": "updated_time",
}
PROTO_NAMES = {"doc_type": "document_type_code"}
SORT_ALIASES = {
    "": "relevance",
    "_score": "relevance",
    "relevance": "relevance",
    "promulgation_date": "issued_date",
    "issued_date": "issued_date",
    "updated_time": "updated_time",
    "update_time": "updated_time",
}
# Highlighted engine fields → the proto's names ("content" is the attachments' text).
HIGHLIGHT_NAMES = {"body_text": "content"}
MAX_PREFIX = 200


def _clean_value(value: str, field: str) -> str:
    """Filter values are codes and names: control and format characters in them are an
    error rather than something to guess around."""
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise InvalidArgument(field, "control or invisible characters are not allowed")
    return value


def _filters(items: Iterable[pb.Filter]) -> tuple[Filter, ...]:
    out = []
    for f in items:
        name = FIELD_ALIASES.get(f.field, f.field)
        _clean_value(f.field, "filters")
        which = f.WhichOneof("condition")
        if which == "terms":
            values = tuple(_clean_value(v, "filters") for v in f.terms.values)
            out.append(Filter(name, values=values, negate=f.negate))
        elif which == "range":
            out.append(
                Filter(
                    name,
                    gte=_clean_value(f.range.gte, "filters"),
                    lte=_clean_value(f.range.lte, "filters"),
                    negate=f.negate,
                )
            )
        else:
            raise InvalidArgument("filters", f"{f.field[:50]!r}: set terms or range")
    return tuple(out)


def _facets(items: Iterable[pb.FacetRequest]) -> tuple[FacetRequest, ...]:
    return tuple(FacetRequest(FIELD_ALIASES.get(f.field, f.field), f.size) for f in items)


def _sort(items: Iterable[pb.SortOrder]) -> Sort:
    keys = list(items)
    if not keys:
        return Sort()
    if len(keys) > 1:
        raise InvalidArgument("sort", "one sort key only (ties are broken by id)")
    field = SORT_ALIASES.get(keys[0].field)
    if field is None:
        raise InvalidArgument("sort", f"cannot sort by {keys[0].field[:50]!r}")
    return Sort(field, descending=keys[0].direction != pb.SORT_DIRECTION_ASCENDING)


def _wants_documents(collections: Iterable[int]) -> bool:
    wanted = set(collections)
    return not wanted or bool(wanted & {pb.COLLECTION_UNSPECIFIED, pb.COLLECTION_DOCUMENTS})


def hit_to_proto(h: Hit) -> pb.SearchHit:
    m = pb.SearchHit(
        id=h.id,
        collection=pb.COLLECTION_DOCUMENTS,
        score=h.score or 0.0,
        title=h.subject,
        reference=h.number_notation,
        agency_code=h.agency_code,
    )
    if h.issued_date:
        ts = Timestamp()
        day = datetime.fromisoformat(h.issued_date).date()
        ts.FromDatetime(datetime.combine(day, time(0), VN))
        m.time.CopyFrom(ts)
    for name, value in (
        ("document_type_code", h.doc_type),
        ("status", h.status),
        ("signer_name", h.signer_name),
        ("issued_date", h.issued_date),
    ):
        if value:
            m.fields[name] = value
    for hl in h.highlights:
        m.highlights.append(
            pb.Highlight(field=HIGHLIGHT_NAMES.get(hl.field, hl.field), fragments=[hl.html("em")])
        )
    return m


def facets_to_proto(facets: Iterable[Facet]) -> list[pb.Facet]:
    return [
        pb.Facet(
            field=PROTO_NAMES.get(f.field, f.field),
            values=[pb.FacetValue(value=v.value, count=v.count) for v in f.values],
        )
        for f in facets
    ]


class SearchServicer:
    def __init__(
        self, index: Callable[[], SearchIndex], agencies: AgencyTree | None = None
    ) -> None:
        self._index = index  # the serving index at call time (a rebuild swaps it)
        self._agencies = agencies  # a role held in an agency reads the agencies below it

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        caller = caller_of(current_principal(), self._agencies)
        if request.page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        query = SearchQuery(
            text=request.query,
            filters=_filters(request.filters),
            facets=_facets(request.facets),
            sort=_sort(request.sort),
            page_size=request.page_size,
            cursor=request.page_token,
            highlight=request.highlight,
        )
        if not _wants_documents(request.collections):
            return pb.SearchResponse()
        res = await asyncio.to_thread(self._index().search, query, caller)
        return pb.SearchResponse(
            hits=[hit_to_proto(h) for h in res.hits],
            next_page_token=res.next_cursor,
            total_size=res.total,
            total_size_is_lower_bound=res.total_is_lower_bound,
            facets=facets_to_proto(res.facets),
            took_ms=round(res.took_ms),
        )

    async def Suggest(self, request: pb.SuggestRequest, context: Any) -> pb.SuggestResponse:
        caller = caller_of(current_principal(), self._agencies)
        if len(request.prefix) > MAX_PREFIX:
            raise InvalidArgument("prefix", f"longer than {MAX_PREFIX} characters")
        if request.limit < 0:
            raise InvalidArgument("limit", "must not be negative")
        if not _wants_documents(request.collections):
            return pb.SuggestResponse()
        found = await asyncio.to_thread(
            self._index().suggest, request.prefix, caller, request.limit
        )
        return pb.SuggestResponse(
            suggestions=[
                pb.Suggestion(
                    text=s.text,
                    # The engine marks with <mark>; the proto promises <em>.
                    highlighted=s.highlighted.replace("<mark>", "<em>").replace("</mark>", "</em>"),
                    collection=pb.COLLECTION_DOCUMENTS,
                    id=s.id,
                )
                for s in found
            ]
        )

    async def GetFacets(self, request: pb.GetFacetsRequest, context: Any) -> pb.GetFacetsResponse:
        caller = caller_of(current_principal(), self._agencies)
        query = SearchQuery(
            text=request.query, filters=_filters(request.filters), facets=_facets(request.facets)
        )
        if not _wants_documents(request.collections):
            return pb.GetFacetsResponse()
        facets, total = await asyncio.to_thread(self._index().facets, query, caller)
        return pb.GetFacetsResponse(facets=facets_to_proto(facets), total_size=total)

"""gRPC SearchService: proto request → engine query (rights from the token) → proto response.

Field names of the proto (document_type_code, promulgation_date…) are mapped to the
engine's; anything the engine refuses comes back as INVALID_ARGUMENT naming the field
(SearchInputError). The engine is synchronous: calls run in worker threads.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, time, timedelta, timezone
from itertools import islice
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from lgsp.agencies import AgencyDirectory
from lgsp.api.search.v1 import search_pb2 as pb
from lgsp.auth import current_principal
from lgsp.grpc.errors import InvalidArgument
from services.search.index import (
    Caller,
    Facet,
    FacetRequest,
    Filter,
    Hit,
    SearchIndex,
    SearchQuery,
    Sort,
)
from services.search.index.query import parse
from services.search.service_layer.copies import Copies
from services.search.service_layer.labels import Labels
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
# The contract's dossier fields. Dossiers are not indexed yet (documents only), and no document
# has them: a filter requiring one matches nothing, its negation everything, a facet is empty.
DOSSIER_KEYWORDS = ("procedure_code", "field_code")
DOSSIER_DATES = ("submit_date",)
# Enum-like values also accepted as the proto spells them: "DIRECTION_INCOMING", "PRIORITY_FLASH".
ENUM_PREFIXES = {"direction": "DIRECTION_", "priority": "PRIORITY_"}


def _clean_value(value: str, field: str) -> str:
    """Filter values are codes and names: control and format characters in them are an
    error rather than something to guess around."""
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        raise InvalidArgument(field, "control or invisible characters are not allowed")
    return value


def _enum_value(field: str, value: str) -> str:
    prefix = ENUM_PREFIXES.get(field)
    if prefix is None:
        return value
    return value.upper().removeprefix(prefix).lower()


def _filters(items: Iterable[pb.Filter]) -> tuple[tuple[Filter, ...], bool]:
    """The engine's filters, and whether a dossier-only filter rules every document out."""
    out = []
    none_match = False
    for f in items:
        name = FIELD_ALIASES.get(f.field, f.field)
        _clean_value(f.field, "filters")
        which = f.WhichOneof("condition")
        if name in (*DOSSIER_KEYWORDS, *DOSSIER_DATES):
            _check_dossier_filter(f, name, which)
            none_match = none_match or not f.negate
            continue
        if which == "terms":
            values = tuple(_enum_value(name, _clean_value(v, "filters")) for v in f.terms.values)
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
    return tuple(out), none_match


def _check_dossier_filter(f: pb.Filter, name: str, which: str | None) -> None:
    """The same checks as the engine's for a field it does not hold."""
    if name in DOSSIER_KEYWORDS:
        if which != "terms" or not f.terms.values:
            raise InvalidArgument("filters", f"{name}: give at least one value")
        for v in f.terms.values:
            _clean_value(v, "filters")
        return
    if which != "range" or not (f.range.gte or f.range.lte):
        raise InvalidArgument("filters", f"{name}: give gte or lte")
    for bound in (f.range.gte, f.range.lte):
        try:
            if bound:
                datetime.fromisoformat(bound)
        except ValueError:
            raise InvalidArgument(
                "filters", f"{name}: {bound[:40]!r} is not a date (YYYY-MM-DD)"
            ) from None


def _facets(items: Iterable[pb.FacetRequest]) -> tuple[tuple[FacetRequest, ...], list[str]]:
    """The engine's facets, and the dossier-only ones asked (always empty for documents)."""
    engine, dossier = [], []
    for f in items:
        name = FIELD_ALIASES.get(f.field, f.field)
        if name in DOSSIER_KEYWORDS:
            if f.size < 0:
                raise InvalidArgument("facets", "size must not be negative")
            dossier.append(f.field)
        else:
            engine.append(FacetRequest(name, f.size))
    return tuple(engine), dossier


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


def hit_to_proto(h: Hit, copies: Copies | None = None) -> pb.SearchHit:
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
        ("direction", h.direction),
        ("priority", h.priority),
        ("arrival_date", h.arrival_date),
    ):
        if value:
            m.fields[name] = value
    if copies is not None:
        m.copies.extend(
            pb.DocumentCopy(
                id=c.id,
                agency_code=c.agency_code,
                direction=c.direction,
                status=c.status,
                arrival_date=c.arrival_date,
            )
            for c in copies.others
        )
        m.sent_to_agency_codes.extend(copies.sent_to)
    for hl in h.highlights:
        m.highlights.append(
            pb.Highlight(field=HIGHLIGHT_NAMES.get(hl.field, hl.field), fragments=[hl.html("em")])
        )
    return m


def facets_to_proto(
    facets: Iterable[Facet], labels: Labels | None = None, asked: Sequence[str] = ()
) -> list[pb.Facet]:
    """The facets in the order `asked` (the request's field names; the engine's facets fill
    the names not listed as dossier-only, which come back empty), labels filled."""
    labels = labels or Labels()
    engine = [
        pb.Facet(
            field=PROTO_NAMES.get(f.field, f.field),
            values=[
                pb.FacetValue(value=v.value, count=v.count, label=labels.label(f.field, v.value))
                for v in f.values
            ],
        )
        for f in facets
    ]
    if not asked:
        return engine
    rest = iter(engine)
    out = []
    for name in asked:
        if FIELD_ALIASES.get(name, name) in DOSSIER_KEYWORDS:
            out.append(pb.Facet(field=name))
        else:
            out.extend(islice(rest, 1))
    return out


class SearchServicer:
    def __init__(
        self,
        index: Callable[[], SearchIndex],
        agencies: AgencyTree | None = None,
        copies: Callable[[list[str], Caller], dict[str, Copies]] | None = None,
    ) -> None:
        self._index = index  # the serving index at call time (a rebuild swaps it)
        self._copies = copies  # the other copies of each hit's document (copies.py)
        self._agencies = agencies  # a role held in an agency reads the agencies below it
        directory = agencies if isinstance(agencies, AgencyDirectory) else None
        self._labels = Labels(directory)  # agency names: the directory at call time

    async def Search(self, request: pb.SearchRequest, context: Any) -> pb.SearchResponse:
        caller = caller_of(current_principal(), self._agencies)
        if request.page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        filters, none_match = _filters(request.filters)
        facets, _ = _facets(request.facets)
        asked = [f.field for f in request.facets]
        query = SearchQuery(
            text=request.query,
            filters=filters,
            facets=facets,
            sort=_sort(request.sort),
            page_size=request.page_size,
            cursor=request.page_token,
            highlight=request.highlight,
        )
        parse(request.query)  # a bad query is refused whatever the collections
        if not _wants_documents(request.collections) or none_match:
            return pb.SearchResponse(facets=[pb.Facet(field=name) for name in asked])
        res = await asyncio.to_thread(self._index().search, query, caller)
        copies: dict[str, Copies] = {}
        if self._copies is not None and res.hits:
            copies = await asyncio.to_thread(self._copies, [h.id for h in res.hits], caller)
        return pb.SearchResponse(
            hits=[hit_to_proto(h, copies.get(h.id)) for h in res.hits],
            next_page_token=res.next_cursor,
            total_size=res.total,
            total_size_is_lower_bound=res.total_is_lower_bound,
            facets=facets_to_proto(res.facets, self._labels, asked),
            took_ms=round(res.took_ms),
            suggested_query=res.suggested_query,
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
        filters, none_match = _filters(request.filters)
        facets, _ = _facets(request.facets)
        asked = [f.field for f in request.facets]
        query = SearchQuery(text=request.query, filters=filters, facets=facets)
        parse(request.query)
        if not _wants_documents(request.collections) or none_match:
            return pb.GetFacetsResponse(facets=[pb.Facet(field=name) for name in asked])
        if asked and not facets:  # only dossier facets: the engine would count its defaults
            _, total = await asyncio.to_thread(self._index().facets, query, caller)
            return pb.GetFacetsResponse(facets=[pb.Facet(field=n) for n in asked], total_size=total)
        found, total = await asyncio.to_thread(self._index().facets, query, caller)
        return pb.GetFacetsResponse(
            facets=facets_to_proto(found, self._labels, asked), total_size=total
        )

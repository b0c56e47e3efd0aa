"""The search engine interface: documents in, rights-filtered ranked pages out.

One `SearchIndex` ABC, two engines (tantivy embedded, Elasticsearch). `EngineIndex` holds
everything the engines share — validation, the query language, the rights rule, cursors,
highlighting — so an engine only turns a `Plan` into its native query and runs it.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import spelling
from . import text as tx
from .cursor import CursorCodec
from .errors import SearchInputError
from .query import Node, parse, positive_terms

# --- limits ----------------------------------------------------------------------------------

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
# Relevance pages are found in a window of the top hits; deeper than this, sort by date.
MAX_RELEVANCE_DEPTH = 10_000
RELEVANCE_SLACK = 32  # extra hits either side of the window, to re-find the cursor position
MAX_FILTER_VALUES = 100
MAX_VALUE_CHARS = 200
MAX_FACET_SIZE = 100
# Totals are counted exactly up to this many matches; past it an engine that can stop
# counting (Elasticsearch: track_total_hits) says "at least this many" (total_is_lower_bound).
EXACT_TOTAL_UP_TO = 10_000
BODY_FRAGMENT_CHARS = 240
SUMMARY_FRAGMENT_CHARS = 320

NORMAL = "normal"  # the confidentiality of an unrestricted document
# The rights rule as one indexed keyword field: a document holds "<level>:<agency>" for each
# agency whose officials may read it (`IndexedDocument.reader_agency_codes`; without it: its
# issuing agency, sender and each recipient), and "<level>:*public*" if public; level is "n"
# (normal) or "c" (any confidentiality above normal). A search is one term set over it.
READERS = "readers"
PUBLIC_READER = "*public*"
# The copies of one document (the sender's outgoing one, each recipient's incoming one) are
# one document to an official: a copy holds, in READERS, COPY_PREFIX + each readers term of
# the copies before it (`IndexedDocument.hidden_by`), and every search excludes
# COPY_PREFIX + the caller's rights terms. So a caller finds the first copy they may read and
# no other: the collapse is a filter, exact for each caller (a copy the caller may not read
# hides nothing), and totals, facets and pages count documents, not copies.
COPY_PREFIX = "~"


# --- documents ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexedDocument:
    """One document as the index holds it; `version` makes re-delivered events harmless."""

    id: str
    number_notation: str = ""  # "28/2018/QĐ-TTg"
    subject: str = ""
    summary: str = ""
    body_text: str = ""  # extracted text of the attachments
    doc_type: str = ""  # document type code: "QĐ", "CV"…
    agency_code: str = ""  # the issuing agency
    sender_agency_code: str = ""  # for incoming documents, who sent it
    recipient_agency_codes: tuple[str, ...] = ()
    signer_name: str = ""
    status: str = ""
    confidentiality: str = NORMAL  # normal | confidential | secret | top_secret
    public: bool = False
    issued_date: date | None = None
    updated_time: datetime | None = None
    version: int = 0
    # The agencies whose officials may read it (the search projection sets them from the
    # documents service's rule); None: its agency, sender and recipients.
    reader_agency_codes: tuple[str, ...] | None = None
    direction: str = ""  # outgoing | incoming (DIRECTIONS)
    priority: str = ""  # normal | urgent | very_urgent | flash (PRIORITIES)
    arrival_date: date | None = None  # incoming: the day it arrived (Vietnam time)
    # The readers terms (see readers()) of the copies of this document that come before it
    # (copy_order): whoever matches one of them finds that copy instead, so each official
    # finds one hit per document (see COPY_PREFIX).
    hidden_by: tuple[str, ...] = ()


# Keyword fields usable in filters and facets; "year" is derived from issued_date.
KEYWORD_FIELDS = (
    "agency_code",
    "doc_type",
    "signer_name",
    "status",
    "confidentiality",
    "sender_agency_code",
    "recipient_agency_codes",
    "year",
)
# Keyword fields added later (an engine adds them after the ones above: an index built before
# them lacks them, see TantivyIndex), with the values they may hold (a filter on another
# value is a mistake worth telling, not an empty page).
DIRECTIONS = ("outgoing", "incoming")
PRIORITIES = ("normal", "urgent", "very_urgent", "flash")
CLOSED_FIELDS = {"direction": DIRECTIONS, "priority": PRIORITIES}
LATER_KEYWORD_FIELDS = tuple(CLOSED_FIELDS)
FACET_FIELDS = (*KEYWORD_FIELDS, *LATER_KEYWORD_FIELDS)
# Range fields and the engine field holding them as integers (days / seconds since epoch).
RANGE_FIELDS = {
    "issued_date": "issued_day",
    "updated_time": "updated_ts",
    "arrival_date": "arrival_day",
}
# The engine fields added with LATER_KEYWORD_FIELDS.
LATER_FIELDS = (*LATER_KEYWORD_FIELDS, "arrival_day", "arrival_date")
DAY_FIELDS = ("issued_day", "arrival_day")  # ranges counted in days (the others in seconds)
BOOL_FIELDS = ("public",)
FILTER_FIELDS = (*FACET_FIELDS, *RANGE_FIELDS, *BOOL_FIELDS)
SORT_FIELDS = ("relevance", "issued_date", "updated_time")
# Sort field -> the engine's composite integer key (date in the high bits, id hash below).
SORT_KEYS = {"issued_date": "k_issued", "updated_time": "k_updated"}

_EPOCH = date(1970, 1, 1)
_DAY_BASE = date(1950, 1, 1)
_TS_BASE = datetime(2000, 1, 1, tzinfo=UTC)


def id_hash(doc_id: str) -> int:
    """47-bit hash of an id: the tie-break below the date in the sort keys."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest()) >> 17


def _utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def readers(doc: IndexedDocument) -> list[str]:
    """The readers terms of `doc` (see READERS)."""
    level = "n:" if (doc.confidentiality or NORMAL) == NORMAL else "c:"
    if doc.reader_agency_codes is not None:
        who = set(doc.reader_agency_codes) - {""}
    else:
        who = {doc.agency_code, doc.sender_agency_code, *doc.recipient_agency_codes} - {""}
    if doc.public:
        who.add(PUBLIC_READER)
    return sorted(level + a for a in who)


def copy_key(doc: IndexedDocument) -> str:
    """What the copies of one document share — its sender, number and date, as edXML
    identifies a document — or "" (a draft, a document without number or date: no copies)."""
    number = tx.fold(doc.number_notation.strip())
    if not (doc.sender_agency_code and number and doc.issued_date):
        return ""
    return f"{doc.sender_agency_code}|{number}|{doc.issued_date.isoformat()}"


def copy_order(doc: IndexedDocument) -> tuple[int, str]:
    """The copies of a document in the order they hide each other: the sender's first."""
    return (0 if doc.direction != "incoming" else 1, doc.id)


def hidden_by(copies: Sequence[IndexedDocument]) -> dict[str, tuple[str, ...]]:
    """Each copy's `hidden_by`: the readers terms of the copies before it (copy_order)."""
    out: dict[str, tuple[str, ...]] = {}
    before: dict[str, None] = {}
    for d in sorted(copies, key=copy_order):
        out[d.id] = tuple(sorted(before))
        before.update(dict.fromkeys(readers(d)))
    return out


def hiding_terms(caller: Caller) -> list[str]:
    """The READERS terms of copies a caller finds elsewhere (see COPY_PREFIX)."""
    return [COPY_PREFIX + t for t in rights_terms(caller)]


def rights_terms(caller: Caller) -> list[str]:
    """The readers terms a caller may see: their agencies (if any) and public, at the normal
    level, and at the confidential level too when their role allows it. No agency code
    matches only public documents."""
    who = [PUBLIC_READER, *dict.fromkeys(c for c in (caller.agency_code, *caller.agencies) if c)]
    levels = ("n:", "c:") if caller.may_read_confidential else ("n:",)
    return [level + a for level in levels for a in who]


def engine_fields(doc: IndexedDocument) -> dict[str, Any]:
    """The flat field map both engines index: original text NFC, derived keys computed once."""
    h = id_hash(doc.id)
    day = (doc.issued_date - _EPOCH).days if doc.issued_date else None
    ts = int(_utc(doc.updated_time).timestamp()) if doc.updated_time else None
    base_days = (doc.issued_date - _DAY_BASE).days if doc.issued_date else 0
    base_secs = int((_utc(doc.updated_time) - _TS_BASE).total_seconds()) if doc.updated_time else 0
    out: dict[str, Any] = {
        "id": doc.id,
        "number_notation": tx.nfc(doc.number_notation),
        "number_key": tx.fold(doc.number_notation.strip()),
        "subject": tx.nfc(doc.subject),
        "summary": tx.nfc(doc.summary),
        "body_text": tx.nfc(doc.body_text),
        "doc_type": doc.doc_type,
        "agency_code": doc.agency_code,
        "sender_agency_code": doc.sender_agency_code,
        "recipient_agency_codes": [c for c in doc.recipient_agency_codes if c],
        "signer_name": tx.nfc(doc.signer_name),
        "status": doc.status,
        "confidentiality": doc.confidentiality or NORMAL,
        "year": str(doc.issued_date.year) if doc.issued_date else "",
        "public": bool(doc.public),
        READERS: readers(doc) + [COPY_PREFIX + t for t in doc.hidden_by],
        "issued_date": doc.issued_date.isoformat() if doc.issued_date else "",
        "updated_time": _utc(doc.updated_time).isoformat() if doc.updated_time else "",
        "direction": doc.direction,
        "priority": doc.priority,
        "arrival_date": doc.arrival_date.isoformat() if doc.arrival_date else "",
        "arrival_day": (doc.arrival_date - _EPOCH).days if doc.arrival_date else None,
        "issued_day": day,
        "updated_ts": ts,
        "version": int(doc.version),
        "id_hash": h,
        # Dates before the base sort first; 16 bits of days from 1950 last until 2129.
        "k_issued": (max(0, min(base_days, 0xFFFF)) << 47) | h,
        "k_updated": (max(0, min(base_secs, 0xFFFFFFFF)) << 31) | (h >> 16),
    }
    return out


# --- queries -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is searching: their agency, and whether their role lets them read confidential;
    `agencies`: more agencies whose documents they may read (a role held above them)."""

    agency_code: str
    may_read_confidential: bool = False
    agencies: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition: `field` equals one of `values`, or lies in [gte, lte] (dates as text)."""

    field: str
    values: tuple[str, ...] = ()
    gte: str = ""
    lte: str = ""
    negate: bool = False


@dataclass(frozen=True, slots=True)
class FacetRequest:
    field: str
    size: int = 10


@dataclass(frozen=True, slots=True)
class Sort:
    field: str = "relevance"  # relevance | issued_date | updated_time
    descending: bool = True


@dataclass(frozen=True, slots=True)
class SearchQuery:
    text: str = ""
    filters: tuple[Filter, ...] = ()
    facets: tuple[FacetRequest, ...] = ()
    sort: Sort = field(default_factory=Sort)
    page_size: int = DEFAULT_PAGE_SIZE  # 0 means the default; above MAX_PAGE_SIZE is capped
    cursor: str = ""
    highlight: bool = True


@dataclass(frozen=True, slots=True)
class FacetValue:
    value: str
    count: int


@dataclass(frozen=True, slots=True)
class Facet:
    field: str
    values: tuple[FacetValue, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    id: str
    score: float | None  # None when sorted by a date
    subject: str
    number_notation: str
    doc_type: str
    agency_code: str
    status: str
    signer_name: str
    issued_date: str
    highlights: tuple[tx.Highlight, ...] = ()
    direction: str = ""
    priority: str = ""
    arrival_date: str = ""


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[Hit, ...]
    total: int  # exact, or "at least" when total_is_lower_bound (past EXACT_TOTAL_UP_TO)
    total_is_lower_bound: bool
    facets: tuple[Facet, ...]
    next_cursor: str  # "" on the last page
    took_ms: float
    suggested_query: str = ""  # did you mean: the query with mistyped words corrected


@dataclass(frozen=True, slots=True)
class Suggestion:
    id: str
    text: str  # the subject (or number and notation), with diacritics
    highlighted: str  # HTML-escaped, the typed words in <mark>…</mark>


# --- what an engine executes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValidFilter:
    """A checked filter: keyword values, or an integer range on an engine field."""

    field: str  # engine field name
    values: tuple[str, ...] = ()
    lo: int | None = None  # inclusive
    hi: int | None = None  # inclusive
    boolean: bool | None = None
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    node: Node | None  # None: every document
    filters: tuple[ValidFilter, ...]
    caller: Caller
    sort_key: str | None  # None: relevance (score desc, id_hash asc); else an engine key field
    descending: bool
    key_bound: int | None  # date sorts: inclusive bound on sort_key from the cursor
    start: int  # relevance: window offset
    limit: int
    count: bool  # a total is wanted: exact up to EXACT_TOTAL_UP_TO, else maybe a lower bound
    facets: tuple[FacetRequest, ...]
    exact_total: bool = False  # count every match whatever it costs (facets())


@dataclass(slots=True)
class RawHit:
    score: float
    order: int  # id_hash (relevance) or the sort key value
    doc: dict[str, Any]


@dataclass(slots=True)
class RawResult:
    hits: list[RawHit]
    total: int
    facets: tuple[Facet, ...]
    lower_bound: bool = False  # total is "at least"


class SearchIndex(abc.ABC):
    """A full-text index of documents with the rights rule applied inside the engine."""

    @abc.abstractmethod
    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        """Add or replace documents (batched); an older `version` than indexed is skipped.
        Returns how many were written. Visible after commit()."""

    @abc.abstractmethod
    def delete(self, ids: Iterable[str]) -> None:
        """Remove documents by id (unknown ids are ignored). Visible after commit()."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make written changes durable and visible to searches."""

    def refresh(self) -> None:
        """Alias of commit(), in Elasticsearch's words."""
        self.commit()

    @abc.abstractmethod
    def count(self) -> int:
        """Documents in the index (all agencies; for operators, not for callers)."""

    @abc.abstractmethod
    def search(self, query: SearchQuery, caller: Caller) -> SearchResult: ...

    @abc.abstractmethod
    def facets(self, query: SearchQuery, caller: Caller) -> tuple[tuple[Facet, ...], int]:
        """Facet counts and total of `query` (its page fields are ignored)."""

    @abc.abstractmethod
    def suggest(self, prefix: str, caller: Caller, limit: int = 10) -> list[Suggestion]: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DEFAULT_FACETS = (
    FacetRequest("agency_code"),
    FacetRequest("doc_type"),
    FacetRequest("status"),
    FacetRequest("year"),
)


class EngineIndex(SearchIndex):
    """The engine-independent part of search: subclasses implement `_execute` and friends."""

    def __init__(self, cursor_key: bytes) -> None:
        self._cursors = CursorCodec(cursor_key)

    # Engines implement these.
    @abc.abstractmethod
    def _execute(self, plan: Plan) -> RawResult: ...

    @abc.abstractmethod
    def _suggest(
        self, words: list[str], prefix: str, notation: str | None, caller: Caller, limit: int
    ) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def _vocabulary(self, word: str, caller: Caller) -> list[tuple[str, int]]:
        """(indexed word, documents the caller may read holding it) for the words that may be
        within two edits of `word` (folded), `word` itself included if indexed."""

    # --- search ---

    def search(self, query: SearchQuery, caller: Caller) -> SearchResult:
        started = time.perf_counter()
        page_size = _page_size(query.page_size)
        node = parse(query.text)
        filters = _validate_filters(query.filters)
        facets = _validate_facets(query.facets)
        sort = query.sort
        if sort.field not in SORT_FIELDS:
            raise SearchInputError("sort", f"unknown sort field {sort.field!r}; use {SORT_FIELDS}")
        if node is None and sort.field == "relevance":
            sort = Sort("issued_date")  # nothing to rank by: newest first, and no depth limit
        fingerprint = _fingerprint(query, caller)
        state = self._cursors.decode(query.cursor, fingerprint) if query.cursor else None
        if sort.field == "relevance":
            page, total, facet_out, next_state, lower_bound = self._relevance_page(
                node, filters, caller, page_size, facets, state
            )
        else:
            page, total, facet_out, next_state, lower_bound = self._sorted_page(
                node, filters, caller, sort, page_size, facets, state
            )
        terms, phrases = positive_terms(node)
        hits = tuple(
            _hit(r, sort.field == "relevance", query.highlight, terms, phrases) for r in page
        )
        fixed = ""
        if total == 0 and node is not None and state is None:
            fixed = spelling.suggest(query.text, node, lambda w: self._vocabulary(w, caller))
        return SearchResult(
            hits=hits,
            total=total,
            total_is_lower_bound=lower_bound,
            facets=facet_out,
            next_cursor=self._cursors.encode(next_state, fingerprint) if next_state else "",
            took_ms=(time.perf_counter() - started) * 1000,
            suggested_query=fixed,
        )

    def _relevance_page(
        self,
        node: Node | None,
        filters: tuple[ValidFilter, ...],
        caller: Caller,
        page_size: int,
        facets: tuple[FacetRequest, ...],
        state: dict[str, Any] | None,
    ) -> tuple[list[RawHit], int, tuple[Facet, ...], dict[str, Any] | None, bool]:
        if state is not None and state.get("m") != "rel":
            raise SearchInputError("cursor", "the cursor belongs to another sort order")
        depth = int(state["o"]) if state else 0
        if depth + page_size > MAX_RELEVANCE_DEPTH:
            raise SearchInputError(
                "cursor",
                f"relevance results stop at {MAX_RELEVANCE_DEPTH}; sort by date to go deeper",
            )
        start = max(0, depth - RELEVANCE_SLACK) if state else 0
        limit = depth - start + page_size + (RELEVANCE_SLACK + 1 if state else 1)
        raw = self._execute(
            Plan(node, filters, caller, None, True, None, start, limit, True, facets)
        )
        # The engine's order is deterministic for one index state (tantivy breaks score ties
        # by shard, then document address; Elasticsearch by id_hash), so continue right after
        # the last hit if it is still in the window, else at the same depth (the index changed).
        window = raw.hits
        i = 0
        if state:
            i = next(
                (j + 1 for j, h in enumerate(window) if h.order == int(state["t"])),
                min(depth - start, len(window)),
            )
        page = window[i : i + page_size]
        new_depth = start + i + len(page)
        more = bool(page) and (len(window) > i + page_size or new_depth < raw.total)
        nxt = (
            {"m": "rel", "s": page[-1].score, "t": page[-1].order, "o": new_depth} if more else None
        )
        return page, raw.total, raw.facets, nxt, raw.lower_bound

    def _sorted_page(
        self,
        node: Node | None,
        filters: tuple[ValidFilter, ...],
        caller: Caller,
        sort: Sort,
        page_size: int,
        facets: tuple[FacetRequest, ...],
        state: dict[str, Any] | None,
    ) -> tuple[list[RawHit], int, tuple[Facet, ...], dict[str, Any] | None, bool]:
        key = SORT_KEYS[sort.field]
        mode = f"{key}:{'d' if sort.descending else 'a'}"
        if state is not None and state.get("m") != mode:
            raise SearchInputError("cursor", "the cursor belongs to another sort order")
        bound = int(state["k"]) if state else None
        seen = [str(s) for s in state.get("x", [])] if state else []
        # search_after by a range on the composite key: no offset scan however deep.
        plan = Plan(
            node, filters, caller, key, sort.descending, bound, 0,
            page_size + len(seen) + 1, state is None, facets,
        )  # fmt: skip
        raw = self._execute(plan)
        total, facet_out, lower_bound = raw.total, raw.facets, raw.lower_bound
        if state is not None:  # totals and facets ignore the cursor
            counted = self._execute(
                Plan(node, filters, caller, key, sort.descending, None, 0, 0, True, facets)
            )
            total, facet_out, lower_bound = counted.total, counted.facets, counted.lower_bound
        seen_set = set(seen)
        rest = [h for h in raw.hits if not (h.order == bound and h.doc["id"] in seen_set)]
        page = rest[:page_size]
        nxt = None
        if len(rest) > page_size and page:
            last = page[-1].order
            at_last = [h.doc["id"] for h in page if h.order == last]
            if last == bound:
                at_last = seen + at_last
            nxt = {"m": mode, "k": last, "x": at_last[-200:]}
        return page, total, facet_out, nxt, lower_bound

    def facets(self, query: SearchQuery, caller: Caller) -> tuple[tuple[Facet, ...], int]:
        node = parse(query.text)
        filters = _validate_filters(query.filters)
        facets = _validate_facets(query.facets) or DEFAULT_FACETS
        raw = self._execute(
            Plan(node, filters, caller, None, True, None, 0, 0, True, facets, exact_total=True)
        )
        return raw.facets, raw.total

    # --- suggest ---

    def suggest(self, prefix: str, caller: Caller, limit: int = 10) -> list[Suggestion]:
        if len(prefix) > 200:
            raise SearchInputError("prefix", "longer than 200 characters")
        limit = 10 if limit <= 0 else min(limit, 50)
        text = tx.clean(prefix).strip()
        notation = tx.fold(text) if _NUMBER_PREFIX.match(text) else None
        words = tx.tokens(text)
        if not words and notation is None:
            return []
        ends_word = bool(text) and not text[-1].isalnum()
        last = "" if ends_word else (words.pop() if words else "")
        rows = self._suggest(words[:10], last, notation, caller, limit)
        out: list[Suggestion] = []
        for row in rows:
            subject = row.get("subject", "")
            typed = frozenset(words + ([last] if last else []))
            mark = _prefix_highlight(subject, typed, last) if not notation else None
            shown = subject if not notation else f"{row.get('number_notation', '')} {subject}"
            out.append(
                Suggestion(
                    id=row["id"],
                    text=shown,
                    highlighted=mark.html() if mark else tx.Highlight("", shown, ()).html(),
                )
            )
        return out


# A number being typed: "28/", "28/2018/QĐ-T".
_NUMBER_PREFIX = re.compile(r"^\d+/\S*$")


def _prefix_highlight(subject: str, words: frozenset[str], last: str) -> tx.Highlight | None:
    text = tx.nfc(subject)
    spans = [
        (s, e if tok in words else s + len(last))
        for s, e, tok in tx.token_spans(text)
        if tok in words or (last and tok.startswith(last) and len(tok) == e - s)
    ]
    return tx.Highlight("subject", text, tuple(spans)) if spans else None


def _hit(
    raw: RawHit,
    relevance: bool,
    want_highlight: bool,
    terms: frozenset[str],
    phrases: tuple[tuple[str, ...], ...],
) -> Hit:
    d = raw.doc
    highlights: list[tx.Highlight] = []
    if want_highlight and (terms or phrases):
        for name, limit in (
            ("subject", None),
            ("number_notation", None),
            ("summary", SUMMARY_FRAGMENT_CHARS),
            ("body_text", BODY_FRAGMENT_CHARS),
        ):
            h = tx.highlight(name, d.get(name, ""), terms, phrases, limit)
            if h is not None:
                highlights.append(h)
    return Hit(
        id=d["id"],
        score=raw.score if relevance else None,
        subject=d.get("subject", ""),
        number_notation=d.get("number_notation", ""),
        doc_type=d.get("doc_type", ""),
        agency_code=d.get("agency_code", ""),
        status=d.get("status", ""),
        signer_name=d.get("signer_name", ""),
        issued_date=d.get("issued_date", ""),
        highlights=tuple(highlights),
        direction=d.get("direction", ""),
        priority=d.get("priority", ""),
        arrival_date=d.get("arrival_date", ""),
    )


# --- validation ------------------------------------------------------------------------------


def _page_size(n: int) -> int:
    if n < 0:
        raise SearchInputError("page_size", "must not be negative")
    return DEFAULT_PAGE_SIZE if n == 0 else min(n, MAX_PAGE_SIZE)


def _validate_facets(facets: Sequence[FacetRequest]) -> tuple[FacetRequest, ...]:
    out = []
    for f in facets[:20]:
        if f.field not in FACET_FIELDS:
            raise SearchInputError(
                "facets", f"cannot count {f.field[:50]!r}; countable: {', '.join(FACET_FIELDS)}"
            )
        if f.size < 0:
            raise SearchInputError("facets", "size must not be negative")
        out.append(FacetRequest(f.field, 10 if f.size == 0 else min(f.size, MAX_FACET_SIZE)))
    return tuple(out)


def _validate_filters(filters: Sequence[Filter]) -> tuple[ValidFilter, ...]:
    out: list[ValidFilter] = []
    if len(filters) > 32:
        raise SearchInputError("filters", "more than 32 filters")
    for f in filters:
        if f.field in FACET_FIELDS:
            if not f.values:
                raise SearchInputError("filters", f"{f.field}: give at least one value")
            if len(f.values) > MAX_FILTER_VALUES:
                raise SearchInputError(
                    "filters", f"{f.field}: more than {MAX_FILTER_VALUES} values"
                )
            if any(len(v) > MAX_VALUE_CHARS for v in f.values):
                raise SearchInputError("filters", f"{f.field}: value too long")
            values = tuple(tx.nfc(v) for v in f.values)
            allowed = CLOSED_FIELDS.get(f.field)
            if allowed is not None and (bad := [v for v in values if v not in allowed]):
                raise SearchInputError(
                    "filters", f"{f.field}: {bad[0][:40]!r} is not one of {', '.join(allowed)}"
                )
            out.append(ValidFilter(f.field, values=values, negate=f.negate))
        elif f.field in RANGE_FIELDS:
            lo = _bound(f.field, f.gte, upper=False) if f.gte else None
            hi = _bound(f.field, f.lte, upper=True) if f.lte else None
            if lo is None and hi is None:
                raise SearchInputError("filters", f"{f.field}: give gte or lte")
            out.append(ValidFilter(RANGE_FIELDS[f.field], lo=lo, hi=hi, negate=f.negate))
        elif f.field in BOOL_FIELDS:
            if len(f.values) != 1 or f.values[0].lower() not in ("true", "false"):
                raise SearchInputError("filters", f"{f.field}: one value, true or false")
            out.append(ValidFilter(f.field, boolean=f.values[0].lower() == "true", negate=f.negate))
        else:
            raise SearchInputError(
                "filters", f"unknown field {f.field[:50]!r}; filterable: {', '.join(FILTER_FIELDS)}"
            )
    return tuple(out)


def _bound(name: str, value: str, upper: bool) -> int:
    """A date bound as the engine's integer: days (issued_date, arrival_date) or seconds
    (updated_time)."""
    days = RANGE_FIELDS[name] in DAY_FIELDS
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            if days:
                return (d - _EPOCH).days
            t = datetime(d.year, d.month, d.day, tzinfo=UTC)
            return int((t + timedelta(days=1)).timestamp()) - 1 if upper else int(t.timestamp())
        t = _utc(datetime.fromisoformat(value))
    except (ValueError, OverflowError):
        raise SearchInputError(
            "filters", f"{name}: {value[:40]!r} is not a date (YYYY-MM-DD)"
        ) from None
    if days:
        return (t.date() - _EPOCH).days
    return int(t.timestamp())


def _fingerprint(query: SearchQuery, caller: Caller) -> str:
    """What a cursor is bound to: the same query, sort and caller, or it is refused."""
    blob = json.dumps(
        [
            query.text,
            [[f.field, list(f.values), f.gte, f.lte, f.negate] for f in query.filters],
            [query.sort.field, query.sort.descending],
            [caller.agency_code, caller.may_read_confidential, *caller.agencies],
        ],
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

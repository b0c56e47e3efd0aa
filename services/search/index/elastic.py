"""The scale-out engine: Elasticsearch (or an OpenSearch-API server) via the official client.

The analyzer is standard tokenizer + lowercase + asciifolding ("Đường" -> "duong"); queries
are bool / dis_max / match / match_phrase / term trees built from our own parser, never
query_string with user text.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from itertools import islice
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch, NotFoundError
from elasticsearch.helpers import streaming_bulk

from .base import (
    EXACT_TOTAL_UP_TO,
    KEYWORD_FIELDS,
    LATER_KEYWORD_FIELDS,
    READERS,
    Caller,
    EngineIndex,
    Facet,
    FacetValue,
    IndexedDocument,
    Plan,
    RawHit,
    RawResult,
    ValidFilter,
    engine_fields,
    hiding_terms,
    rights_terms,
)
from .query import And, Node, Not, Notation, Or, Phrase, Term, adjacent_phrases, subject_runs
from .tantivy_schema import (
    ADJACENCY_BOOST,
    ALL_TEXT,
    ALL_TEXT_REPEATS,
    EXACT_BOOST,
    NOTATION_BOOST,
    STORED,
    SUBJECT_BOOST,
    TEXT_FIELDS,
    TIE_BREAKER,
)

DEFAULT_INDEX = "lgsp-documents"
log = logging.getLogger(__name__)

SETTINGS = {
    "analysis": {
        "analyzer": {
            "vi_fold": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding"],
            },
            "vi_lower": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase"]},
        }
    }
}
_TEXT = {"type": "text", "analyzer": "vi_fold"}
# The words of every text field in one field scored by BM25, weighted by repeating a field's
# value (ALL_TEXT_REPEATS), as tantivy's all_text: the two engines rank alike. Each value is
# a value of its own (a gap of 100 positions: no phrase runs across). `.exact`: the words as
# typed, diacritics kept, for the bonus of a word typed with diacritics (tantivy: all_exact).
_ALL_TEXT = {
    "type": "text",
    "analyzer": "vi_fold",
    "position_increment_gap": 100,
    "fields": {"exact": {"type": "text", "analyzer": "vi_lower", "index_options": "freqs"}},
}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "_source": {"excludes": ["all_text"]},  # the fields it repeats are there already
    "properties": {
        "id": {"type": "keyword"},
        **{name: _TEXT for name, _ in TEXT_FIELDS},
        ALL_TEXT: _ALL_TEXT,
        "number_key": {"type": "keyword"},  # folded by us, so no normalizer is needed
        **{name: {"type": "keyword"} for name in (*KEYWORD_FIELDS, *LATER_KEYWORD_FIELDS)},
        "issued_date": {"type": "keyword", "index": False},
        "arrival_date": {"type": "keyword", "index": False},
        "arrival_day": {"type": "integer"},
        "updated_time": {"type": "keyword", "index": False},
        "public": {"type": "boolean"},
        READERS: {"type": "keyword"},
        "issued_day": {"type": "integer"},
        "updated_ts": {"type": "long"},
        "version": {"type": "long"},
        "id_hash": {"type": "long"},
        "k_issued": {"type": "long"},
        "k_updated": {"type": "long"},
    },
}


def _first(response: dict[str, Any]) -> dict[str, Any]:
    """The one index's part of a per-index response ({name: {...}})."""
    return next(iter(response.values()), {})


class PlainJsonNode(Urllib3HttpNode):
    """Sends plain application/json instead of the 9.x client's
    `application/vnd.elasticsearch+json; compatible-with=9`, which OpenSearch-API servers
    (osmem included) refuse with 406. Elasticsearch itself accepts both."""

    def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        **kwargs: Any,
    ) -> NodeApiResponse:
        if headers:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    headers[name] = value.split(";")[0].replace("vnd.elasticsearch+", "")
        return super().perform_request(method, target, body, headers, **kwargs)


class ElasticIndex(EngineIndex):
    def __init__(
        self,
        url: str,
        *,
        index: str = DEFAULT_INDEX,
        username: str = "",
        password: str = "",
        cursor_key: bytes | None = None,
        client: Elasticsearch | None = None,
    ) -> None:
        # Without a configured key, cursors are valid for this process only.
        super().__init__(cursor_key or secrets.token_bytes(32))
        auth = (username, password) if username else None
        self.client = client or Elasticsearch(
            url, node_class=PlainJsonNode, basic_auth=auth, request_timeout=30
        )
        self.index = index
        # False for an index created before ALL_TEXT: its documents lack it, so it is searched
        # best field wins over the separate fields, until rebuilt.
        self.combined = True
        if not self.client.indices.exists(index=index):
            self.client.indices.create(index=index, settings=SETTINGS, mappings=MAPPINGS)
        else:  # fields added since it was created; documents written before lack them
            mapping = self.client.indices.get_mapping(index=index)
            props = _first(dict(mapping)).get("mappings", {}).get("properties", {})
            self.combined = ALL_TEXT in props
            if not self.combined:
                log.warning(
                    "the search index %s was created before the %s field: it is searched field by"
                    " field, without the adjacency and diacritics bonuses, until it is rebuilt",
                    index,
                    ALL_TEXT,
                )
            self._add_fields()

    def _add_fields(self) -> None:
        """Adds what the mapping gained since the index was created (new keyword fields, the
        `.exact` sub-fields, their analyzer); existing documents get them when re-indexed."""
        settings = self.client.indices.get_settings(index=self.index)
        analyzers = (
            _first(dict(settings)).get("settings", {}).get("index", {})
            .get("analysis", {}).get("analyzer", {})
        )  # fmt: skip
        if "vi_lower" not in analyzers:  # analyzers are added to a closed index only
            self.client.indices.close(index=self.index)
            try:
                self.client.indices.put_settings(index=self.index, settings=SETTINGS)
            finally:
                self.client.indices.open(index=self.index)
        self.client.indices.put_mapping(index=self.index, properties=MAPPINGS["properties"])

    # --- writes ---

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        def actions() -> Iterable[dict[str, Any]]:
            for d in docs:
                fields = engine_fields(d)
                fields[ALL_TEXT] = [
                    fields[f] for f, n in ALL_TEXT_REPEATS if fields[f] for _ in range(n)
                ]
                yield {
                    "_index": self.index,
                    "_id": d.id,
                    # external_gte: the same version again is a no-op rewrite, an older one a 409
                    "_version": max(int(d.version), 0),
                    "_version_type": "external_gte",
                    "_source": {k: v for k, v in fields.items() if v is not None},
                }

        written = 0
        for ok, item in streaming_bulk(
            self.client, actions(), chunk_size=500, raise_on_error=False, max_retries=2
        ):
            if ok:
                written += 1
            elif item.get("index", {}).get("status") != 409:
                raise RuntimeError(f"indexing failed: {item}")
        return written

    def delete(self, ids: Iterable[str]) -> None:
        it = iter(ids)
        while chunk := list(islice(it, 500)):
            ops = [{"delete": {"_index": self.index, "_id": i}} for i in chunk]
            self.client.bulk(operations=ops)

    def commit(self) -> None:
        self.client.indices.refresh(index=self.index)

    def count(self) -> int:
        return int(self.client.count(index=self.index)["count"])

    def close(self) -> None:
        self.client.close()

    def drop(self) -> None:
        """Delete the whole index (tests, rebuilds)."""
        try:
            self.client.indices.delete(index=self.index)
        except NotFoundError:
            pass

    # --- queries ---

    @staticmethod
    def _fields(kind: str, text: str, suffix: str = "", boost: float = 1.0) -> dict[str, Any]:
        """`kind` (match, match_phrase) of `text` over the text fields, best field wins."""
        return {
            "dis_max": {
                "queries": [
                    {kind: {f + suffix: {"query": text, "boost": w * boost}}}
                    for f, w in TEXT_FIELDS
                ],
                "tie_breaker": TIE_BREAKER,
            }
        }

    def _words(
        self, kind: str, text: str, exact: bool = False, boost: float = 1.0
    ) -> dict[str, Any]:
        """`kind` (match, match_phrase) of `text`: over ALL_TEXT, or the older best field."""
        if not self.combined:
            return self._fields(kind, text, boost=boost)
        field = ALL_TEXT + (".exact" if exact else "")
        return {kind: {field: {"query": text, "boost": boost}}}

    def _text(self, node: Node) -> dict[str, Any]:
        if isinstance(node, Term):
            word = self._words("match", node.token)
            if not (node.exact and self.combined):
                return word
            exact = self._words("match", node.exact, exact=True, boost=EXACT_BOOST)
            return {"bool": {"must": [word], "should": [exact]}}
        if isinstance(node, Phrase):
            return self._words("match_phrase", " ".join(node.tokens))
        if isinstance(node, Notation):
            cited = self._text(
                Phrase(node.tokens) if len(node.tokens) > 1 else Term(node.tokens[0])
            )
            exact = {"term": {"number_key": {"value": node.key, "boost": NOTATION_BOOST}}}
            return {"bool": {"should": [exact, cited], "minimum_should_match": 1}}
        if isinstance(node, And):
            must = [self._text(i) for i in node.items if not isinstance(i, Not)]
            must_not = [self._text(i.item) for i in node.items if isinstance(i, Not)]
            should = [
                self._words("match_phrase", " ".join(p), boost=ADJACENCY_BOOST)
                for p in adjacent_phrases(node.items)
            ]
            return {
                "bool": {
                    "must": must or [{"match_all": {}}],
                    "must_not": must_not,
                    "should": should,
                }
            }
        if isinstance(node, Or):
            return {
                "bool": {"should": [self._text(i) for i in node.items], "minimum_should_match": 1}
            }
        assert isinstance(node, Not)
        return {"bool": {"must": [{"match_all": {}}], "must_not": [self._text(node.item)]}}

    @staticmethod
    def _rights(caller: Caller) -> list[dict[str, Any]]:
        # One terms filter on the readers field (see base.READERS), cached by the engine.
        # The copies the caller finds as another copy are left out (base.COPY_PREFIX).
        hidden = {"bool": {"must_not": [{"terms": {READERS: hiding_terms(caller)}}]}}
        return [{"terms": {READERS: rights_terms(caller)}}, hidden]

    @staticmethod
    def _filter(f: ValidFilter) -> dict[str, Any]:
        if f.boolean is not None:
            return {"term": {f.field: f.boolean}}
        if f.values:
            return {"terms": {f.field: list(f.values)}}
        rng: dict[str, int] = {}
        if f.lo is not None:
            rng["gte"] = f.lo
        if f.hi is not None:
            rng["lte"] = f.hi
        return {"range": {f.field: rng}}

    def build_query(self, plan: Plan) -> dict[str, Any]:
        main = self._text(plan.node) if plan.node is not None else {"match_all": {}}
        if plan.sort_key is None and (runs := subject_runs(plan.node)):
            # Words typed together standing together in the subject (query.subject_runs).
            bonus = [
                {"match_phrase": {"subject": {"query": " ".join(r), "boost": SUBJECT_BOOST}}}
                for r in runs
            ]
            main = {"bool": {"must": [main], "should": bonus}}
        flt = self._rights(plan.caller)
        flt += [self._filter(f) for f in plan.filters if not f.negate]
        must_not = [self._filter(f) for f in plan.filters if f.negate]
        if plan.key_bound is not None and plan.sort_key is not None:
            op = "lte" if plan.descending else "gte"
            flt.append({"range": {plan.sort_key: {op: plan.key_bound}}})
        return {"bool": {"must": [main], "filter": flt, "must_not": must_not}}

    def _execute(self, plan: Plan) -> RawResult:
        body: dict[str, Any] = {
            "query": self.build_query(plan),
            "size": plan.limit,
            # Lucene skips non-competitive blocks (block-max WAND) once it stops counting.
            "track_total_hits": True if plan.exact_total else plan.count and EXACT_TOTAL_UP_TO,
            "_source": [*STORED, "id_hash", "k_issued", "k_updated"],
        }
        if plan.sort_key is None:
            body["sort"] = [{"_score": "desc"}, {"id_hash": "asc"}]
            body["from"] = plan.start
            # Global term statistics across shards: scores do not depend on the shard layout.
            body["search_type"] = "dfs_query_then_fetch"
        else:
            body["sort"] = [{plan.sort_key: "desc" if plan.descending else "asc"}]
        if plan.facets:
            body["aggs"] = {
                f.field: {"terms": {"field": f.field, "size": f.size}} for f in plan.facets
            }
        res = self.client.search(index=self.index, **body)
        hits = []
        for h in res["hits"]["hits"]:
            src = h["_source"]
            order = src["id_hash"] if plan.sort_key is None else src[plan.sort_key]
            hits.append(RawHit(float(h.get("_score") or 0.0), int(order), src))
        counted = res["hits"].get("total") or {}
        total = int(counted.get("value", 0)) if plan.count else 0
        lower_bound = plan.count and counted.get("relation") == "gte"
        aggs = res.get("aggregations", {})
        facets = tuple(
            Facet(
                f.field,
                tuple(
                    FacetValue(str(b["key"]), int(b["doc_count"]))
                    for b in aggs.get(f.field, {}).get("buckets", [])
                ),
            )
            for f in plan.facets
        )
        return RawResult(hits, total, facets, lower_bound)

    def _vocabulary(self, word: str, caller: Caller) -> list[tuple[str, int]]:
        """The term suggester's neighbours of `word` (and `word`), each counted in the documents
        the caller may read: the suggester itself looks at the whole index, so a word only
        other agencies' documents hold comes back with 0 and is never suggested."""
        field = ALL_TEXT if self.combined else "subject"
        res = self.client.search(
            index=self.index,
            size=0,
            suggest={
                "fix": {
                    "text": word,
                    "term": {"field": field, "suggest_mode": "always", "max_edits": 2, "size": 5},
                }
            },
        )
        options = [o["text"] for s in res.get("suggest", {}).get("fix", []) for o in s["options"]]
        out = []
        for term in dict.fromkeys([word, *options]):
            query = {"bool": {"must": [{"term": {field: term}}], "filter": self._rights(caller)}}
            out.append((term, int(self.client.count(index=self.index, query=query)["count"])))
        return out

    def _suggest(
        self, words: list[str], prefix: str, notation: str | None, caller: Caller, limit: int
    ) -> list[dict[str, Any]]:
        if notation is not None:
            main: dict[str, Any] = {"prefix": {"number_key": notation}}
        elif prefix:
            main = {"match_phrase_prefix": {"subject": " ".join([*words, prefix])}}
        else:
            main = {"match_phrase": {"subject": " ".join(words)}}
        query = {"bool": {"must": [main], "filter": self._rights(caller)}}
        res = self.client.search(
            index=self.index,
            query=query,
            size=limit,
            source_includes=["id", "subject", "number_notation"],
        )
        return [h["_source"] for h in res["hits"]["hits"]]

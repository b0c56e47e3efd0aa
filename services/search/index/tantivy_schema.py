"""The tantivy engine's schema: its fields, analyzers and the field weights both engines use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import tantivy

from .base import (
    KEYWORD_FIELDS,
    LATER_KEYWORD_FIELDS,
    READERS,
)

# Every word is matched and scored in one combined field (subject, number, summary and body:
# one posting list per word, not four). Fields are weighted BM25F-style by repeating a value:
# a subject word counts three times, a number-and-notation word four, so they outrank the
# body without a second query per word on the subject and number fields (those cost a
# quarter of a filtered query's time at 1M documents).
ALL_TEXT = "all_text"
ALL_TEXT_REPEATS = (("subject", 3), ("number_notation", 4), ("summary", 1), ("body_text", 1))
# Indexed on their own for autocomplete (subject) and kept in the schema layout.
OWN_TEXT_FIELDS = ("subject", "number_notation")
NOTATION_BOOST = 10.0
# Bonuses, relative to a word's own BM25 score: two words typed together that stand together
# (an optional phrase of the two), and a word typed with diacritics found as typed.
ADJACENCY_BOOST = 2.0
EXACT_BOOST = 0.3
# And words typed together (or a quoted phrase) standing together in the subject: the
# document is about them (query.subject_runs). Measured with bench/search_relevance.py.
SUBJECT_BOOST = 2.0
# Stored only (not indexed on their own: the combined field finds their words).
STORED_TEXT = ("summary", "body_text")
# The fields a hit's words are counted in, and their weights, for engines that score several
# fields (Elasticsearch: dis_max over them).
TEXT_FIELDS = (("subject", 3.0), ("number_notation", 4.0), ("summary", 1.5), ("body_text", 1.0))
TIE_BREAKER = 0.3
STORED = (
    "id", "number_notation", "subject", "summary", "body_text", "doc_type", "agency_code",
    "status", "signer_name", "issued_date", "confidentiality", "direction", "priority",
    "arrival_date",
)  # fmt: skip
INT_FIELDS = ("issued_day", "updated_ts", "version", "id_hash", "k_issued", "k_updated")
# (arrival_day, an integer field too, comes with LATER_FIELDS at the end of the schema.)
BATCH = 1000
ANALYZER = "vi_fold"
EXACT_ANALYZER = "vi_lower"
ALL_EXACT = "all_exact"
_EPOCH = date(1970, 1, 1)  # issued_day counts days from it (base.engine_fields)
# The rights rule and the common filters as one posting list, as a compound database index
# does: for each readers term r of a document (see READERS) the terms
#   r SEP "t" SEP doc_type,  r SEP "y" SEP year,  r SEP "ty" SEP doc_type SEP year
# so "rights AND doc_type IN (…) AND issued_date in whole years" is one term set over the
# documents that pass all three, instead of three filters each walking its own (much longer)
# postings. Tantivy-only, internal: the query a caller sees is unchanged, and an index built
# before this field is searched with the plain filters (see TantivyIndex._access).
READER_KEYS = "reader_keys"
SEP = "\x1f"  # never in a key's parts: a part holding it gets no key (and no compound query)


def build_schema(reader_keys: bool = True, later: bool = True) -> tantivy.Schema:
    """The schema; `later=False` is the schema of an index built before LATER_FIELDS and
    ALL_EXACT, `reader_keys=False` (implies `later=False`) of one built before READER_KEYS:
    each time the same fields in the same order, without the last ones."""
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("id", stored=True, tokenizer_name="raw", fast=True)
    for name in OWN_TEXT_FIELDS:
        sb.add_text_field(name, stored=True, tokenizer_name=ANALYZER, index_option="position")
    for name in STORED_TEXT:  # UTF-8 bytes, stored for hits and highlights, not indexed
        sb.add_bytes_field(name, stored=True, indexed=False, fast=False)
    sb.add_text_field(ALL_TEXT, stored=False, tokenizer_name=ANALYZER, index_option="position")
    # Who may read: one term per reading agency, see rights_terms().
    sb.add_text_field(READERS, stored=False, tokenizer_name="raw", index_option="basic")
    sb.add_text_field("number_key", stored=False, tokenizer_name="raw")
    for name in KEYWORD_FIELDS:
        sb.add_text_field(name, stored=name in STORED, tokenizer_name="raw", fast=True)
    sb.add_text_field("issued_date", stored=True, tokenizer_name="raw")
    sb.add_text_field("updated_time", stored=True, tokenizer_name="raw")
    sb.add_boolean_field("public", stored=False, indexed=True, fast=True)
    for name in INT_FIELDS:
        sb.add_integer_field(name, stored=False, indexed=True, fast=True)
    if reader_keys:
        sb.add_text_field(READER_KEYS, stored=False, tokenizer_name="raw", index_option="basic")
    if reader_keys and later:
        for name in LATER_KEYWORD_FIELDS:
            sb.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
        sb.add_text_field("arrival_date", stored=True, tokenizer_name="raw")
        sb.add_integer_field("arrival_day", stored=False, indexed=True, fast=True)
        # The words as typed, diacritics kept (lowercased only): a query typed with
        # diacritics ranks the exact word above its folded look-alikes (số above sở, sơ).
        # Frequencies, no positions: a term boost needs no phrase.
        sb.add_text_field(
            ALL_EXACT, stored=False, tokenizer_name=EXACT_ANALYZER, index_option="freq"
        )
    return sb.build()


def reader_keys(readers: Iterable[str], doc_type: str, year: str) -> list[str]:
    """The READER_KEYS terms of a document with these readers terms, type and year."""
    out: list[str] = []
    for r in readers:
        if SEP in r:
            continue
        if doc_type and SEP not in doc_type:
            out.append(f"{r}{SEP}t{SEP}{doc_type}")
            if year:
                out.append(f"{r}{SEP}ty{SEP}{doc_type}{SEP}{year}")
        if year:
            out.append(f"{r}{SEP}y{SEP}{year}")
    return out


def analyzer() -> tantivy.TextAnalyzer:
    """simple tokenizer + lowercase + ascii_fold: "Đường" is indexed as "duong".

    Folding runs in tantivy's indexing thread (Rust), beside the Python thread that builds
    documents: with one writer thread this pipelines best on 2 cores (measured; folding in
    Python first was slower: str.translate costs ~180 µs per 3.6 KB body).
    """
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .build()
    )


def exact_analyzer() -> tantivy.TextAnalyzer:
    """simple tokenizer + lowercase, no folding: "Số" is indexed as "số" (NFC, as stored)."""
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.lowercase())
        .build()
    )

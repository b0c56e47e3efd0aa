"""Folding, the query language and cursors, without an engine."""

from __future__ import annotations

import pytest

from bench.corpus import documents
from services.search.index import SearchInputError, spelling
from services.search.index import text as tx
from services.search.index.cursor import CursorCodec
from services.search.index.query import (
    And,
    Not,
    Notation,
    Or,
    Phrase,
    Term,
    adjacent_phrases,
    parse,
    subject_runs,
)
from services.search.index.tantivy_schema import analyzer


def test_fold_matches_tantivy_ascii_fold_on_the_corpus() -> None:
    an = analyzer()
    for doc in documents(200):
        for text in (doc.subject, doc.body_text, doc.signer_name, doc.number_notation):
            assert tx.tokens(text) == an.analyze(text)


def test_fold_vietnamese() -> None:
    assert tx.fold("Cải cách HÀNH CHÍNH Đắk Lắk đường") == "cai cach hanh chinh dak lak duong"
    assert tx.tokens("28/2018/QĐ-TTg") == ["28", "2018", "qd", "ttg"]


def test_highlight_marks_originals_and_escapes() -> None:
    h = tx.highlight("body", "<i>Đường</i> & cải cách", frozenset({"duong"}), (("cai", "cach"),))
    assert h is not None
    assert h.html() == "&lt;i&gt;<mark>Đường</mark>&lt;/i&gt; &amp; <mark>cải cách</mark>"
    assert tx.highlight("body", "không có gì", frozenset({"duong"}), ()) is None


def test_parser_shapes() -> None:
    assert parse("") is None and parse("   ") is None
    assert parse("cải cách") == And((Term("cai", "cải"), Term("cach", "cách")))
    assert parse("cai CÁCH") == And((Term("cai"), Term("cach", "cách")))
    assert parse('"cải cách"') == Phrase(("cai", "cach"))
    assert parse("a OR b") == Or((Term("a"), Term("b")))
    assert parse("a -b") == And((Term("a"), Not(Term("b"))))
    assert parse("NOT NOT a") == Term("a")
    assert parse("28/2018/QĐ-TTg") == Notation("28/2018/qd-ttg", ("28", "2018", "qd", "ttg"))
    assert parse("QĐ-UBND") == Phrase(("qd", "ubnd"))  # not a number: the words in order
    assert parse("a AND OR b") == Or((Term("a"), Term("b")))
    assert parse('"a b') == And((Term("a"), Term("b")))
    assert parse("((((((((((((a))))))))))))") is not None


@pytest.mark.parametrize(
    "text", ["*:*", "!!! ***", "-", "😀🎉", "​‮", "AND OR", '""', "( )", "-!!!", "NOT"]
)
def test_nothing_searchable_is_refused(text: str) -> None:
    with pytest.raises(SearchInputError) as e:
        parse(text)
    assert e.value.violations[0][0] == "query"
    assert "nothing searchable" in e.value.violations[0][1]


def test_adjacent_phrases_are_the_words_typed_together() -> None:
    def phrases(text: str) -> list[tuple[str, ...]]:
        node = parse(text)
        return adjacent_phrases(node.items) if isinstance(node, And) else []

    assert phrases("chữ ký số") == [("chu", "ky"), ("ky", "so"), ("chu", "ky", "so")]
    assert phrases("mã độc") == [("ma", "doc")]
    assert phrases('cai "hanh chinh" cach') == []  # a phrase between breaks the pairs
    assert phrases("chu -ky so") == []
    assert phrases("so so so") == [("so", "so", "so")]  # no pair of a word with itself
    assert phrases("a OR b") == []


def test_subject_runs_are_the_words_typed_together_and_the_phrases() -> None:
    def runs(text: str) -> list[tuple[str, ...]]:
        return subject_runs(parse(text))

    assert runs("chữ ký số") == [("chu", "ky", "so")]
    assert runs("chu -ky so") == []  # an exclusion ends a run; excluded words earn nothing
    assert set(runs('"ky so" van ban')) == {("ky", "so"), ("van", "ban")}
    assert runs("ngan sach OR (dat dai -du lich)") == [("ngan", "sach"), ("dat", "dai")]
    assert runs("NOT chu ky") == []
    assert runs("so") == []
    assert runs("28/2018/QĐ-TTg") == []
    # An abbreviation's expansion is a run of its own inside the OR it becomes.
    assert ("cai", "cach", "hanh", "chinh") in runs("CCHC")
    assert len(runs(" ".join(f"w{i} x{i} -y{i}" for i in range(12)))) == 8  # MAX_RUNS


def test_abbreviations_expand_both_ways() -> None:
    assert parse("CCHC") == Or((Term("cchc"), Phrase(("cai", "cach", "hanh", "chinh"))))
    assert parse('"thủ tục hành chính"') == Or((Phrase(("thu", "tuc", "hanh", "chinh")),
                                                Term("tthc")))  # fmt: skip
    words = parse("ủy ban nhân dân tỉnh")
    assert isinstance(words, And) and words.items[1] == Term("tinh", "tỉnh")
    assert words.items[0] == Or(
        (And(tuple(Term(f, e) for f, e in tx.typed_tokens("ủy ban nhân dân"))), Term("ubnd"))
    )
    assert parse("uy ban nhan -dan") == And(
        (Term("uy"), Term("ban"), Term("nhan"), Not(Term("dan")))
    )  # an excluded word breaks the run


def test_parser_limits() -> None:
    with pytest.raises(SearchInputError) as e:
        parse("x" * 1001)
    assert e.value.violations == (("query", "longer than 1000 characters"),)
    parse("x" * 1000)


def test_cursor_roundtrip_and_tamper() -> None:
    codec = CursorCodec(b"k" * 32)
    c = codec.encode({"m": "rel", "o": 20}, "fp")
    assert codec.decode(c, "fp")["o"] == 20
    with pytest.raises(SearchInputError, match="another query"):
        codec.decode(c, "other")
    with pytest.raises(SearchInputError, match="tampered"):
        CursorCodec(b"j" * 32).decode(c, "fp")  # another key (another index)


def test_edit_distance_and_best_correction() -> None:
    assert spelling.distance("tuyn", "tuyen") == 1
    assert spelling.distance("tuyen", "tueyn") == 1  # a transposition is one edit
    assert spelling.distance("cach", "xyz") == 3  # above the limit
    assert (
        spelling.best("tuyn", [("tuyen", 5), ("tuoi", 50), ("toan", 99)]) == "tuyen"
    )  # nearest first
    assert spelling.best("tuyn", [("tuyen", 0)]) is None  # nobody may read it

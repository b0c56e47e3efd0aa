"""Folding, the query language and cursors, without an engine."""

from __future__ import annotations

import pytest

from bench.corpus import documents
from services.search.index import SearchInputError, spelling
from services.search.index import text as tx
from services.search.index.cursor import CursorCodec
from services.search.index.query import And, Not, Notation, Or, Phrase, Term, adjacent_pairs, parse
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


def test_adjacent_pairs_are_the_words_typed_together() -> None:
    def pairs(text: str) -> list[tuple[str, str]]:
        node = parse(text)
        return adjacent_pairs(node.items) if isinstance(node, And) else []

    assert pairs("chữ ký số") == [("chu", "ky"), ("ky", "so")]
    assert pairs('cai "hanh chinh" cach') == []  # a phrase between breaks the pairs
    assert pairs("chu -ky so") == []
    assert pairs("so so so") == []
    assert pairs("a OR b") == []


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

"""The engine layer's helpers: the rights terms, highlight windows."""

from __future__ import annotations

from services.search.index import Caller, IndexedDocument
from services.search.index import text as tx
from services.search.index.base import readers, rights_terms


def test_readers_and_rights_terms_meet_only_where_the_rule_allows() -> None:
    a, b, c = "000.00.02.H27", "000.00.03.H27", "000.01.20.H27"
    doc = IndexedDocument("d", agency_code=a, sender_agency_code=b, recipient_agency_codes=(c,))
    secret = IndexedDocument("s", agency_code=a, confidentiality="secret", public=True)
    public = IndexedDocument("p", agency_code=a, public=True)

    def sees(caller: Caller, d: IndexedDocument) -> bool:
        return bool(set(readers(d)) & set(rights_terms(caller)))

    for code in (a, b, c):
        assert sees(Caller(code), doc)
    assert not sees(Caller("000.00.99.H27"), doc)
    assert sees(Caller("000.00.99.H27"), public) and sees(Caller(""), public)
    assert not sees(Caller(""), doc)
    assert not sees(Caller(a), secret) and sees(Caller(a, may_read_confidential=True), secret)
    assert not sees(Caller(""), IndexedDocument("empty"))  # no agency: nobody's by accident


def test_highlight_window_scans_only_the_start_of_a_huge_text() -> None:
    far = "Mở đầu. " * (tx.SCAN_CHARS // 8 + 10) + "chuyển đổi số"
    assert tx.highlight("body_text", far, frozenset({"chuyen"}), (), 240) is None
    assert tx.highlight("body_text", far, frozenset({"mo"}), (), 240) is not None
    near = "Mở đầu. " * 100 + "Về chuyển đổi số, Chuyển ĐỔI số. " + "Kết thúc. " * 3000
    h = tx.highlight("body_text", near, frozenset(), (("chuyen", "doi", "so"),), 240)
    assert h is not None and len(h.fragment) <= 242
    assert h.html().count("<mark>") == 2 and "<mark>Chuyển ĐỔI số</mark>" in h.html()


def test_highlight_matches_diacritics_case_and_d_on_the_original() -> None:
    h = tx.highlight("s", "ĐƯỜNG đường Duong duongx", frozenset({"duong"}), ())
    assert h is not None and h.spans == ((0, 5), (6, 11), (12, 17))
    slow = tx.highlight("s", "Æble và đường", frozenset({"duong", "aeble"}), ())
    assert slow is not None and slow.html() == "<mark>Æble</mark> và <mark>đường</mark>"


def test_snippet_is_the_densest_passage_cut_at_word_boundaries() -> None:
    body = (
        "Quyết định số 12/QĐ-UBND của Sở Thông tin và Truyền thông. "
        + "Nội dung khác về công tác văn thư lưu trữ của cơ quan. " * 8
        + "Triển khai chữ ký số cho cán bộ; chữ ký số có giá trị pháp lý. "
        + "Phần kết thúc văn bản. " * 20
    )
    h = tx.highlight("body_text", body, frozenset({"ky", "so"}), (), 120)
    assert h is not None
    html = h.html()
    assert "chữ <mark>ký</mark> <mark>số</mark>" in html  # not "Quyết định số … Sở"
    assert "Quyết định" not in html
    words = set(body.replace(";", " ").replace(".", " ").split())
    inner = h.fragment.strip("…").strip()
    first, last = inner.split()[0], inner.split()[-1].rstrip(";.,")
    assert first.rstrip(";.,") in words and last in words  # no word cut in half


def test_window_never_starts_inside_a_word() -> None:
    text = "x" * 50 + " " + "Nghịđịnhdàiquáchừng" * 3 + " cải cách " + "đuôi " * 100
    h = tx.highlight("body_text", text, frozenset({"cai"}), (), 60)
    assert h is not None and h.fragment.startswith("…")
    start = h.fragment[1:]
    assert start.startswith(("cải", "Nghị")) or text[text.index(start) - 1] == " "

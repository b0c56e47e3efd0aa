"""The search contract, run against every engine (tantivy and Elasticsearch/osmem)."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from services.search.index import (
    Caller,
    FacetRequest,
    Filter,
    IndexedDocument,
    SearchIndex,
    SearchInputError,
    SearchQuery,
    Sort,
)

A, B, C, X = "000.00.02.H27", "000.00.03.H27", "000.01.20.H27", "000.00.99.H27"
D = IndexedDocument

DOCS = [
    D("cchc", "15/KH-SNV", "Kế hoạch triển khai cải cách hành chính năm 2026",
      summary="Cải cách hành chính là khâu đột phá",
      body_text="Đường giao thông & <b>nông thôn</b>.",
      doc_type="KH", agency_code=A, recipient_agency_codes=(B,), signer_name="Nguyễn Văn An",
      status="issued", issued_date=date(2026, 1, 10), version=1),
    D("qd-ttg", "28/2018/QĐ-TTg", "Quyết định về văn thư lưu trữ điện tử",
      body_text="Quy định về gửi, nhận văn bản điện tử.", doc_type="QĐ", agency_code=A,
      signer_name="Trần Thị Bình", status="issued", issued_date=date(2018, 8, 8), version=1),
    D("cites", "40/CV-STC", "Về việc thực hiện chế độ báo cáo",
      body_text="Căn cứ Quyết định số 28/2018/QĐ-TTg của Thủ tướng Chính phủ; cải tiến hành chính.",
      doc_type="CV", agency_code=B, recipient_agency_codes=(A,), signer_name="Lê Đức Dũng",
      status="arrived", issued_date=date(2024, 5, 2), version=1),
    D("other-qd", "29/2018/QĐ-TTg", "Quyết định về thi đua khen thưởng", doc_type="QĐ",
      agency_code=B, signer_name="Lê Đức Dũng", status="done", issued_date=date(2018, 9, 1),
      version=1),
    D("body-only", "7/BC-STC", "Báo cáo tình hình ngân sách",
      body_text="Trong đó có nội dung cải cách hành chính về thuế.", doc_type="BC",
      agency_code=B, recipient_agency_codes=(A,), status="done", issued_date=date(2025, 3, 1),
      version=1),
    D("secret-a", "3/KH-SNV", "Kế hoạch mật về cải cách hành chính", doc_type="KH",
      agency_code=A, confidentiality="secret", issued_date=date(2025, 6, 1), version=1),
    D("c-private", "9/TB-UBND", "Thông báo nội bộ cải cách hành chính phường", doc_type="TB",
      agency_code=C, status="issued", issued_date=date(2025, 7, 1), version=1),
    D("c-public", "10/TB-UBND", "Thông báo công khai lịch tiếp công dân Đắk Lắk", doc_type="TB",
      agency_code=C, public=True, status="issued", issued_date=date(2025, 7, 2), version=1,
      updated_time=datetime(2025, 7, 2, 8, tzinfo=UTC)),
]  # fmt: skip


@pytest.fixture
def ix(index: SearchIndex) -> SearchIndex:
    assert index.upsert(DOCS) == len(DOCS)
    index.commit()
    return index


def ids(ix: SearchIndex, text: str, caller: Caller | None = None, **kw: object) -> list[str]:
    res = ix.search(SearchQuery(text, **kw), caller or Caller(A))  # type: ignore[arg-type]
    return [h.id for h in res.hits]


# --- matching -------------------------------------------------------------------------------


def test_folds_diacritics_case_and_d(ix: SearchIndex) -> None:
    assert set(ids(ix, "cai cach hanh chinh")) == {"cchc", "body-only", "secret-a"} - {"secret-a"}
    assert ids(ix, "CẢI CÁCH hành CHÍNH") == ids(ix, "cai cach hanh chinh")
    assert ids(ix, "duong giao thong") == ["cchc"]  # đ -> d
    assert ids(ix, "dak lak") == ["c-public"]
    nfd = unicodedata.normalize("NFD", "cải cách hành chính")
    assert ids(ix, nfd) == ids(ix, "cai cach hanh chinh")


def test_words_are_anded_and_subject_outranks_body(ix: SearchIndex) -> None:
    assert ids(ix, "cai cach hanh chinh") == ["cchc", "body-only"]
    assert ids(ix, "cai cach thue") == ["body-only"]


def test_subject_outranks_words_repeated_in_the_body(index: SearchIndex) -> None:
    about = D("about", "5/KH-UBND", "Kế hoạch phòng chống thiên tai năm 2026",
              body_text="Các sở, ngành triển khai theo chức năng được giao.", agency_code=A,
              version=1)  # fmt: skip
    mentions = D("mentions", "6/BC-UBND", "Báo cáo kinh tế xã hội quý III",
                 body_text="Thiên tai gây thiệt hại. Khắc phục hậu quả thiên tai kịp thời. "
                 "Dự báo thiên tai còn phức tạp trong quý tới.", agency_code=A,
                 version=1)  # fmt: skip
    index.upsert([mentions, about])
    index.commit()
    assert ids(index, "thien tai") == ["about", "mentions"]


def test_quoted_phrase_needs_the_words_in_order(ix: SearchIndex) -> None:
    assert "cites" in ids(ix, "cai hanh chinh")  # "cải tiến hành chính" has the words
    assert "cites" not in ids(ix, '"cai cach hanh chinh"')
    assert ids(ix, '"hanh chinh cai cach"') == []


def test_phrase_stays_inside_one_field(index: SearchIndex) -> None:
    doc = D("split", subject="Kế hoạch cải cách", body_text="Hành chính công. Nội dung về cải "
            "cách hành chính cấp xã.", agency_code=A, version=1)  # fmt: skip
    other = D("apart", subject="Tờ trình", summary="Về cải cách", body_text="Hành chính xã",
              agency_code=A, version=1)  # fmt: skip
    index.upsert([doc, other])
    index.commit()
    assert ids(index, '"cai cach hanh chinh cap xa"') == ["split"]
    assert ids(index, '"cach hanh"') == ["split"]  # not "apart": summary and body are two fields
    assert ids(index, 'cai cach -"hanh chinh cap"') == ["apart"]
    # The subject is weighted by repeating it in the combined text: a phrase must not run
    # from the end of one repeat into the start of the next.
    loop = D("loop", subject="Hành chính cải cách", agency_code=A, version=1)
    index.upsert([loop])
    index.commit()
    assert "loop" not in ids(index, '"cach hanh"')
    assert ids(index, '"hanh chinh cai cach"') == ["loop"]


def test_or_not_and_parentheses(ix: SearchIndex) -> None:
    assert set(ids(ix, "thue OR ngan sach")) == {"body-only"}
    assert set(ids(ix, "khen OR luu tru")) == {"qd-ttg"}  # B's QĐ is not A's to see
    assert set(ids(ix, "cai cach -thue")) == {"cchc"}
    assert set(ids(ix, "cai cach NOT thue")) == {"cchc"}
    assert set(ids(ix, "(ke hoach OR bao cao) cai cach")) == {"cchc", "body-only"}
    assert set(ids(ix, '-"cai cach"', page_size=100)) == {"qd-ttg", "cites", "c-public"}


def test_number_and_notation_exact_match(ix: SearchIndex) -> None:
    # Case and diacritics folded; the document itself first, a document citing it after.
    assert ids(ix, "28/2018/qd-ttg") == ["qd-ttg", "cites"]
    assert ids(ix, "28/2018/QĐ-TTg")[0] == "qd-ttg"
    assert ids(ix, "29/2018/QĐ-TTg", Caller(B)) == ["other-qd"]
    assert ids(ix, "15/kh-snv") == ["cchc"]


def test_filters(ix: SearchIndex) -> None:
    def f(*filters: Filter) -> set[str]:
        return set(ids(ix, "", filters=filters, page_size=100))

    assert f(Filter("doc_type", ("QĐ",))) == {"qd-ttg"}
    assert f(Filter("doc_type", ("QĐ", "KH"))) == {"qd-ttg", "cchc"}
    assert f(Filter("agency_code", (B,))) == {"cites", "body-only"}
    assert f(Filter("signer_name", ("Lê Đức Dũng",))) == {"cites"}
    assert f(Filter("status", ("done",))) == {"body-only"}
    assert f(Filter("issued_date", gte="2024-01-01", lte="2025-03-01")) == {"cites", "body-only"}
    assert f(Filter("issued_date", lte="2018-12-31")) == {"qd-ttg"}
    assert f(Filter("year", ("2025",))) == {"body-only", "c-public"}
    assert f(Filter("doc_type", ("TB",), negate=True)) == {"cchc", "qd-ttg", "cites", "body-only"}
    assert f(Filter("public", ("true",))) == {"c-public"}
    assert f(Filter("recipient_agency_codes", (A,))) == {"cites", "body-only"}
    assert f(Filter("updated_time", gte="2025-07-02", lte="2025-07-02")) == {"c-public"}


def test_facets_count_every_match_not_the_page(ix: SearchIndex) -> None:
    res = ix.search(
        SearchQuery(
            "", page_size=1, facets=(FacetRequest("doc_type"), FacetRequest("agency_code"))
        ),
        Caller(A),
    )
    assert res.total == 5 and len(res.hits) == 1
    types = {v.value: v.count for v in res.facets[0].values}
    assert types == {"KH": 1, "QĐ": 1, "CV": 1, "BC": 1, "TB": 1}
    agencies = {v.value: v.count for v in res.facets[1].values}
    assert agencies == {A: 2, B: 2, C: 1}
    facets, total = ix.facets(SearchQuery("cai cach"), Caller(A))
    assert total == 2
    assert {v.value: v.count for v in facets[1].values} == {"KH": 1, "BC": 1}  # doc_type


def test_highlights_keep_diacritics_and_escape_html(ix: SearchIndex) -> None:
    hit = ix.search(SearchQuery("cai cach duong"), Caller(A)).hits[0]
    by_field = {h.field: h.html() for h in hit.highlights}
    assert by_field["subject"] == (
        "Kế hoạch triển khai <mark>cải</mark> <mark>cách</mark> hành chính năm 2026"
    )
    assert (
        by_field["body_text"] == "<mark>Đường</mark> giao thông &amp; &lt;b&gt;nông thôn&lt;/b&gt;."
    )
    phrase = ix.search(SearchQuery('"cai cach hanh chinh"'), Caller(A)).hits[0]
    assert phrase.highlights[0].html("em") == (
        "Kế hoạch triển khai <em>cải cách hành chính</em> năm 2026"
    )
    plain = ix.search(SearchQuery("cai cach", highlight=False), Caller(A)).hits[0]
    assert plain.highlights == ()


def test_long_body_gives_a_fragment_around_the_match(index: SearchIndex) -> None:
    body = "Mở đầu văn bản. " * 100 + "Nội dung về chuyển đổi số tỉnh. " + "Kết thúc. " * 100
    index.upsert([D("long", subject="Công văn", body_text=body, agency_code=A, version=1)])
    index.commit()
    h = index.search(SearchQuery("chuyen doi so"), Caller(A)).hits[0].highlights[0]
    assert h.field == "body_text" and len(h.fragment) < 300
    assert "<mark>chuyển</mark> <mark>đổi</mark> <mark>số</mark>" in h.html()


# --- sorting and cursors ------------------------------------------------------------------------


def test_sort_by_date_and_page_with_cursor(ix: SearchIndex) -> None:
    for descending in (True, False):
        seen: list[str] = []
        dates: list[str] = []
        cursor = ""
        for _ in range(10):
            res = ix.search(
                SearchQuery("", sort=Sort("issued_date", descending), page_size=2, cursor=cursor),
                Caller(A),
            )
            assert res.total == 5
            seen += [h.id for h in res.hits]
            dates += [h.issued_date for h in res.hits]
            cursor = res.next_cursor
            if not cursor:
                break
        assert sorted(seen) == sorted({"cchc", "qd-ttg", "cites", "body-only", "c-public"})
        assert dates == sorted(dates, reverse=descending)


def test_date_cursor_is_exact_across_equal_dates(index: SearchIndex) -> None:
    same_day = [D(f"d{i:02d}", subject="Công văn", agency_code=A, issued_date=date(2025, 1, 1),
                  version=1) for i in range(23)]  # fmt: skip
    index.upsert(same_day)
    index.commit()
    seen: list[str] = []
    cursor = ""
    while True:
        res = index.search(
            SearchQuery("cong van", sort=Sort("issued_date"), page_size=5, cursor=cursor), Caller(A)
        )
        seen += [h.id for h in res.hits]
        if not (cursor := res.next_cursor):
            break
    assert sorted(seen) == [d.id for d in same_day]


def test_relevance_pages_cover_every_hit_once(index: SearchIndex) -> None:
    docs = [D(f"r{i:02d}", subject="Kế hoạch " + "cải cách " * (1 + i % 5), agency_code=A,
              version=1) for i in range(37)]  # fmt: skip
    index.upsert(docs)
    index.commit()
    seen: list[str] = []
    scores: list[float] = []
    cursor = ""
    while True:
        res = index.search(SearchQuery("cai cach", page_size=10, cursor=cursor), Caller(A))
        assert res.total == 37
        seen += [h.id for h in res.hits]
        scores += [h.score or 0.0 for h in res.hits]
        if not (cursor := res.next_cursor):
            break
    assert sorted(seen) == [d.id for d in docs]
    assert scores == sorted(scores, reverse=True)


# --- rights ---------------------------------------------------------------------------------


def test_other_agency_cannot_see_count_or_facet(ix: SearchIndex) -> None:
    outsider = Caller(X)
    res = ix.search(
        SearchQuery("cai cach hanh chinh", facets=(FacetRequest("agency_code"),)), outsider
    )
    assert res.total == 0 and res.hits == ()
    assert all(not f.values for f in res.facets)
    everything = ix.search(
        SearchQuery("", page_size=100, facets=(FacetRequest("doc_type"),)), outsider
    )
    assert [h.id for h in everything.hits] == ["c-public"] and everything.total == 1
    assert {v.value: v.count for v in everything.facets[0].values} == {"TB": 1}
    _, total = ix.facets(SearchQuery("thong bao"), outsider)
    assert total == 1
    assert ix.suggest("thong bao", outsider) and all(
        s.id == "c-public" for s in ix.suggest("thong bao", outsider)
    )
    assert ids(ix, "28/2018/qd-ttg", outsider) == []


def test_sender_and_recipients_see_their_documents(ix: SearchIndex) -> None:
    assert "cchc" in ids(ix, "cai cach", Caller(B))  # B is a recipient
    assert "c-private" in ids(ix, "cai cach", Caller(C))
    assert "c-private" not in ids(ix, "cai cach", Caller(A))
    incoming = D("in", subject="Công văn đến về phòng chống thiên tai", agency_code=C,
                 sender_agency_code=X, version=1)  # fmt: skip
    ix.upsert([incoming])
    ix.commit()
    assert ids(ix, "thien tai", Caller(X)) == ["in"]


def test_explicit_readers_decide_and_a_caller_reads_several_agencies(index: SearchIndex) -> None:
    # Listed for B, read by A only (issued, not sent yet): B finds, counts, facets and
    # completes nothing; a caller reading A among other agencies finds it.
    unsent = D("unsent", "16/QĐ-UBND", "Quyết định về chuyển đổi số cấp xã", doc_type="QĐ",
               agency_code=A, recipient_agency_codes=(B,), reader_agency_codes=(A,),
               status="issued", issued_date=date(2026, 2, 1), version=1)  # fmt: skip
    # An incoming copy held by C: its sender X does not read it.
    copy = D("copy", "16/QĐ-UBND", "Quyết định về chuyển đổi số cấp xã", doc_type="QĐ",
             agency_code=C, sender_agency_code=X, reader_agency_codes=(C,), status="arrived",
             issued_date=date(2026, 2, 1), version=1)  # fmt: skip
    index.upsert([unsent, copy])
    index.commit()
    for outsider in (Caller(B), Caller(X), Caller(B, may_read_confidential=True)):
        assert ids(index, "chuyen doi so", outsider) == []
        assert ids(index, "16/QĐ-UBND", outsider) == []
        _, total = index.facets(SearchQuery("", facets=(FacetRequest("doc_type"),)), outsider)
        assert total == 0
        assert index.suggest("quyet dinh ve chuyen", outsider) == []
    both = Caller(X, agencies=(A, C))
    assert sorted(ids(index, "chuyen doi so", both)) == ["copy", "unsent"]
    assert sorted(s.id for s in index.suggest("quyet dinh ve chuyen", both)) == ["copy", "unsent"]
    assert ids(index, "chuyen doi so", Caller("", agencies=(C,))) == ["copy"]
    # A cursor is bound to the caller's agencies as well.
    first = index.search(SearchQuery("chuyen doi so", page_size=1), both)
    with pytest.raises(SearchInputError):
        index.search(
            SearchQuery("chuyen doi so", page_size=1, cursor=first.next_cursor),
            Caller(X, agencies=(A,)),
        )


def test_confidential_needs_the_role(ix: SearchIndex) -> None:
    assert "secret-a" not in ids(ix, "cai cach", Caller(A))
    assert "secret-a" in ids(ix, "cai cach", Caller(A, may_read_confidential=True))
    assert "secret-a" not in ids(ix, "cai cach", Caller(B, may_read_confidential=True))
    res = ix.search(SearchQuery("", facets=(FacetRequest("confidentiality"),)), Caller(A))
    assert {v.value for v in res.facets[0].values} == {"normal"}


def test_empty_agency_code_sees_only_public(index: SearchIndex) -> None:
    index.upsert([D("nosender", subject="Văn bản không có cơ quan", version=1), *DOCS])
    index.commit()
    assert ids(index, "", Caller(""), page_size=100) == ["c-public"]


# --- writes ---------------------------------------------------------------------------------


def test_new_version_replaces_old_and_old_is_ignored(ix: SearchIndex) -> None:
    v2 = replace(DOCS[0], subject="Kế hoạch chuyển đổi số năm 2026", summary="", version=2)
    assert ix.upsert([v2]) == 1
    ix.commit()
    assert ids(ix, "chuyen doi so") == ["cchc"]
    assert "cchc" not in ids(ix, "cai cach hanh chinh")
    assert ix.upsert([replace(DOCS[0], version=1)]) == 0  # a late, older event
    ix.commit()
    assert ids(ix, "chuyen doi so") == ["cchc"]
    assert ix.count() == len(DOCS)
    # Versions within one uncommitted batch are ordered too.
    v4, v3 = replace(v2, subject="Bản bốn", version=4), replace(v2, subject="Bản ba", version=3)
    ix.upsert([v4, v3])
    ix.commit()
    assert ids(ix, "ban bon") == ["cchc"] and ids(ix, "ban ba") == []
    assert ix.count() == len(DOCS)


def test_delete(ix: SearchIndex) -> None:
    ix.delete(["cchc", "no-such-id"])
    ix.commit()
    assert "cchc" not in ids(ix, "cai cach")
    assert ix.count() == len(DOCS) - 1


def test_suggest_prefix_folded(ix: SearchIndex) -> None:
    got = ix.suggest("ke hoach trien k", Caller(A))
    assert [s.id for s in got] == ["cchc"]
    assert got[0].highlighted.startswith(
        "<mark>Kế</mark> <mark>hoạch</mark> <mark>triển</mark> <mark>k</mark>"
    )
    assert [s.id for s in ix.suggest("thong bao cong", Caller(X))] == ["c-public"]
    assert [s.id for s in ix.suggest("28/2018/q", Caller(A))] == ["qd-ttg"]
    assert ix.suggest("", Caller(A)) == [] and ix.suggest("!!!", Caller(A)) == []


# --- bad input ------------------------------------------------------------------------------

NASTY = [
    '"cai cach',
    'cai" cach"" "',
    ")))cai(((cach",
    ".*[a-z]+\\ ^$ {1,3} | ~2 cai?",
    "cai\x00cach\x1b[31m\u202e",
    "-(-(-(-cai)))",
    "(" * 300 + "cai" + ")" * 300,
    "title:cai AND _id:* OR *:*",
    '{"query": {"match_all": {}}}',
]


@pytest.mark.parametrize("text", NASTY)
def test_nasty_queries_answer_safely(ix: SearchIndex, text: str) -> None:
    res = ix.search(SearchQuery(text, page_size=100), Caller(X))
    # Whatever they parse to, an outsider never sees more than the public document.
    assert {h.id for h in res.hits} <= {"c-public"}
    assert res.total == len(res.hits)


@pytest.mark.parametrize("text", ["*:*", "-", "NOT", "AND OR NOT ((", "😀 🎉", "…!?", '"" ()'])
def test_nothing_searchable_is_refused_not_everything(ix: SearchIndex, text: str) -> None:
    for call in (ix.search, ix.facets):
        with pytest.raises(SearchInputError, match="nothing searchable") as e:
            call(SearchQuery(text), Caller(A))  # type: ignore[operator]
        assert e.value.violations[0][0] == "query"
    assert ix.search(SearchQuery("  "), Caller(A)).total == 5  # empty still lists everything


def test_operators_degrade_to_words(ix: SearchIndex) -> None:
    assert ids(ix, '"cai cach') == ids(ix, "cai cach")
    assert ids(ix, "cai\x00cach") == ids(ix, "cai cach")
    assert ids(ix, ")))cai(((cach") == ids(ix, "cai cach")


def test_too_long_query_is_refused_clearly(ix: SearchIndex) -> None:
    with pytest.raises(SearchInputError, match="longer than 1000"):
        ix.search(SearchQuery("cai " * 300), Caller(A))
    with pytest.raises(SearchInputError, match="more than 64"):
        ix.search(SearchQuery(" ".join(f"w{i}" for i in range(70))), Caller(A))


def test_page_sizes(ix: SearchIndex) -> None:
    with pytest.raises(SearchInputError, match="page_size"):
        ix.search(SearchQuery("", page_size=-1), Caller(A))
    assert len(ix.search(SearchQuery("", page_size=0), Caller(A)).hits) == 5
    assert len(ix.search(SearchQuery("", page_size=10**9), Caller(A)).hits) == 5


def test_tampered_and_foreign_cursors_are_refused(ix: SearchIndex) -> None:
    q = SearchQuery("", sort=Sort("issued_date"), page_size=2)
    cursor = ix.search(q, Caller(A)).next_cursor
    assert cursor
    body, mac = cursor.split(".")
    flipped = ("A" if body[5] != "A" else "B").join((body[:5], body[6:]))
    for bad in (flipped + "." + mac, cursor + "x", "garbage", "a.b.c", "." * 10, "x" * 10_000):
        with pytest.raises(SearchInputError, match="cursor"):
            ix.search(replace(q, cursor=bad), Caller(A))
    with pytest.raises(SearchInputError, match="another query"):  # another agency's cursor
        ix.search(replace(q, cursor=cursor), Caller(X))
    with pytest.raises(SearchInputError, match="another query"):
        ix.search(replace(q, cursor=cursor, text="cai"), Caller(A))


def test_bad_filters_and_facets_are_refused(ix: SearchIndex) -> None:
    for bad in (
        Filter("body_text", ("x",)),
        Filter("doc_type", ()),
        Filter("issued_date", gte="yesterday"),
        Filter("issued_date"),
        Filter("public", ("maybe",)),
        Filter("doc_type", ("x" * 500,)),
    ):
        with pytest.raises(SearchInputError, match="filters"):
            ix.search(SearchQuery("", filters=(bad,)), Caller(A))
    with pytest.raises(SearchInputError, match="facets"):
        ix.search(SearchQuery("", facets=(FacetRequest("body_text"),)), Caller(A))
    with pytest.raises(SearchInputError, match="sort"):
        ix.search(SearchQuery("", sort=Sort("_id")), Caller(A))

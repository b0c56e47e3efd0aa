"""Ranking for Vietnamese words, on both engines: syllables typed together count when they
stand together, and diacritics typed rank the exact word first without losing recall."""

from __future__ import annotations

import pytest

from services.search.index import Caller, IndexedDocument, SearchIndex, SearchQuery

A = "000.00.02.H27"


def _doc(doc_id: str, subject: str, body: str) -> IndexedDocument:
    return IndexedDocument(doc_id, subject=subject, body_text=body, agency_code=A, version=1)


def _ids(ix: SearchIndex, text: str) -> list[str]:
    return [h.id for h in ix.search(SearchQuery(text, highlight=False), Caller(A)).hits]


DOCS = [
            # The syllables apart, several times each: more term frequency, no word.
            _doc("apart", "Báo cáo công tác tháng", "Chuyển giao hồ sơ số 12. Đổi mới cách "
                 "làm. Số liệu chuyển về sở. Thay đổi lịch. Số hồ sơ chuyển tiếp, đổi tên."),
            _doc("together", "Báo cáo công tác quý", "Đẩy mạnh chuyển đổi số trong cơ quan "
                 "nhà nước, ứng dụng công nghệ thông tin vào công việc hằng ngày."),
            _doc("so-dept", "Thông báo của Sở", "Sở Nội vụ thông báo lịch làm việc của sở "
                 "tuần tới với các phòng."),
            _doc("so-number", "Thông báo về số", "Số liệu thống kê số lượng hồ sơ tuần "
                 "tới với các phòng."),
            _doc("chu-ky-so", "Công văn về ký số", "Triển khai chữ ký số cho cán bộ. Chữ "
                 "ký số có giá trị pháp lý. Ký bằng chữ ký số."),
            _doc("chu-ky", "Công văn về mẫu biểu", "Mẫu chữ ký của lãnh đạo. Số điện thoại. "
                 "Chữ viết, ký nháy, số trang, chữ ký, số hiệu, ký tên."),
]  # fmt: skip


@pytest.fixture
def ix(index: SearchIndex) -> SearchIndex:
    index.upsert(DOCS)
    index.commit()
    return index


def test_syllables_standing_together_rank_first(ix: SearchIndex) -> None:
    assert _ids(ix, "chuyen doi so")[0] == "together"
    assert set(_ids(ix, "chuyen doi so")) == {"apart", "together"}  # recall unchanged
    assert _ids(ix, "CHỮ KÝ SỐ")[0] == "chu-ky-so"
    # Quoted, only the phrase; the words apart still match unquoted.
    assert _ids(ix, '"chuyen doi so"') == ["together"]


def test_words_together_in_the_subject_rank_first(index: SearchIndex) -> None:
    """A document titled with the words typed together is about them: it ranks above one
    that mentions them more often in its body, and above one whose subject holds them
    apart; the bonus ranks and never filters."""
    index.upsert(
        [
            _doc("titled", "Kế hoạch chuyển đổi số năm 2026", "Triển khai theo kế hoạch."),
            _doc("mentions", "Báo cáo công tác tháng", "Chuyển đổi số. Chuyển đổi số cấp xã. "
                 "Chuyển đổi số trong trường học, chuyển đổi số y tế, chuyển đổi số."),
            _doc("apart", "Chuyển giao, đổi mới, số hóa hồ sơ", "Chuyển đổi số tại sở."),
            _doc("elsewhere", "Kế hoạch năm 2026", "Số liệu chuyển đổi trong năm."),
        ]
    )  # fmt: skip
    index.commit()
    for typed in ("chuyển đổi số", "chuyen doi so", '"chuyen doi so"', "ke hoach chuyen doi so"):
        ranked = _ids(index, typed)
        assert ranked[0] == "titled", (typed, ranked)
    assert set(_ids(index, "chuyen doi so")) == {"titled", "mentions", "apart", "elsewhere"}
    # An excluded word ends a run: no bonus for words that were not typed together.
    assert set(_ids(index, "chuyen doi -nam so")) == {"mentions", "apart"}


def test_typed_diacritics_rank_the_exact_word_first(ix: SearchIndex) -> None:
    folded = set(_ids(ix, "so thong bao"))
    assert {"so-dept", "so-number"} <= folded  # folding keeps recall
    assert _ids(ix, "số thông báo")[0] == "so-number"
    assert _ids(ix, "sở thông báo")[0] == "so-dept"
    assert set(_ids(ix, "sở thông báo")) == folded  # the boost ranks, never filters


def test_abbreviations_work_both_ways(index: SearchIndex) -> None:
    index.upsert(
        [
            _doc("short", "Kế hoạch CCHC năm 2026", "Triển khai CCHC, CĐS tại UBND các xã."),
            _doc("long", "Kế hoạch cải cách hành chính năm 2026", "Ủy ban nhân dân tỉnh giao."),
            _doc("neither", "Kế hoạch năm 2026", "Công tác cải tiến, hành động chính."),
        ]
    )
    index.commit()
    assert set(_ids(index, "CCHC")) == {"short", "long"}
    assert set(_ids(index, "cải cách hành chính 2026")) == {"short", "long"}
    assert set(_ids(index, '"cai cach hanh chinh"')) == {"short", "long"}
    assert set(_ids(index, "ubnd")) == {"short", "long"}
    assert set(_ids(index, "ke hoach -cchc")) == {"neither"}
    hit = index.search(SearchQuery("cải cách hành chính"), Caller(A)).hits
    marked = {h.id: "".join(x.html() for x in h.highlights) for h in hit}
    assert "<mark>CCHC</mark>" in marked["short"]


def test_did_you_mean_from_the_words_the_caller_may_read(index: SearchIndex) -> None:
    index.upsert(
        [
            _doc("online", "Dịch vụ công trực tuyến", "Nộp hồ sơ trực tuyến toàn trình."),
            IndexedDocument(
                "hidden",
                subject="Kế hoạch tuyệt mật về khoáng sản",
                version=1,
                agency_code="000.00.99.H27",
            ),
        ]
    )
    index.commit()
    res = index.search(SearchQuery("Trực tuyn"), Caller(A))
    assert res.total == 0 and res.suggested_query == "Trực tuyen"
    assert index.search(SearchQuery("truc tuyen"), Caller(A)).suggested_query == ""  # found
    # The other agency's word is never suggested to A; its owner gets it.
    assert index.search(SearchQuery("khoangg"), Caller(A)).suggested_query == ""
    assert index.search(SearchQuery("khoangg"), Caller("000.00.99.H27")).suggested_query == (
        "khoang"
    )

"""Relevance of both engines on a judged query set: nDCG@10 and top-1, side by side.

The corpus is the generated archive (bench/corpus.py: Vietnamese administrative documents
built from 35 topics' key phrases). The queries (QUERIES, 64) are key phrases an official
types: with diacritics, without, in capitals, a few with a word left out or reordered. Each
names the phrase it means; a document is judged by where that phrase stands in it, words
together and diacritics as written (case aside), which no engine option sees directly:

    3  the phrase is in the subject (the document is about it)
    2  the phrase stands twice or more in the summary and body
    1  once
    0  otherwise: its syllables may all be there, apart, or another word folds like it

So a ranking earns nDCG by putting what is about the phrase first, not by matching its
syllables. Top-1: the first hit has the best grade any document has for that query. Below
the subject: nDCG@10 with the grade-3 documents taken out of the ranking and the ideal, i.e.
how the documents that only mention the phrase are ordered (which the subject bonus does
not decide, and where the engines' scorers differ most).
Every query runs as a caller who reads every agency (the rights filter still applies).

    python -m bench.search_relevance [--docs N] [--es URL]   # without --es: osmem is started
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from bench.corpus import AGENCY_CODES, documents
from services.search.index import Caller, IndexedDocument, SearchIndex, SearchQuery
from services.search.index.elastic import ElasticIndex
from services.search.index.tantivy_index import TantivyIndex

K = 10
GOAL_GAP = 0.02  # issue 18: the two engines within 0.02 nDCG@10 of each other
EVERYONE = Caller("", may_read_confidential=True, agencies=AGENCY_CODES)

# (query as typed, the phrase it means). Phrases are the corpus's key phrases.
QUERIES: tuple[tuple[str, str], ...] = (
    ("cải cách hành chính", "cải cách hành chính"),
    ("cai cach hanh chinh", "cải cách hành chính"),
    ("thủ tục hành chính", "thủ tục hành chính"),
    ("bộ phận một cửa", "bộ phận một cửa"),
    ("chuyển đổi số", "chuyển đổi số"),
    ("chuyen doi so", "chuyển đổi số"),
    ("CHỮ KÝ SỐ", "chữ ký số"),
    ("chu ky so", "chữ ký số"),
    ("nền tảng số", "nền tảng số"),
    ("dữ liệu số", "dữ liệu số"),
    ("hạ tầng số", "hạ tầng số"),
    ("dự toán ngân sách", "dự toán ngân sách"),
    ("quyet toan ngan sach", "quyết toán ngân sách"),
    ("chi thường xuyên", "chi thường xuyên"),
    ("giải ngân vốn đầu tư công", "giải ngân vốn đầu tư công"),
    ("chủ đầu tư", "chủ đầu tư"),
    ("tài liệu lưu trữ", "tài liệu lưu trữ"),
    ("van ban dien tu", "văn bản điện tử"),
    ("giải phóng mặt bằng", "giải phóng mặt bằng"),
    ("giai phong mat bang", "giải phóng mặt bằng"),
    ("bảng giá đất", "bảng giá đất"),
    ("thu hồi đất", "thu hồi đất"),
    ("tinh giản biên chế", "tinh giản biên chế"),
    ("vị trí việc làm", "vị trí việc làm"),
    ("tiêu chí nông thôn mới", "tiêu chí nông thôn mới"),
    ("duong giao thong nong thon", "đường giao thông nông thôn"),
    ("đội ngũ giáo viên", "đội ngũ giáo viên"),
    ("bảo hiểm y tế", "bảo hiểm y tế"),
    ("tram y te xa", "trạm y tế xã"),
    ("an toàn thực phẩm", "an toàn thực phẩm"),
    ("sạt lở đất", "sạt lở đất"),
    ("tìm kiếm cứu nạn", "tìm kiếm cứu nạn"),
    ("ứng phó với bão", "ứng phó với bão"),
    ("dịch vụ công trực tuyến toàn trình", "dịch vụ công trực tuyến toàn trình"),
    ("ho so truc tuyen", "hồ sơ trực tuyến"),
    ("kết luận thanh tra", "kết luận thanh tra"),
    ("tiếp công dân", "tiếp công dân"),
    ("định danh điện tử", "định danh điện tử"),
    ("the can cuoc", "thẻ căn cước"),
    ("ô nhiễm môi trường", "ô nhiễm môi trường"),
    ("xử lý nước thải", "xử lý nước thải"),
    ("người có công với cách mạng", "người có công với cách mạng"),
    ("hộ cận nghèo", "hộ cận nghèo"),
    ("ho ngheo", "hộ nghèo"),
    ("kho dữ liệu dùng chung", "kho dữ liệu dùng chung"),
    ("dịch tả lợn châu Phi", "dịch tả lợn châu Phi"),
    ("công trình thủy lợi", "công trình thủy lợi"),
    ("tai nạn giao thông", "tai nạn giao thông"),
    ("vi pham nong do con", "vi phạm nồng độ cồn"),
    ("dân quân tự vệ", "dân quân tự vệ"),
    ("nhà ở xã hội", "nhà ở xã hội"),
    ("giấy phép xây dựng", "giấy phép xây dựng"),
    ("bảo hiểm thất nghiệp", "bảo hiểm thất nghiệp"),
    ("đăng ký hộ tịch", "đăng ký hộ tịch"),
    ("trợ giúp pháp lý", "trợ giúp pháp lý"),
    ("an toàn thông tin mạng", "an toàn thông tin mạng"),
    ("mã độc", "mã độc"),
    ("khách du lịch", "khách du lịch"),
    ("di tích lịch sử", "di tích lịch sử"),
    ("cụm công nghiệp", "cụm công nghiệp"),
    ("sở hữu trí tuệ", "sở hữu trí tuệ"),
    ("phòng cháy chữa cháy rừng", "phòng cháy, chữa cháy rừng"),
    ("tàu cá", "tàu cá"),
    ("nuôi trồng thủy sản", "nuôi trồng thủy sản"),
)


DEPTH = 100  # hits read for the figure below the subject matches


@dataclass(frozen=True, slots=True)
class Scores:
    ndcg: float  # mean nDCG@10
    top1: float  # share of queries whose first hit has the best grade
    per_query: tuple[float, ...]
    # nDCG@10 of the ranking once the documents with the phrase in the subject (grade 3) are
    # taken out of it and of the ideal: how well the engine orders the documents that only
    # mention the phrase (twice or more above once above its syllables apart), which the
    # subject bonus does not decide. Queries with no such document count as 1.
    body_ndcg: float = 0.0
    firsts: tuple[str, ...] = ()  # the first hit's id per query ("" when none)


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    """The phrase as words: diacritics as written, any case, punctuation between words as
    the phrase has it ("phòng cháy, chữa cháy" needs its comma), whole words only."""
    words = re.split(r"(\W+)", phrase)
    body = "".join(re.escape(w) if i % 2 == 0 else r"\W+" for i, w in enumerate(words))
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def judge(docs: Sequence[IndexedDocument], phrase: str) -> dict[str, int]:
    """Grades (see the module) of the documents holding `phrase`; the rest are 0."""
    pattern = _phrase_pattern(phrase)
    grades = {}
    for d in docs:
        if pattern.search(d.subject):
            grades[d.id] = 3
        elif n := len(pattern.findall(d.summary)) + len(pattern.findall(d.body_text)):
            grades[d.id] = 2 if n >= 2 else 1
    return grades


def ndcg(ranked: Sequence[str], grades: dict[str, int], k: int = K) -> float:
    def dcg(gs: Sequence[int]) -> float:
        return sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(gs[:k]))

    ideal = dcg(sorted(grades.values(), reverse=True))
    return dcg([grades.get(i, 0) for i in ranked]) / ideal if ideal else 0.0


def evaluate(
    ix: SearchIndex,
    docs: Sequence[IndexedDocument],
    queries: Sequence[tuple[str, str]] = QUERIES,
) -> Scores:
    per_query, below, firsts, top1 = [], [], [], 0
    for text, phrase in queries:
        grades = judge(docs, phrase)
        res = ix.search(SearchQuery(text, page_size=DEPTH, highlight=False), EVERYONE)
        ranked = [h.id for h in res.hits]
        per_query.append(ndcg(ranked[:K], grades))
        firsts.append(ranked[0] if ranked else "")
        best = max(grades.values(), default=0)
        top1 += bool(ranked) and best > 0 and grades.get(ranked[0], 0) == best
        rest = {i: g for i, g in grades.items() if g < 3}
        below.append(ndcg([i for i in ranked if grades.get(i) != 3], rest) if rest else 1.0)
    n = len(queries)
    return Scores(sum(per_query) / n, top1 / n, tuple(per_query), sum(below) / n, tuple(firsts))


def corpus(n: int) -> list[IndexedDocument]:
    return list(documents(n))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.search_relevance", description=__doc__)
    parser.add_argument("--docs", type=int, default=2_000)
    parser.add_argument("--es", help="Elasticsearch/OpenSearch URL (default: start osmem)")
    args = parser.parse_args(argv)
    docs = corpus(args.docs)
    judged = [judge(docs, p) for _, p in QUERIES]
    print(
        f"{len(QUERIES)} queries over {len(docs):,} generated documents; judged documents per"
        f" query: median {sorted(len(j) for j in judged)[len(judged) // 2]}, grade 3 in"
        f" {sum(any(g == 3 for g in j.values()) for j in judged)} queries"
    )
    results: dict[str, Scores] = {}
    tantivy = TantivyIndex(None)
    tantivy.upsert(docs)
    tantivy.commit()
    results["tantivy"] = evaluate(tantivy, docs)
    tantivy.subject_phrases = False
    results["tantivy, no subject bonus"] = evaluate(tantivy, docs)
    tantivy.adjacency = tantivy.global_idf = tantivy.exact_words = False
    before = evaluate(tantivy, docs)  # the ranking options of issue 18 switched off
    from tests.fixtures.osmem import osmem_server  # only when no --es: pytest comes with it

    with contextlib.ExitStack() as stack:
        url = args.es or stack.enter_context(osmem_server())
        es = ElasticIndex(url, index=f"relevance-{uuid.uuid4().hex[:8]}")
        stack.callback(es.drop)
        started = time.perf_counter()
        es.upsert(docs)
        es.commit()
        print(f"(Elasticsearch indexed in {time.perf_counter() - started:.1f} s)")
        results["elasticsearch"] = evaluate(es, docs)
    results["tantivy, none of issue 18's options"] = before
    print(f"{'engine':<36} {'nDCG@10':>8} {'top-1':>7} {'below the subject':>18}")
    for name, s in results.items():
        print(f"{name:<36} {s.ndcg:8.3f} {s.top1:7.1%} {s.body_ndcg:18.3f}")
    a, b = results["tantivy"], results["elasticsearch"]
    gap = abs(a.ndcg - b.ndcg)
    print(
        f"{'difference tantivy - elasticsearch':<36} {a.ndcg - b.ndcg:+8.3f}"
        f" {a.top1 - b.top1:+7.1%} {a.body_ndcg - b.body_ndcg:+18.3f}"
        f"   (goal: within {GOAL_GAP} nDCG@10: {'OK' if gap <= GOAL_GAP else 'MISSED'})"
    )
    same = sum(x == y for x, y in zip(a.firsts, b.firsts, strict=True))
    print(f"the same first hit on both engines: {same} of {len(QUERIES)} queries")
    worst = sorted(zip(a.per_query, b.per_query, QUERIES, strict=True))[:5]
    print("lowest nDCG (tantivy, elasticsearch, query):")
    for x, y, (text, _) in worst:
        print(f"  {x:.3f} {y:.3f}  {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A deterministic generator of Vietnamese administrative documents, for benchmarks and tests.

`documents(n, seed)` streams `IndexedDocument`s (nothing held in memory): types from Nghị
định 30/2020 (Quyết định, Công văn, Tờ trình, Kế hoạch, Báo cáo, Thông báo…), subjects such
as "Về việc triển khai cải cách hành chính năm 2026", agencies with identifier codes, signers
with Vietnamese names, numbers and notations (123/QĐ-UBND, 28/2018/QĐ-TTg) and ~3 KB bodies
that cite other documents. The same (n, seed) always yields the same documents.

    python -m bench.corpus [--docs N]     # prints the generation rate and a sample
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

from services.search.index.base import IndexedDocument

DOC_TYPES = (
    ("QĐ", "Quyết định", 20),
    ("CV", "Công văn", 30),
    ("TTr", "Tờ trình", 8),
    ("KH", "Kế hoạch", 12),
    ("BC", "Báo cáo", 12),
    ("TB", "Thông báo", 10),
    ("CT", "Chỉ thị", 3),
    ("NQ", "Nghị quyết", 3),
    ("GM", "Giấy mời", 2),
)
TYPE_LABELS = {code: name for code, name, _ in DOC_TYPES}

_PROVINCE = "H30"
_DEPARTMENTS = (
    ("000.00.00." + _PROVINCE, "UBND", "Ủy ban nhân dân tỉnh"),
    ("000.00.01." + _PROVINCE, "VP", "Văn phòng Ủy ban nhân dân tỉnh"),
    ("000.00.02." + _PROVINCE, "SNV", "Sở Nội vụ"),
    ("000.00.03." + _PROVINCE, "STC", "Sở Tài chính"),
    ("000.00.04." + _PROVINCE, "SXD", "Sở Xây dựng"),
    ("000.00.05." + _PROVINCE, "SGDĐT", "Sở Giáo dục và Đào tạo"),
    ("000.00.06." + _PROVINCE, "SYT", "Sở Y tế"),
    ("000.00.07." + _PROVINCE, "SNNMT", "Sở Nông nghiệp và Môi trường"),
    ("000.00.08." + _PROVINCE, "SKHCN", "Sở Khoa học và Công nghệ"),
    ("000.00.09." + _PROVINCE, "SCT", "Sở Công Thương"),
    ("000.00.10." + _PROVINCE, "STP", "Sở Tư pháp"),
    ("000.00.11." + _PROVINCE, "SVHTTDL", "Sở Văn hóa, Thể thao và Du lịch"),
    ("000.00.12." + _PROVINCE, "CAT", "Công an tỉnh"),
    ("000.00.13." + _PROVINCE, "TTr", "Thanh tra tỉnh"),
)
_COMMUNES = tuple(
    (f"000.{i:02d}.20.{_PROVINCE}", "UBND", f"Ủy ban nhân dân {kind} {name}")
    for i, (kind, name) in enumerate(
        [
            ("phường", "Đông Hà"), ("phường", "Nam Đông Hà"), ("xã", "Cam Lộ"),
            ("xã", "Gio Linh"), ("xã", "Hải Lăng"), ("xã", "Triệu Phong"), ("xã", "Vĩnh Linh"),
            ("xã", "Hướng Hóa"), ("xã", "Đakrông"), ("đặc khu", "Cồn Cỏ"), ("phường", "Quảng Trị"),
            ("xã", "Cửa Tùng"), ("xã", "Khe Sanh"), ("xã", "Lao Bảo"), ("xã", "Đắk Lắk"),
            ("xã", "Bến Quan"),
        ],
        start=1,
    )
)  # fmt: skip
AGENCIES = (*_DEPARTMENTS, *_COMMUNES)
AGENCY_CODES = tuple(a[0] for a in AGENCIES)

_SURNAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng",
             "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")  # fmt: skip
_MIDDLE = ("Văn", "Thị", "Đức", "Minh", "Quang", "Thanh", "Ngọc", "Hữu", "Công", "Thị Thu")
_GIVEN = ("An", "Bình", "Cường", "Dũng", "Đạt", "Giang", "Hà", "Hải", "Hạnh", "Hùng", "Hương",
          "Khánh", "Lan", "Long", "Mai", "Nam", "Nga", "Phong", "Quân", "Sơn", "Tâm", "Thảo",
          "Trung", "Tuấn", "Việt", "Yến", "Đông", "Lộc")  # fmt: skip

_ACTIONS = ("triển khai", "tăng cường", "đẩy mạnh", "tổ chức thực hiện", "kiện toàn",
            "hướng dẫn thực hiện", "phê duyệt", "ban hành", "sửa đổi, bổ sung", "rà soát",
            "kiểm tra", "tổng kết", "sơ kết", "đánh giá")  # fmt: skip
_TOPICS = ("cải cách hành chính", "chuyển đổi số", "xây dựng chính quyền điện tử",
           "công tác phòng, chống thiên tai", "an toàn thông tin mạng", "thu ngân sách nhà nước",
           "giải quyết thủ tục hành chính", "đầu tư công", "bảo vệ môi trường",
           "phòng, chống tham nhũng, tiêu cực", "đào tạo, bồi dưỡng cán bộ, công chức",
           "xây dựng nông thôn mới", "giảm nghèo bền vững", "quản lý đất đai",
           "phát triển du lịch", "chăm sóc sức khỏe nhân dân", "phổ cập giáo dục",
           "sắp xếp đơn vị hành chính cấp xã", "dịch vụ công trực tuyến toàn trình",
           "số hóa hồ sơ, kết quả giải quyết thủ tục hành chính", "kho dữ liệu dùng chung",
           "Đề án 06 về phát triển dữ liệu dân cư", "an toàn giao thông đường bộ")  # fmt: skip
_SUBJECTS = (
    "Về việc {a} {t} năm {y}",
    "Về việc {a} {t}",
    "Kế hoạch {t} giai đoạn {y}-{y2}",
    "Báo cáo kết quả {t} {p} năm {y}",
    "V/v {a} {t} trên địa bàn {place}",
    "Quy định về {t} trên địa bàn tỉnh",
    "Về việc giao chỉ tiêu {t} năm {y}",
    "Thông báo kết luận của Chủ tịch Ủy ban nhân dân tỉnh về {t}",
)
_PERIODS = ("quý I", "quý II", "quý III", "quý IV", "6 tháng đầu", "9 tháng")
_SENTENCES = (
    "Căn cứ Luật Tổ chức chính quyền địa phương ngày {d} tháng {m} năm {y};",
    "Căn cứ {kind} số {num} của {who} về {t};",
    "Xét đề nghị của Giám đốc {agency} tại Tờ trình số {n}/TTr-{short} ngày {d}/{m}/{y}.",
    "Thực hiện chỉ đạo của {who} về việc {a} {t}, {agency} đề nghị các cơ quan, đơn "
    "vị khẩn trương triển khai.",
    "Giao {agency} chủ trì, phối hợp với các sở, ban, ngành và Ủy ban nhân dân các "
    "xã, phường tổ chức thực hiện.",
    "Thời gian hoàn thành trước ngày {d} tháng {m} năm {y}; kết quả báo cáo về Ủy "
    "ban nhân dân tỉnh qua Văn phòng.",
    "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc, đề nghị phản ánh kịp "
    "thời về {agency} để tổng hợp, báo cáo.",
    "Kinh phí thực hiện từ nguồn ngân sách nhà nước được giao trong dự toán năm {y} "
    "và các nguồn hợp pháp khác.",
    "Tỷ lệ hồ sơ giải quyết đúng hạn đạt {pct}%, tăng {pct2}% so với cùng kỳ năm trước.",
    "Đến nay đã có {n} thủ tục hành chính được cung cấp dịch vụ công trực tuyến toàn "
    "trình trên Cổng Dịch vụ công quốc gia.",
    "Chánh Văn phòng Ủy ban nhân dân tỉnh, Giám đốc các sở, Thủ trưởng các cơ quan, "
    "đơn vị chịu trách nhiệm thi hành Quyết định này.",
    "Quyết định này có hiệu lực thi hành kể từ ngày ký.",
    "Tăng cường {t}, bảo đảm đúng tiến độ, chất lượng và hiệu quả; kiên quyết xử lý "
    "trách nhiệm người đứng đầu.",
    "Các đơn vị rà soát, cập nhật dữ liệu lên hệ thống quản lý văn bản và điều hành, "
    "bảo đảm liên thông bốn cấp.",
    "Ủy ban nhân dân xã {place} phối hợp với Công an xã {place} kiểm tra, đôn đốc việc {a} {t}.",
    "Đường giao thông nông thôn được cứng hóa đạt {pct}%, góp phần hoàn thành tiêu "
    "chí nông thôn mới.",
)
_LEGAL_ISSUERS = (("QĐ-TTg", "Thủ tướng Chính phủ"), ("NĐ-CP", "Chính phủ"),
                  ("TT-BTC", "Bộ Tài chính"), ("TT-BNV", "Bộ Nội vụ"),
                  ("TT-BTTTT", "Bộ Thông tin và Truyền thông"))  # fmt: skip
STATUSES = ("issued", "sent", "arrived", "accepted", "assigned", "in_progress", "done")


def signer_names() -> list[str]:
    rng = random.Random(7)
    return [
        f"{rng.choice(_SURNAMES)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}" for _ in range(300)
    ]


def _sentence_pool(rng: random.Random, size: int) -> list[str]:
    pool = []
    for _ in range(size):
        kind, who = rng.choice(_LEGAL_ISSUERS)
        y = rng.randint(2015, 2026)
        agency = rng.choice(AGENCIES)
        pool.append(
            rng.choice(_SENTENCES).format(
                d=rng.randint(1, 28),
                m=rng.randint(1, 12),
                y=y,
                kind=rng.choice(("Quyết định", "Nghị định", "Thông tư", "Chỉ thị")),
                num=f"{rng.randint(1, 200)}/{y}/{kind}",
                who=who,
                t=rng.choice(_TOPICS),
                a=rng.choice(_ACTIONS),
                agency=agency[2],
                short=agency[1],
                n=rng.randint(1, 999),
                pct=rng.randint(60, 99),
                pct2=rng.randint(1, 15),
                place=rng.choice(AGENCIES[14:])[2].split(" ", 4)[-1],
            )
        )
    return pool


def documents(n: int, seed: int = 2026, start: int = 0) -> Iterator[IndexedDocument]:
    """Documents start..n-1, streamed; each depends only on (seed, its number)."""
    pool_rng = random.Random(seed)
    pool = _sentence_pool(pool_rng, 4000)
    signers = signer_names()
    types = [t for t in DOC_TYPES for _ in range(t[2])]
    base_day = date(2019, 1, 1)
    for i in range(start, n):
        rng = random.Random(seed * 1_000_003 + i)
        code, _, _ = rng.choice(types)
        agency_code, short, _ = AGENCIES[rng.randrange(len(AGENCIES))]
        issued = base_day + timedelta(days=rng.randrange(8 * 365))
        y = issued.year
        if code in ("QĐ", "NQ", "CT") and rng.random() < 0.2:
            notation = f"{i % 997 + 1}/{y}/{code}-{short}"
        else:
            notation = f"{i % 1999 + 1}/{code}-{short}"
        subject = rng.choice(_SUBJECTS).format(
            a=rng.choice(_ACTIONS), t=rng.choice(_TOPICS), y=y, y2=y + 5,
            p=rng.choice(_PERIODS), place=rng.choice(AGENCIES[14:])[2].split(" ", 4)[-1],
        )  # fmt: skip
        body = " ".join(rng.choices(pool, k=26))
        incoming = rng.random() < 0.4
        recipients = tuple(rng.sample(AGENCY_CODES, rng.randint(1, 4)))
        roll = rng.random()
        yield IndexedDocument(
            id=f"doc-{i:08d}",
            number_notation=notation,
            subject=subject,
            summary=subject + ". " + pool[rng.randrange(len(pool))],
            body_text=body,
            doc_type=code,
            agency_code=agency_code,
            sender_agency_code=rng.choice(AGENCY_CODES) if incoming else agency_code,
            recipient_agency_codes=recipients,
            signer_name=signers[rng.randrange(len(signers))],
            status=rng.choice(STATUSES),
            confidentiality="normal"
            if roll < 0.97
            else ("confidential" if roll < 0.99 else "secret"),
            public=rng.random() < 0.2,
            issued_date=issued,
            updated_time=datetime(y, issued.month, issued.day, tzinfo=UTC)
            + timedelta(seconds=rng.randrange(30 * 86400)),
            version=1,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corpus", description=__doc__)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="10,000 documents")
    args = parser.parse_args(argv)
    n = 10_000 if args.quick else args.docs
    started = time.perf_counter()
    size = sum(len(d.body_text.encode()) for d in documents(n))
    took = time.perf_counter() - started
    print(f"generated {n:,} documents in {took:.2f} s: {n / took:,.0f} docs/s, "
          f"average body {size / n / 1024:.1f} KB")  # fmt: skip
    sample = next(documents(1))
    print(f"sample: {sample.number_notation} | {sample.subject} | {sample.signer_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

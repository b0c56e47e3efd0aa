"""A deterministic generator of Vietnamese administrative documents, for benchmarks and tests.

`documents(n, seed)` streams `IndexedDocument`s (nothing held in memory): types from Nghị
định 30/2020 (Quyết định, Công văn, Tờ trình, Kế hoạch, Báo cáo, Thông báo…), agencies with
identifier codes, signers with Vietnamese names, numbers and notations (123/QĐ-UBND,
28/2018/QĐ-TTg) and ~2.8 KB bodies. Each document has a main topic drawn Zipf-like from 35
(cải cách hành chính, chuyển đổi số, ngân sách, … thủy sản; weight 1/rank^0.9: the first is
the main topic of ~21 % of documents, the last of ~0.8 %) and a side topic (any of them);
its body is legal grounds citing other documents (laws, decrees with number/year/issuer),
10–22 sentences about its topics built from 16 templates with slot values (key phrases of
the topic, ~2,500 place names made of syllables, named projects, amounts, percentages,
dates, agencies, officials), one sentence of its own and closing lines. Sentences are
formatted into per-topic pools once per seed (~110k distinct sentences), so generation stays
fast. The same (n, seed) always yields the same documents.

    python -m bench.corpus [--docs N]     # prints the generation rate and a sample
"""

from __future__ import annotations

import argparse
import functools
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

_PROVINCE = "H27"
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
            "kiểm tra", "tổng kết", "sơ kết", "đánh giá", "chấn chỉnh", "đôn đốc",
            "nâng cao hiệu quả", "tháo gỡ khó khăn trong")  # fmt: skip
# Topics as a province writes about them, most frequent first: (name, key phrases used in
# the body). A document's main topic is drawn Zipf-like (weight 1/rank^0.9), so "cải cách
# hành chính" is common and "thủy sản" rare, as in a real archive.
_TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cải cách hành chính", ("cải cách hành chính", "thủ tục hành chính", "bộ phận một cửa",
     "chỉ số cải cách hành chính", "kỷ luật, kỷ cương hành chính",
     "cắt giảm, đơn giản hóa thủ tục hành chính")),
    ("chuyển đổi số", ("chuyển đổi số", "nền tảng số", "dữ liệu số", "hạ tầng số",
     "kỹ năng số cho người dân", "chữ ký số")),
    ("thu, chi ngân sách nhà nước", ("thu ngân sách nhà nước", "dự toán ngân sách",
     "chi thường xuyên", "quyết toán ngân sách", "nguồn vốn ngân sách tỉnh", "tiết kiệm chi")),
    ("đầu tư công", ("giải ngân vốn đầu tư công", "kế hoạch đầu tư công trung hạn",
     "chủ đầu tư", "công trình trọng điểm", "tiến độ giải ngân")),
    ("công tác văn thư, lưu trữ", ("văn thư", "tài liệu lưu trữ",
     "hệ thống quản lý văn bản và điều hành", "văn bản điện tử", "chữ ký số chuyên dùng")),
    ("quản lý đất đai", ("giấy chứng nhận quyền sử dụng đất", "bồi thường, hỗ trợ, tái định cư",
     "giải phóng mặt bằng", "bảng giá đất", "thu hồi đất", "quy hoạch sử dụng đất")),
    ("tổ chức bộ máy, biên chế", ("sắp xếp tổ chức bộ máy", "tinh giản biên chế",
     "vị trí việc làm", "bổ nhiệm cán bộ", "thi tuyển công chức")),
    ("xây dựng nông thôn mới", ("xây dựng nông thôn mới", "tiêu chí nông thôn mới",
     "xã nông thôn mới nâng cao", "chương trình Mỗi xã một sản phẩm",
     "đường giao thông nông thôn")),
    ("giáo dục và đào tạo", ("năm học mới", "cơ sở vật chất trường học", "học sinh",
     "đội ngũ giáo viên", "kỳ thi tốt nghiệp trung học phổ thông", "phổ cập giáo dục")),
    ("y tế, chăm sóc sức khỏe nhân dân", ("bảo hiểm y tế", "trạm y tế xã", "tiêm chủng mở rộng",
     "phòng, chống dịch bệnh", "khám bệnh, chữa bệnh", "an toàn thực phẩm")),
    ("phòng, chống thiên tai", ("phòng, chống thiên tai", "mưa lũ", "sạt lở đất",
     "tìm kiếm cứu nạn", "di dời dân ra khỏi vùng nguy hiểm", "ứng phó với bão")),
    ("dịch vụ công trực tuyến", ("dịch vụ công trực tuyến toàn trình",
     "Cổng Dịch vụ công quốc gia", "hồ sơ trực tuyến", "thanh toán trực tuyến phí, lệ phí")),
    ("phòng, chống tham nhũng, tiêu cực", ("kê khai tài sản, thu nhập", "kết luận thanh tra",
     "kiến nghị thu hồi", "kiểm soát xung đột lợi ích", "tiếp công dân")),
    ("Đề án 06", ("Đề án 06", "cơ sở dữ liệu quốc gia về dân cư", "định danh điện tử",
     "thẻ căn cước", "ứng dụng VNeID")),
    ("bảo vệ môi trường", ("chất thải rắn sinh hoạt", "ô nhiễm môi trường",
     "quan trắc môi trường", "đánh giá tác động môi trường", "xử lý nước thải")),
    ("chính sách xã hội", ("người có công với cách mạng", "bảo trợ xã hội", "trợ cấp hằng tháng",
     "nhà tình nghĩa", "chi trả chế độ chính sách")),
    ("giảm nghèo bền vững", ("hộ nghèo", "hộ cận nghèo", "hỗ trợ sinh kế",
     "xóa nhà tạm, nhà dột nát", "chương trình mục tiêu quốc gia giảm nghèo bền vững")),
    ("số hóa hồ sơ", ("số hóa hồ sơ, kết quả giải quyết thủ tục hành chính",
     "kho dữ liệu dùng chung", "lưu trữ điện tử", "tái sử dụng dữ liệu đã số hóa")),
    ("nông nghiệp", ("sản xuất vụ Đông Xuân", "chăn nuôi", "dịch tả lợn châu Phi",
     "giống cây trồng", "công trình thủy lợi", "chuyển đổi cơ cấu cây trồng")),
    ("an toàn giao thông", ("tai nạn giao thông", "vi phạm nồng độ cồn", "tuần tra, kiểm soát",
     "hành lang an toàn đường bộ")),
    ("quốc phòng, an ninh", ("tuyển chọn và gọi công dân nhập ngũ", "dân quân tự vệ",
     "diễn tập khu vực phòng thủ", "an ninh trật tự")),
    ("xây dựng và phát triển đô thị", ("quy hoạch chung đô thị", "giấy phép xây dựng",
     "nhà ở xã hội", "chất lượng công trình xây dựng", "hạ tầng kỹ thuật đô thị")),
    ("lao động, việc làm", ("giải quyết việc làm", "người lao động đi làm việc ở nước ngoài",
     "bảo hiểm thất nghiệp", "an toàn, vệ sinh lao động")),
    ("thi đua, khen thưởng", ("Bằng khen của Chủ tịch Ủy ban nhân dân tỉnh",
     "danh hiệu Chiến sĩ thi đua cơ sở", "Cờ thi đua", "Tập thể lao động xuất sắc")),
    ("tư pháp", ("phổ biến, giáo dục pháp luật", "đăng ký hộ tịch",
     "kiểm tra văn bản quy phạm pháp luật", "trợ giúp pháp lý", "xử lý vi phạm hành chính")),
    ("an toàn thông tin mạng", ("an toàn thông tin mạng",
     "bảo đảm an toàn hệ thống thông tin theo cấp độ",
     "mã độc", "giám sát an toàn thông tin", "diễn tập ứng cứu sự cố")),
    ("cải thiện môi trường kinh doanh", ("chỉ số năng lực cạnh tranh cấp tỉnh",
     "hỗ trợ doanh nghiệp", "thu hút đầu tư", "hộ kinh doanh")),
    ("phát triển du lịch", ("khách du lịch", "điểm đến an toàn", "lễ hội truyền thống",
     "di tích lịch sử", "sản phẩm du lịch")),
    ("giao thông vận tải", ("tuyến đường tỉnh", "bảo trì đường bộ", "vận tải hành khách",
     "đăng kiểm phương tiện")),
    ("công thương", ("bình ổn thị trường hàng hóa", "cụm công nghiệp", "xúc tiến thương mại",
     "hàng giả, hàng kém chất lượng", "cung ứng điện")),
    ("văn hóa, thể thao", ("đại hội thể dục thể thao", "thiết chế văn hóa cơ sở",
     "di sản văn hóa", "xây dựng đời sống văn hóa")),
    ("khoa học và công nghệ", ("nhiệm vụ khoa học và công nghệ", "sở hữu trí tuệ",
     "đổi mới sáng tạo", "tiêu chuẩn, đo lường, chất lượng")),
    ("lâm nghiệp", ("bảo vệ và phát triển rừng", "phòng cháy, chữa cháy rừng", "trồng rừng",
     "chi trả dịch vụ môi trường rừng")),
    ("công tác dân tộc, tôn giáo", ("đồng bào dân tộc thiểu số", "người có uy tín",
     "cơ sở tôn giáo", "vùng đồng bào dân tộc thiểu số và miền núi")),
    ("thủy sản", ("khai thác hải sản", "chống khai thác bất hợp pháp, không báo cáo",
     "tàu cá", "nuôi trồng thủy sản")),
)  # fmt: skip
_SUBJECTS = (
    "Về việc {a} {t} năm {y}",
    "Về việc {a} {k}",
    "Kế hoạch {k} giai đoạn {y}-{y2}",
    "Báo cáo kết quả {t} {p} năm {y}",
    "V/v {a} {k} trên địa bàn {place}",
    "Quy định về {k} trên địa bàn tỉnh",
    "Về việc giao chỉ tiêu {k} năm {y}",
    "Thông báo kết luận của Chủ tịch Ủy ban nhân dân tỉnh về {t}",
    "V/v phê duyệt dự án {project}",
    "Về việc bố trí kinh phí {k} năm {y}",
    "V/v góp ý dự thảo văn bản về {k}",
    "Giấy mời họp về {t}",
)
_PERIODS = ("quý I", "quý II", "quý III", "quý IV", "6 tháng đầu", "9 tháng")
# Sentences about the document's topic: {k}, {k2} are its key phrases.
_TOPIC_SENTENCES = (
    "Tiếp tục {a} {k}, bảo đảm đúng tiến độ, chất lượng và hiệu quả.",
    "Kết quả {k} {p} năm {y} đạt {pct}% kế hoạch, tăng {pct2}% so với cùng kỳ năm trước.",
    "Giao {agency} chủ trì, phối hợp với {agency2} tham mưu Ủy ban nhân dân tỉnh về {k}.",
    "Trên địa bàn {place} có {n} trường hợp liên quan đến {k}, trong đó {n2} trường hợp đã "
    "được xử lý dứt điểm.",
    "Tổng kinh phí thực hiện {k} là {amount} đồng, từ nguồn {fund}.",
    "Một số địa phương còn chậm {k}, chưa quan tâm đúng mức đến {k2}.",
    "Đề nghị các cơ quan, đơn vị tập trung {a} {k} gắn với {k2}.",
    "Ủy ban nhân dân {place} báo cáo tình hình {k} về {agency} trước ngày {d}/{m}/{y}.",
    "Dự án {project} được bố trí {amount} đồng trong kế hoạch năm {y}.",
    "Đoàn kiểm tra của {agency} đã làm việc tại {place} về {k} và {k2}.",
    "Nhìn chung, công tác {t} đã có chuyển biến tích cực, nhất là {k}.",
    "Tồn tại, hạn chế: {k2} chưa đáp ứng yêu cầu; việc {a} {k} ở một số nơi còn hình thức.",
    "Phấn đấu đến năm {y2}, {k} đạt {pct}%, {k2} cơ bản hoàn thành.",
    "Ông {person}, {role} {agency}, được giao theo dõi, đôn đốc việc {k}.",
    "Từ đầu năm đến nay đã tiếp nhận {n} hồ sơ về {k}, giải quyết đúng hạn {pct}%.",
    "Tại cuộc họp ngày {d}/{m}/{y}, các đại biểu thống nhất {a} {k} tại {place}.",
)
# The frame of an administrative document: legal grounds, proposals, closing lines.
_LAWS = ("Luật Tổ chức chính quyền địa phương", "Luật Ban hành văn bản quy phạm pháp luật",
         "Luật Ngân sách nhà nước", "Luật Đầu tư công", "Luật Đất đai", "Luật Cán bộ, công chức",
         "Luật Giao dịch điện tử", "Luật Bảo vệ môi trường", "Luật Phòng, chống tham nhũng",
         "Luật Thi đua, khen thưởng", "Luật Lưu trữ", "Luật Xây dựng", "Luật Giáo dục",
         "Luật Phòng, chống thiên tai", "Luật An toàn thông tin mạng", "Luật Dữ liệu",
         "Luật Khám bệnh, chữa bệnh", "Luật Lâm nghiệp", "Luật Thủy sản",
         "Luật Tiếp cận thông tin")  # fmt: skip
_FRAME = (
    "Căn cứ {law} ngày {d} tháng {m} năm {y};",
    "Căn cứ {kind} số {num} ngày {d}/{m}/{y} của {who} về {k};",
    "Căn cứ {kind} số {num} ngày {d}/{m}/{y} của {who} về {k};",
    "Xét đề nghị của {role} {agency} tại Tờ trình số {n}/TTr-{short} ngày {d}/{m}/{y}.",
)
_CLOSING = (
    "Chánh Văn phòng Ủy ban nhân dân tỉnh, Giám đốc các sở, Thủ trưởng các cơ quan, đơn vị "
    "và Chủ tịch Ủy ban nhân dân các xã, phường chịu trách nhiệm thi hành Quyết định này.",
    "Quyết định này có hiệu lực thi hành kể từ ngày ký.",
    "Trong quá trình thực hiện, nếu có khó khăn, vướng mắc, đề nghị phản ánh kịp thời về "
    "{agency} để tổng hợp, báo cáo Ủy ban nhân dân tỉnh xem xét, giải quyết.",
    "Các đơn vị cập nhật kết quả lên hệ thống quản lý văn bản và điều hành, bảo đảm liên "
    "thông văn bản điện tử.",
    "Đề nghị các cơ quan, đơn vị quan tâm phối hợp thực hiện./.",
    "Nơi nhận: Như trên; Thường trực Tỉnh ủy; Chủ tịch, các Phó Chủ tịch UBND tỉnh; "
    "Lưu: VT, {short}.",
)
_LEGAL_ISSUERS = (("QĐ-TTg", "Thủ tướng Chính phủ"), ("NĐ-CP", "Chính phủ"),
                  ("TT-BTC", "Bộ Tài chính"), ("TT-BNV", "Bộ Nội vụ"),
                  ("TT-BTTTT", "Bộ Thông tin và Truyền thông"), ("CT-TTg", "Thủ tướng Chính phủ"),
                  ("NQ-HĐND", "Hội đồng nhân dân tỉnh"),
                  ("TT-BNNMT", "Bộ Nông nghiệp và Môi trường"),
                  ("TT-BYT", "Bộ Y tế"), ("TT-BGDĐT", "Bộ Giáo dục và Đào tạo"))  # fmt: skip
_ROLES = ("Giám đốc", "Phó Giám đốc", "Chánh Văn phòng", "Trưởng phòng", "Chủ tịch",
          "Phó Chủ tịch", "Chánh Thanh tra", "Chuyên viên")  # fmt: skip
_FUNDS = ("ngân sách tỉnh", "ngân sách trung ương hỗ trợ", "ngân sách xã",
          "vốn sự nghiệp", "xã hội hóa", "vốn vay ODA",
          "cải cách tiền lương")  # fmt: skip
# Syllables of place names: thousands of villages, wards and communes, as in a province.
_SYLLABLES = ("An", "Bình", "Hòa", "Phú", "Tân", "Thạnh", "Long", "Mỹ", "Hưng", "Lộc",
              "Thuận", "Phước", "Đông", "Tây", "Nam", "Bắc", "Trung", "Sơn", "Hải", "Giang",
              "Lâm", "Quang", "Thành", "Vĩnh", "Xuân", "Hiệp", "Đức", "Tiến", "Minh", "Khánh",
              "Phong", "Thượng", "Hạ", "Cam", "Gio", "Triệu", "Hướng", "Linh", "Lăng", "Hà",
              "Mai", "Cát", "Kim", "Ngọc", "Thái", "Hồng", "Đại", "Tường", "Yên",
              "Quý")  # fmt: skip
_PLACE_KINDS = ("xã", "xã", "xã", "phường", "thôn", "thôn", "bản", "khu phố", "đặc khu")
_PROJECT_KINDS = ("xây dựng cầu", "nâng cấp tuyến đường", "kè chống sạt lở bờ sông",
                  "xây dựng Trường Tiểu học", "nâng cấp Trạm y tế", "sửa chữa hồ chứa nước",
                  "xây dựng khu tái định cư", "cải tạo chợ", "xây dựng nhà văn hóa thôn",
                  "cấp nước sinh hoạt tập trung", "chỉnh trang đô thị")  # fmt: skip
STATUSES = ("issued", "sent", "arrived", "accepted", "assigned", "in_progress", "done")
# Sentences pooled per topic (formatted once per seed); each document draws from its
# topics' pools and adds a few sentences of its own (amounts, dates, citations).
_POOL_PER_TOPIC = 3000
_FRAME_POOL = 30_000
_TOPIC_WEIGHTS = tuple(1 / (rank + 1) ** 0.9 for rank in range(len(_TOPICS)))


def signer_names() -> list[str]:
    rng = random.Random(7)
    return [
        f"{rng.choice(_SURNAMES)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}" for _ in range(300)
    ]


def _place(rng: random.Random) -> str:
    return f"{rng.choice(_PLACE_KINDS)} {rng.choice(_SYLLABLES)} {rng.choice(_SYLLABLES)}"


def _amount(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.randint(50, 9_999):,} triệu".replace(",", ".")
    return f"{rng.randint(1, 900):,},{rng.randint(0, 999):03d} tỷ".replace(",", ".", 1)


def _slots(rng: random.Random, topic: int, people: list[str]) -> dict[str, object]:
    name, keys = _TOPICS[topic]
    y = rng.randint(2015, 2026)
    kind_code, who = rng.choice(_LEGAL_ISSUERS)
    agency = rng.choice(AGENCIES)
    return {
        "t": name, "k": rng.choice(keys), "k2": rng.choice(keys), "a": rng.choice(_ACTIONS),
        "y": y, "y2": y + rng.choice((1, 3, 5)), "d": rng.randint(1, 28), "m": rng.randint(1, 12),
        "p": rng.choice(_PERIODS), "pct": rng.randint(40, 100), "pct2": rng.randint(1, 25),
        "n": rng.randint(2, 4_000), "n2": rng.randint(1, 500), "agency": agency[2],
        "agency2": rng.choice(AGENCIES)[2], "short": agency[1], "place": _place(rng),
        "amount": _amount(rng), "fund": rng.choice(_FUNDS), "role": rng.choice(_ROLES),
        "person": rng.choice(people), "law": rng.choice(_LAWS),
        "kind": rng.choice(("Quyết định", "Nghị định", "Thông tư", "Chỉ thị", "Nghị quyết")),
        "num": f"{rng.randint(1, 300)}/{y}/{kind_code}", "who": who,
        "project": " ".join((rng.choice(_PROJECT_KINDS), rng.choice(_SYLLABLES),
                             rng.choice(_SYLLABLES))),
    }  # fmt: skip


@functools.lru_cache(maxsize=4)
def _pools(seed: int) -> tuple[list[list[str]], list[str], list[str]]:
    """Per-topic sentence pools and the legal-frame pool, the same for one seed."""
    rng = random.Random(seed)
    people = signer_names()
    topic_pools = [
        [
            rng.choice(_TOPIC_SENTENCES).format(**_slots(rng, t, people))
            for _ in range(_POOL_PER_TOPIC)
        ]
        for t in range(len(_TOPICS))
    ]
    frame = [
        rng.choice(_FRAME).format(**_slots(rng, rng.randrange(len(_TOPICS)), people))
        for _ in range(_FRAME_POOL)
    ]
    closing = [rng.choice(_CLOSING).format(**_slots(rng, 0, people)) for _ in range(2_000)]
    return topic_pools, frame, closing


def documents(n: int, seed: int = 2026, start: int = 0) -> Iterator[IndexedDocument]:
    """Documents start..n-1, streamed; each depends only on (seed, its number)."""
    topic_pools, frame, closing = _pools(seed)
    signers = signer_names()
    types = [t for t in DOC_TYPES for _ in range(t[2])]
    topics = range(len(_TOPICS))
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
        main = rng.choices(topics, _TOPIC_WEIGHTS)[0]
        second = rng.randrange(len(_TOPICS))  # a side topic, any of them
        slots = _slots(rng, main, signers)
        slots["y"], slots["y2"] = y, y + 5
        subject = rng.choice(_SUBJECTS).format(**slots)
        # 3 KB on average: legal grounds, 10–22 sentences on the topic (a fifth on a second
        # one), a sentence of its own, closing lines.
        parts = rng.choices(frame, k=rng.randint(1, 4)) if code in ("QĐ", "NQ", "CT", "KH") else []
        k = rng.randint(10, 22)
        k2 = k // 5
        parts += rng.choices(topic_pools[main], k=k - k2)
        parts += rng.choices(topic_pools[second], k=k2)
        parts.append(rng.choice(_TOPIC_SENTENCES).format(**slots))
        parts += rng.choices(closing, k=rng.randint(1, 3))
        body = " ".join(parts)
        incoming = rng.random() < 0.4
        recipients = tuple(rng.sample(AGENCY_CODES, rng.randint(1, 4)))
        roll = rng.random()
        yield IndexedDocument(
            id=f"doc-{i:08d}",
            number_notation=notation,
            subject=subject,
            summary=subject + ". " + rng.choice(topic_pools[main]),
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

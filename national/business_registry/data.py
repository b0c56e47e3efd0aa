"""Deterministic enterprises; their legal representatives are adults of the population mock
generated with the same seed, so a demo can verify the representative too."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from lgsp.connectors.identifiers import make_tax_code
from national._common import geo
from national.population.data import REFERENCE_DATE, Citizen
from national.population.data import generate as generate_population

DEFAULT_ENTERPRISES = 2_000
KINDS = (
    ("Công ty TNHH", "Công ty trách nhiệm hữu hạn một thành viên", 40),
    ("Công ty TNHH", "Công ty trách nhiệm hữu hạn hai thành viên trở lên", 20),
    ("Công ty Cổ phần", "Công ty cổ phần", 30),
    ("Doanh nghiệp tư nhân", "Doanh nghiệp tư nhân", 9),
    ("Công ty Hợp danh", "Công ty hợp danh", 1),
)
SECTORS = (
    ("Thương mại", "4690", "Bán buôn tổng hợp"),
    ("Xây dựng", "4101", "Xây dựng nhà để ở"),
    ("Vận tải", "4933", "Vận tải hàng hóa bằng đường bộ"),
    ("Công nghệ Thông tin", "6201", "Lập trình máy vi tính"),
    ("Thực phẩm", "1079", "Sản xuất thực phẩm khác chưa được phân vào đâu"),
    ("Du lịch", "7911", "Đại lý du lịch"),
    ("Nông nghiệp", "0113", "Trồng cây lấy củ có chất bột"),
    ("Thủy sản", "0321", "Nuôi trồng thủy sản biển"),
    ("Dệt may", "1410", "May trang phục (trừ trang phục từ da lông thú)"),
    ("Cơ khí", "2592", "Gia công cơ khí; xử lý và tráng phủ kim loại"),
    ("Dược phẩm", "4772", "Bán lẻ thuốc, dụng cụ y tế trong các cửa hàng chuyên doanh"),
    ("Tư vấn", "7020", "Hoạt động tư vấn quản lý"),
)
BRANDS = (
    "Hoàng Long",
    "Minh Phát",
    "Thành Công",
    "Phú Quý",
    "An Khang",
    "Việt Tiến",
    "Sao Mai",
    "Đại Dương",
    "Hòa Phát",
    "Trường Sơn",
    "Bình Minh",
    "Thái Bình Dương",
    "Hồng Hà",
    "Tân Tiến",
    "Kim Ngân",
    "Nam Việt",
    "Đông Á",
    "Phương Nam",
    "Hưng Thịnh",
    "Cửu Long",
    "Ánh Dương",
    "Gia Huy",
    "Thiên Phúc",
    "Vạn Xuân",
    "Lam Sơn",
    "Bạch Đằng",
    "Sông Hàn",
)
STATUSES = (
    ("Đang hoạt động", 88),
    ("Tạm ngừng kinh doanh", 7),
    ("Đã giải thể", 5),
)
# Leading digits of tax codes as the tax authority hands them out in several provinces.
TAX_PREFIXES = ("01", "02", "03", "04", "07", "23", "28", "31", "36", "47", "58", "80")


@dataclass(frozen=True)
class Enterprise:
    tax_code: str  # "0101234567", or "0101234567-001" for a branch
    name: str
    kind: str
    status: str
    founded: date
    address: str
    province: str
    representative: Citizen
    business_code: str  # VSIC code of the main line
    business_line: str
    charter_capital_vnd: int
    parent_tax_code: str | None = None

    def public(self) -> dict[str, object]:
        rep = self.representative
        return {
            "tax_code": self.tax_code,
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "founded_on": self.founded.isoformat(),
            "address": self.address,
            "province": self.province,
            "legal_representative": {"full_name": rep.full_name, "id_number": rep.id_number},
            "main_business": {"code": self.business_code, "name": self.business_line},
            "charter_capital_vnd": self.charter_capital_vnd,
            "parent_tax_code": self.parent_tax_code,
            "is_branch": self.parent_tax_code is not None,
        }


def generate(seed: int, count: int = DEFAULT_ENTERPRISES) -> dict[str, Enterprise]:
    rng = random.Random(f"business_registry:{seed}")
    communes = geo.communes(seed)
    adults = [
        c
        for c in generate_population(seed).citizens.values()
        if REFERENCE_DATE.year - c.birth_date.year >= 22
    ]
    kinds = tuple(k for k in KINDS for _ in range(k[2]))
    statuses = tuple(s for s, w in STATUSES for _ in range(w))
    result: dict[str, Enterprise] = {}
    names: set[str] = set()
    parents = 0
    while parents < count:
        prefix = f"{rng.choice(TAX_PREFIXES)}{rng.randint(0, 9_999_999):07d}"
        tax_code = make_tax_code(prefix)
        if tax_code is None or tax_code in result:
            continue
        short, kind, _ = rng.choice(kinds)
        sector, vsic, line = rng.choice(SECTORS)
        name = f"{short} {sector} {rng.choice(BRANDS)}"
        if name in names:
            name = f"{name} {rng.choice(geo.PROVINCE_NAMES).removeprefix('Thành phố ')}"
        if name in names:
            continue
        names.add(name)
        province = rng.choice(geo.PROVINCE_NAMES)
        founded = date(1995, 1, 1) + timedelta(days=rng.randint(0, 30 * 365))
        capital = rng.choice((500, 1_000, 2_000, 5_000, 10_000, 50_000)) * 1_000_000
        ent = Enterprise(
            tax_code=tax_code,
            name=name,
            kind=kind,
            status=rng.choice(statuses),
            founded=founded,
            address=geo.street_address(rng, rng.choice(communes[province])),
            province=province,
            representative=rng.choice(adults),
            business_code=vsic,
            business_line=line,
            charter_capital_vnd=capital,
        )
        result[tax_code] = ent
        parents += 1
        if short != "Doanh nghiệp tư nhân" and rng.random() < 0.1:
            for n in range(1, rng.randint(1, 3) + 1):
                where = rng.choice(geo.PROVINCE_NAMES)
                branch = f"{tax_code}-{n:03d}"
                result[branch] = Enterprise(
                    tax_code=branch,
                    name=f"Chi nhánh {name} tại {where}",
                    kind="Chi nhánh",
                    status=ent.status,
                    founded=founded + timedelta(days=rng.randint(30, 2000)),
                    address=geo.street_address(rng, rng.choice(communes[where])),
                    province=where,
                    representative=rng.choice(adults),
                    business_code=vsic,
                    business_line=line,
                    charter_capital_vnd=0,
                    parent_tax_code=tax_code,
                )
    return result

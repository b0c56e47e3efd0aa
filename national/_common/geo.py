"""Provinces as of 1 July 2025 (34, Nghị quyết 202/2025/QH15) and a deterministic commune list.

CCCD numbers keep the pre-2025 province code of birth registration, so each old code maps to
the province that absorbed it. Commune names are generated from common Vietnamese place
names: plausible, not the official list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lgsp.connectors.identifiers import CCCD_PROVINCE_CODES

# Current province -> the pre-2025 provinces (by CCCD code) merged into it; the first is the
# one whose name the province kept.
PROVINCES_2025: dict[str, tuple[str, ...]] = {
    "Thành phố Hà Nội": ("001",),
    "Thành phố Huế": ("046",),
    "Lai Châu": ("012",),
    "Điện Biên": ("011",),
    "Sơn La": ("014",),
    "Lạng Sơn": ("020",),
    "Quảng Ninh": ("022",),
    "Thanh Hóa": ("038",),
    "Nghệ An": ("040",),
    "Hà Tĩnh": ("042",),
    "Cao Bằng": ("004",),
    "Tuyên Quang": ("008", "002"),
    "Lào Cai": ("010", "015"),
    "Thái Nguyên": ("019", "006"),
    "Phú Thọ": ("025", "026", "017"),
    "Bắc Ninh": ("027", "024"),
    "Hưng Yên": ("033", "034"),
    "Thành phố Hải Phòng": ("031", "030"),
    "Ninh Bình": ("037", "035", "036"),
    "Quảng Trị": ("045", "044"),
    "Thành phố Đà Nẵng": ("048", "049"),
    "Quảng Ngãi": ("051", "062"),
    "Gia Lai": ("064", "052"),
    "Khánh Hòa": ("056", "058"),
    "Lâm Đồng": ("068", "067", "060"),
    "Đắk Lắk": ("066", "054"),
    "Thành phố Hồ Chí Minh": ("079", "074", "077"),
    "Đồng Nai": ("075", "070"),
    "Tây Ninh": ("072", "080"),
    "Thành phố Cần Thơ": ("092", "094", "093"),
    "Vĩnh Long": ("086", "083", "084"),
    "Đồng Tháp": ("087", "082"),
    "Cà Mau": ("096", "095"),
    "An Giang": ("089", "091"),
}
assert len(PROVINCES_2025) == 34
assert sorted(c for cs in PROVINCES_2025.values() for c in cs) == sorted(CCCD_PROVINCE_CODES)

PROVINCE_NAMES: tuple[str, ...] = tuple(PROVINCES_2025)
CURRENT_PROVINCE_OF_CODE: dict[str, str] = {
    code: province for province, codes in PROVINCES_2025.items() for code in codes
}


def province_agency_code(province: str) -> str:
    """The identifier code of a current province's people's committee, from the platform's
    one agency directory (lgsp/national_directory.json), the same code identity uses."""
    from lgsp.national_directory import national_directory

    return national_directory().province_code(province)


_PLACE_WORDS = (
    "An",
    "Bình",
    "Hòa",
    "Phú",
    "Tân",
    "Thạnh",
    "Long",
    "Phước",
    "Hưng",
    "Thuận",
    "Mỹ",
    "Đông",
    "Tây",
    "Nam",
    "Bắc",
    "Trung",
    "Quang",
    "Minh",
    "Hải",
    "Sơn",
    "Thanh",
    "Vĩnh",
    "Lộc",
    "Thịnh",
    "Hiệp",
    "Đức",
    "Nghĩa",
    "Phong",
    "Xuân",
    "Hồng",
    "Kim",
    "Ngọc",
)
_STREETS = (
    "Trần Hưng Đạo",
    "Lê Lợi",
    "Nguyễn Huệ",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Quang Trung",
    "Nguyễn Trãi",
    "Lê Duẩn",
    "Điện Biên Phủ",
    "Hùng Vương",
    "Phan Chu Trinh",
    "Bà Triệu",
    "Nguyễn Du",
    "Trần Phú",
    "Võ Thị Sáu",
    "Hoàng Diệu",
    "Lê Thánh Tông",
    "Nguyễn Văn Cừ",
)


@dataclass(frozen=True)
class Commune:
    name: str  # "Phường Tân Phong", "Xã Hòa An"
    province: str


def communes(seed: int, per_province: int = 12) -> dict[str, tuple[Commune, ...]]:
    """A stable list of communes (wards and communes) for each of the 34 provinces."""
    rng = random.Random(f"communes:{seed}")
    result: dict[str, tuple[Commune, ...]] = {}
    for province in PROVINCE_NAMES:
        names: list[str] = []
        while len(names) < per_province:
            kind = "Phường" if len(names) < per_province // 2 else "Xã"
            name = f"{kind} {rng.choice(_PLACE_WORDS)} {rng.choice(_PLACE_WORDS)}"
            if name.split()[1] != name.split()[2] and name not in names:
                names.append(name)
        result[province] = tuple(Commune(n, province) for n in names)
    return result


def street_address(rng: random.Random, commune: Commune) -> str:
    """ "Số 12 đường Trần Phú, Phường Tân Phong, Thành phố Hà Nội" or a hamlet for a xã."""
    if commune.name.startswith("Phường"):
        first = f"Số {rng.randint(1, 399)} đường {rng.choice(_STREETS)}"
    else:
        first = f"Thôn {rng.choice(_PLACE_WORDS)} {rng.randint(1, 9)}"
    return f"{first}, {commune.name}, {commune.province}"

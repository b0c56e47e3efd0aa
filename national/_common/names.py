"""Vietnamese personal names, drawn with a caller's seeded Random."""

from __future__ import annotations

import random

# Weighted roughly like real frequencies: Nguyễn is about a third of the population.
SURNAMES = (
    ("Nguyễn", 30),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Vũ", 4),
    ("Võ", 4),
    ("Đặng", 2),
    ("Bùi", 2),
    ("Đỗ", 2),
    ("Hồ", 2),
    ("Ngô", 2),
    ("Dương", 1),
    ("Lý", 1),
    ("Đinh", 1),
    ("Trương", 1),
    ("Lương", 1),
    ("Mai", 1),
)
MIDDLE_MALE = ("Văn", "Hữu", "Đức", "Minh", "Quốc", "Thanh", "Công", "Gia", "Xuân", "Ngọc")
MIDDLE_FEMALE = ("Thị", "Ngọc", "Thu", "Thanh", "Minh", "Phương", "Hồng", "Kim", "Bảo", "Mỹ")
GIVEN_MALE = (
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Đạt",
    "Hải",
    "Hiếu",
    "Hùng",
    "Huy",
    "Khánh",
    "Khoa",
    "Long",
    "Minh",
    "Nam",
    "Nghĩa",
    "Phong",
    "Phúc",
    "Quân",
    "Sơn",
    "Tài",
    "Thắng",
    "Thành",
    "Tiến",
    "Trung",
    "Tuấn",
    "Việt",
    "Vinh",
    "Duy",
    "Hoàng",
    "Lâm",
)
GIVEN_FEMALE = (
    "Anh",
    "Châu",
    "Chi",
    "Dung",
    "Giang",
    "Hà",
    "Hạnh",
    "Hằng",
    "Hoa",
    "Hương",
    "Lan",
    "Linh",
    "Loan",
    "Mai",
    "My",
    "Ngân",
    "Nhung",
    "Oanh",
    "Phương",
    "Quyên",
    "Thảo",
    "Trang",
    "Trinh",
    "Tuyết",
    "Uyên",
    "Vân",
    "Yến",
    "Thủy",
    "Hiền",
    "Ngọc",
)
_SURNAME_POOL = tuple(name for name, weight in SURNAMES for _ in range(weight))


def surname(rng: random.Random) -> str:
    return rng.choice(_SURNAME_POOL)


def full_name(rng: random.Random, male: bool, family: str | None = None) -> str:
    middle = rng.choice(MIDDLE_MALE if male else MIDDLE_FEMALE)
    given = rng.choice(GIVEN_MALE if male else GIVEN_FEMALE)
    return f"{family or surname(rng)} {middle} {given}"

"""Vietnamese identifier rules shared by the connectors and the national mocks.

- Citizen identity number (số định danh cá nhân / CCCD), 12 digits (Thông tư 59/2021/TT-BCA):
  3-digit code of the province where the birth was registered, 1 digit for century and sex
  (0/1: 1900s male/female, 2/3: 2000s, 4/5: 2100s, 6/7: 2200s, 8/9: 2300s), 2 digits of the
  birth year, 6 random digits. The province codes are the 63 pre-2025 codes: numbers already
  issued stay valid after the 2025 merger, so every one of them must still be accepted.
- Tax code (mã số thuế): 10 digits whose last is a check digit over the first nine
  (weights 31, 29, 23, 19, 17, 13, 7, 5, 3; check = 10 - sum mod 11, and a prefix giving 10
  is never issued). A branch or dependent unit has the parent's 10 digits + "-" + 3 digits
  (written "0101234567-001"); that hyphenated form is the one the APIs take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# Province codes of Thông tư 07/2016/TT-BCA (as used in CCCD numbers), pre-2025 provinces.
CCCD_PROVINCE_CODES: dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "Thành phố Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

_CCCD = re.compile(r"\d{12}")
_TAX10 = re.compile(r"\d{10}")
_TAX_BRANCH = re.compile(r"(\d{10})-(\d{3})")
TAX_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


class IdentifierError(ValueError):
    """The identifier is malformed; str() says why (in English, for logs and 400 details)."""


@dataclass(frozen=True)
class CitizenIdParts:
    province_code: str
    male: bool
    birth_year: int


def century_sex_digit(birth_year: int, male: bool) -> int:
    century_index = birth_year // 100 - 19  # 1900s -> 0, 2000s -> 1, …
    if not 0 <= century_index <= 4:
        raise IdentifierError(f"birth year {birth_year} outside 1900-2399")
    return century_index * 2 + (0 if male else 1)


def parse_citizen_id(value: str, *, today: date | None = None) -> CitizenIdParts:
    """Check a 12-digit identity number against the CCCD rule; IdentifierError says why."""
    if not isinstance(value, str) or not _CCCD.fullmatch(value):
        raise IdentifierError("must be exactly 12 digits")
    province = value[:3]
    if province not in CCCD_PROVINCE_CODES:
        raise IdentifierError(f"unknown province code {province}")
    digit = int(value[3])
    year = 1900 + 100 * (digit // 2) + int(value[4:6])
    if year > (today or date.today()).year:
        raise IdentifierError(f"century/sex digit and year give birth year {year}, in the future")
    return CitizenIdParts(province, digit % 2 == 0, year)


def make_citizen_id(province_code: str, birth_year: int, male: bool, serial: int) -> str:
    if province_code not in CCCD_PROVINCE_CODES:
        raise IdentifierError(f"unknown province code {province_code}")
    if not 0 <= serial <= 999_999:
        raise IdentifierError("serial must have at most 6 digits")
    digit = century_sex_digit(birth_year, male)
    return f"{province_code}{digit}{birth_year % 100:02d}{serial:06d}"


def tax_check_digit(first_nine: str) -> int | None:
    """The check digit of a 9-digit tax code prefix, or None if no code has that prefix."""
    total = sum(int(d) * w for d, w in zip(first_nine, TAX_WEIGHTS, strict=True))
    check = 10 - total % 11
    return None if check == 10 else check


def parse_tax_code(value: str) -> tuple[str, str | None]:
    """(10-digit code, branch or None) of a tax code written "0101234567" or "0101234567-001"."""
    if not isinstance(value, str):
        raise IdentifierError("must be a string")
    branch: str | None = None
    m = _TAX_BRANCH.fullmatch(value)
    if m:
        value, branch = m.group(1), m.group(2)
        if branch == "000":
            raise IdentifierError("branch suffix 000 is never issued")
    elif re.fullmatch(r"\d{13}", value):
        raise IdentifierError("13-digit codes are written with a hyphen: NNNNNNNNNN-NNN")
    elif not _TAX10.fullmatch(value):
        raise IdentifierError("must be 10 digits, or 10 digits + '-' + 3 digits for a branch")
    check = tax_check_digit(value[:9])
    if check is None or check != int(value[9]):
        raise IdentifierError("check digit does not match")
    return value, branch


def make_tax_code(first_nine: str) -> str | None:
    check = tax_check_digit(first_nine)
    return None if check is None else f"{first_nine}{check}"

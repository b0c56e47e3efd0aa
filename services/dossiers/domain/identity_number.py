"""The personal identification number (số định danh cá nhân, printed on the căn cước card):
12 digits, structured by Nghị định 137/2015/NĐ-CP art. 7 and Thông tư 59/2021/TT-BCA art. 7:

    PPP  G  YY  NNNNNN
    │    │  │   └ random
    │    │  └ last two digits of the year of birth
    │    └ century and sex: 0/1 1900s male/female, 2/3 2000s, 4/5 2100s, 6/7 2200s, 8/9 2300s
    └ code of the province of birth registration (001 Hà Nội … 096 Cà Mau)

Only the form is checked here; whether the person exists is the population database's answer
(through the gateway: adapters/national.py).
"""

from __future__ import annotations

from datetime import date

from services.dossiers.domain.errors import InvalidField

# The 63 province codes of the pre-2025 provinces: numbers issued since 2016 carry them, and
# the 2025 merger did not renumber anybody.
PROVINCE_CODES = frozenset(
    "001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034 "
    "035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 "
    "070 072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096".split()
)


def check_identity_number(number: str, birth_date: date | None = None, *, field: str) -> str:
    """`number` if well-formed (and, with `birth_date`, consistent with it); else InvalidField
    naming `field`."""
    if len(number) != 12 or not number.isascii() or not number.isdigit():
        raise InvalidField(field, "must be the 12 digits of a personal identification number")
    if number[:3] not in PROVINCE_CODES:
        raise InvalidField(field, f"{number[:3]} is not a province code")
    if birth_date is not None:
        century = 1900 + 100 * (int(number[3]) // 2)
        year = century + int(number[4:6])
        if year != birth_date.year:
            raise InvalidField(field, f"says born in {year}, the birth date says {birth_date.year}")
    return number

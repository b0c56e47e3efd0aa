"""Deterministic citizens and households: same seed, same people, on every machine.

Ages are counted at REFERENCE_DATE (not today), so the data never drifts between runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from lgsp.connectors.identifiers import make_citizen_id
from national._common import geo, names

REFERENCE_DATE = date(2025, 7, 1)
DEFAULT_CITIZENS = 10_000
ETHNICITIES = (
    ("Kinh", 85),
    ("Tày", 2),
    ("Thái", 2),
    ("Mường", 2),
    ("Khmer", 2),
    ("Hoa", 1),
    ("Nùng", 1),
    ("H'Mông", 1),
    ("Dao", 1),
    ("Ê Đê", 1),
    ("Chăm", 1),
    ("Gia Rai", 1),
)
_ETHNIC_POOL = tuple(n for n, w in ETHNICITIES for _ in range(w))


@dataclass(frozen=True)
class Citizen:
    id_number: str
    full_name: str
    birth_date: date
    male: bool
    ethnicity: str
    hometown: str  # quê quán
    permanent_address: str  # nơi thường trú
    household_id: str
    relation: str  # quan hệ với chủ hộ

    def public(self) -> dict[str, object]:
        return {
            "id_number": self.id_number,
            "full_name": self.full_name,
            "birth_date": self.birth_date.isoformat(),
            "sex": "Nam" if self.male else "Nữ",
            "ethnicity": self.ethnicity,
            "nationality": "Việt Nam",
            "hometown": self.hometown,
            "permanent_address": self.permanent_address,
            "household_id": self.household_id,
            "relation_to_head": self.relation,
        }


@dataclass
class Household:
    household_id: str
    address: str
    province: str
    members: list[Citizen] = field(default_factory=list)


@dataclass
class Population:
    citizens: dict[str, Citizen]
    households: dict[str, Household]


def generate(seed: int, count: int = DEFAULT_CITIZENS) -> Population:
    rng = random.Random(f"population:{seed}")
    communes = geo.communes(seed)
    used_ids: set[str] = set()
    citizens: dict[str, Citizen] = {}
    households: dict[str, Household] = {}

    def birth(age_lo: int, age_hi: int) -> date:
        age = rng.randint(age_lo, age_hi)
        start = date(REFERENCE_DATE.year - age - 1, REFERENCE_DATE.month, REFERENCE_DATE.day)
        return start + timedelta(days=rng.randint(1, 364))

    def new_id(home_codes: tuple[str, ...], born: date, male: bool) -> str:
        # Most people's birth was registered in their current province; some moved.
        codes = home_codes if rng.random() < 0.85 else tuple(geo.CURRENT_PROVINCE_OF_CODE)
        while True:
            candidate = make_citizen_id(rng.choice(codes), born.year, male, rng.randint(0, 999_999))
            if candidate not in used_ids:
                used_ids.add(candidate)
                return candidate

    seq = 0
    while len(citizens) < count:
        seq += 1
        province = rng.choice(geo.PROVINCE_NAMES)
        codes = geo.PROVINCES_2025[province]
        commune = rng.choice(communes[province])
        address = geo.street_address(rng, commune)
        hometown = f"{rng.choice(communes[province]).name}, {province}"
        hh_id = f"{geo.PROVINCE_NAMES.index(province) + 1:02d}{seq:08d}"
        household = Household(hh_id, address, province)
        family = names.surname(rng)
        ethnicity = rng.choice(_ETHNIC_POOL)

        def add(
            born: date,
            male: bool,
            relation: str,
            surname: str | None = None,
            hh: Household = household,
            town: str = hometown,
            eth: str = ethnicity,
            home_codes: tuple[str, ...] = codes,
        ) -> Citizen:
            person = Citizen(
                id_number=new_id(home_codes, born, male),
                full_name=names.full_name(rng, male, surname),
                birth_date=born,
                male=male,
                ethnicity=eth,
                hometown=town,
                permanent_address=hh.address,
                household_id=hh.household_id,
                relation=relation,
            )
            hh.members.append(person)
            citizens[person.id_number] = person
            return person

        head_male = rng.random() < 0.7
        head = add(birth(22, 80), head_male, "Chủ hộ", family)
        head_age = REFERENCE_DATE.year - head.birth_date.year
        father_surname = family if head_male else None
        if head_age >= 24 and rng.random() < 0.8:
            spouse_age = max(18, min(90, head_age + rng.randint(-6, 4)))
            spouse = add(
                birth(spouse_age, spouse_age), not head_male, "Vợ" if head_male else "Chồng"
            )
            if not head_male:
                father_surname = spouse.full_name.split()[0]
        youngest_parent = min(head_age, 45)
        for _ in range(rng.choice((0, 1, 1, 2, 2, 2, 3))):
            if youngest_parent < 21:
                break
            kid_male = rng.random() < 0.51
            add(birth(0, youngest_parent - 20), kid_male, "Con", father_surname)
        if head_age <= 60 and rng.random() < 0.2:
            parent_male = rng.random() < 0.4
            parent_age = head_age + rng.randint(22, 32)
            add(
                birth(parent_age, parent_age),
                parent_male,
                "Cha" if parent_male else "Mẹ",
                family if parent_male and head_male else None,
            )
        households[hh_id] = household
    return Population(citizens, households)

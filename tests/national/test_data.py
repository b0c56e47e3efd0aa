"""Identifier rules and the deterministic data the mocks serve (and docs/national.md cites)."""

from __future__ import annotations

from datetime import date

import pytest

from lgsp.connectors.identifiers import (
    IdentifierError,
    make_citizen_id,
    make_tax_code,
    parse_citizen_id,
    parse_tax_code,
)
from national._common import geo
from national.business_registry.data import generate as generate_enterprises
from national.population.data import generate as generate_population


def test_citizen_id_rule() -> None:
    parts = parse_citizen_id("026093660531")
    assert (parts.province_code, parts.male, parts.birth_year) == ("026", True, 1993)
    assert parse_citizen_id("001305000123").birth_year == 2005  # 3: female, 2000s
    assert not parse_citizen_id("001305000123").male
    assert make_citizen_id("079", 2012, False, 42) == "079312000042"
    for bad, why in [
        ("02609366053", "12 digits"),
        ("02609366053a", "12 digits"),
        ("003093660531", "province code 003"),  # 003 was never a province code
        ("001499000001", "future"),  # 4 = 2100s
    ]:
        with pytest.raises(IdentifierError, match=why):
            parse_citizen_id(bad, today=date(2025, 7, 1))


def test_tax_code_rule() -> None:
    assert parse_tax_code("0100109106") == ("0100109106", None)  # a real, published code
    assert parse_tax_code("0100109106-001") == ("0100109106", "001")
    assert make_tax_code("010010910") == "0100109106"
    with pytest.raises(IdentifierError, match="check digit"):
        parse_tax_code("0100109107")
    with pytest.raises(IdentifierError, match="hyphen"):
        parse_tax_code("0100109106001")
    with pytest.raises(IdentifierError, match="000"):
        parse_tax_code("0100109106-000")
    with pytest.raises(IdentifierError):
        parse_tax_code("01001091")


def test_provinces_are_the_34_of_2025() -> None:
    assert len(geo.PROVINCE_NAMES) == 34
    assert geo.CURRENT_PROVINCE_OF_CODE["030"] == "Thành phố Hải Phòng"  # Hải Dương merged


def test_population_is_deterministic_and_valid() -> None:
    first, second = generate_population(2025), generate_population(2025)
    assert list(first.citizens) == list(second.citizens)
    assert len(first.citizens) >= 10_000
    assert generate_population(7).citizens.keys() != first.citizens.keys()
    provinces = set()
    for citizen in first.citizens.values():
        parts = parse_citizen_id(citizen.id_number, today=date(2025, 7, 1))
        assert parts.birth_year == citizen.birth_date.year
        assert parts.male == citizen.male
        provinces.add(first.households[citizen.household_id].province)
    assert len(provinces) == 34
    # The known records of docs/national.md.
    minh = first.citizens["026093660531"]
    assert (minh.full_name, minh.birth_date.isoformat()) == ("Nguyễn Đức Minh", "1993-08-07")
    household = first.households["1500000001"]
    assert [m.id_number for m in household.members] == [
        "026093660531",
        "026190648954",
        "025215937094",
    ]
    assert household.members[0].relation == "Chủ hộ"


def test_enterprises_are_deterministic_and_valid() -> None:
    enterprises = generate_enterprises(2025)
    assert list(enterprises) == list(generate_enterprises(2025))
    assert sum(1 for e in enterprises.values() if e.parent_tax_code is None) == 2_000
    for code in enterprises:
        parse_tax_code(code)
    assert enterprises["5858229469"].name == "Công ty TNHH Thủy sản Hòa Phát"
    branch = enterprises["4799319980-001"]
    assert branch.parent_tax_code == "4799319980" and branch.name.startswith("Chi nhánh")

"""The one agency directory: identity's demo seed, the document axis mock and the portal mock
read the same codes, and a broken data file fails loudly."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from lgsp.national_directory import DATA_FILE, national_directory, parse
from national._common import geo
from national.document_axis.app import directory as axis_directory
from services.identity.seed import AGENCIES, PROVINCE, officials


def raw() -> dict[str, Any]:
    return dict(json.loads(DATA_FILE.read_text(encoding="utf-8")))


def test_the_34_provinces_and_the_ministries_have_one_code_each() -> None:
    d = national_directory()
    assert len(d.provinces) == 34
    assert sorted(geo.PROVINCE_NAMES) == sorted(
        raw()["provinces"][i]["province"] for i in range(34)
    )
    codes = [e.code for e in d.entries()]
    assert len(codes) == len(set(codes))
    # Verified in public material (docs/national.md): the demo province and the Government
    # Office under their real codes.
    assert d.get("000.00.00.H27") is not None and d.get("000.00.00.H27").name.endswith("Hà Tĩnh")  # type: ignore[union-attr]
    assert d.get("000.00.00.G22").name == "Văn phòng Chính phủ"  # type: ignore[union-attr]
    # A merged province stays, disabled, pointing at the one that absorbed it.
    hau_giang = d.get("000.00.00.H30")
    assert hau_giang is not None and hau_giang.disabled
    assert hau_giang.successor_code == geo.province_agency_code("Thành phố Cần Thơ")
    assert all(not p.disabled for p in d.provinces)


def test_identity_seed_and_axis_mock_name_the_same_agencies() -> None:
    d = national_directory()
    assert PROVINCE == d.demo_province.code == geo.province_agency_code("Hà Tĩnh")
    mailboxes = dict(axis_directory())
    for code, name, *_ in AGENCIES:
        assert mailboxes[code] == name  # the seed's agency is the axis's mailbox
    for province in geo.PROVINCE_NAMES:
        assert geo.province_agency_code(province) in mailboxes
    assert {o["agency_code"] for o in officials()} <= {a[0] for a in AGENCIES}
    # Former bodies have no mailbox: nothing can be sent to a merged province.
    assert all(e.code not in mailboxes for e in d.former)


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (lambda r: r["ministries"].append(dict(r["ministries"][0], name="Bộ khác")), "twice"),
        (lambda r: r["ministries"][0].update(code="000.00.00.g01"), "capital"),
        (lambda r: r["demo_province"]["agencies"][1].update(parent_code="1.2.3"), "unknown"),
        (lambda r: r["demo_province"]["agencies"][1].update(level="huyện"), "level"),
        (lambda r: r["demo_province"]["agencies"].reverse(), "start with"),
    ],
)
def test_a_broken_data_file_fails_loudly(break_it: Any, message: str) -> None:
    broken = copy.deepcopy(raw())
    break_it(broken)
    with pytest.raises(ValueError, match=message):
        parse(broken)

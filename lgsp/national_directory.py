"""The one list of agency identifier codes (mã định danh, QĐ 20/2020/QĐ-TTg) the platform and
its national mocks share, read from national_directory.json beside this module.

It holds the ministries and ministry-level bodies, the people's committees of the 34 provinces
(Nghị quyết 202/2025/QH15), the former bodies merged into them (disabled, with the successor,
so older documents still read), and the demo province's own tree (Hà Tĩnh: its sở, communes and
offices). Identity's demo seed creates the demo tree from it; the document axis and public
service portal mocks open mailboxes and number dossiers from it; so a code names one agency
everywhere. Where each code comes from, and which are verified in public material, is in
docs/national.md ("One agency directory").

    from lgsp.national_directory import national_directory
    d = national_directory()
    d.get("000.00.00.H27").name            # 'Ủy ban nhân dân tỉnh Hà Tĩnh'
    d.province_code("Thành phố Hà Nội")    # the people's committee of a current province
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from lgsp.agency_code import validate_agency_code

__all__ = ["DATA_FILE", "LEVELS", "DirectoryEntry", "NationalDirectory", "national_directory"]

DATA_FILE = Path(__file__).with_name("national_directory.json")
# The levels of identity's AgencyLevel, by name (lgsp.api.identity.v1.AgencyLevel).
LEVELS = ("central", "province", "department", "district", "commune", "unit")


@dataclass(frozen=True)
class DirectoryEntry:
    code: str
    name: str
    short_name: str
    level: str  # one of LEVELS
    parent_code: str = ""
    place_name: str = ""  # printed before a promulgation date: "Hà Tĩnh"
    mail_domain: str = ""  # "" = its parent's
    disabled: bool = False  # merged or dissolved (1 July 2025 and before)
    successor_code: str = ""
    verified: bool = False  # the code is confirmed by public material (see the docs)


class NationalDirectory:
    """The entries of national_directory.json, checked when loaded (a bad or repeated code,
    an unknown level or parent, fails loudly rather than routing a document wrongly)."""

    def __init__(
        self,
        ministries: Sequence[DirectoryEntry],
        provinces: Sequence[DirectoryEntry],
        former: Sequence[DirectoryEntry],
        demo: Sequence[DirectoryEntry],
        province_of_name: dict[str, str],
    ) -> None:
        self.ministries = tuple(ministries)
        self.provinces = tuple(provinces)  # the 34 current people's committees
        self.former = tuple(former)  # provinces merged on 1 July 2025
        self.demo = tuple(demo)  # the demo province's tree, its root first
        self._province_of_name = dict(province_of_name)
        self._by_code: dict[str, DirectoryEntry] = {}
        for entry in (*self.ministries, *self.provinces, *self.former, *self.demo[1:]):
            validate_agency_code(entry.code, "code")
            if entry.code in self._by_code:
                raise ValueError(f"agency code {entry.code} is listed twice")
            if entry.level not in LEVELS:
                raise ValueError(f"agency {entry.code}: unknown level {entry.level!r}")
            self._by_code[entry.code] = entry
        for entry in self.entries():
            for linked in (entry.parent_code, entry.successor_code):
                if linked and linked not in self._by_code:
                    raise ValueError(f"agency {entry.code} names unknown agency {linked}")

    def entries(self) -> Iterable[DirectoryEntry]:
        # The demo province's root is one of the 34: listed once, in `provinces`.
        return self._by_code.values()

    def get(self, code: str) -> DirectoryEntry | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __len__(self) -> int:
        return len(self._by_code)

    @property
    def demo_province(self) -> DirectoryEntry:
        return self.demo[0]

    def province_code(self, province: str) -> str:
        """The people's committee of a current province, by its name as national/_common/geo
        writes it ("Hà Tĩnh", "Thành phố Hà Nội" with its prefix)."""
        try:
            return self._province_of_name[province]
        except KeyError:
            raise KeyError(f"no province named {province!r} in {DATA_FILE.name}") from None

    def mailboxes(self) -> list[DirectoryEntry]:
        """Who has a mailbox at the national document axis: every body still in being
        (ministries, the 34 people's committees, the demo province's agencies)."""
        return [e for e in self.entries() if not e.disabled]


def _entry(raw: dict[str, Any], level: str, **extra: Any) -> DirectoryEntry:
    return DirectoryEntry(
        code=raw["code"],
        name=raw["name"],
        short_name=raw.get("short_name", ""),
        level=raw.get("level", level),
        parent_code=raw.get("parent_code", ""),
        place_name=raw.get("place_name", extra.get("place_name", "")),
        mail_domain=extra.get("mail_domain", ""),
        disabled=bool(raw.get("disabled", False)),
        successor_code=raw.get("successor_code", extra.get("successor_code", "")),
        verified=bool(raw.get("verified", extra.get("verified", False))),
    )


def parse(raw: dict[str, Any]) -> NationalDirectory:
    ministries = [_entry(m, "central") for m in raw["ministries"]]
    provinces: list[DirectoryEntry] = []
    former: list[DirectoryEntry] = []
    by_name: dict[str, str] = {}
    for p in raw["provinces"]:
        provinces.append(_entry(p, "province", place_name=p.get("place_name", "")))
        by_name[p["province"]] = p["code"]
        former += [
            replace(_entry(old, "province", successor_code=p["code"]), disabled=True)
            for old in p.get("merged_from", ())
        ]
    demo_raw = raw["demo_province"]
    domain, place = demo_raw["mail_domain"], demo_raw["place_name"]
    demo = []
    for a in demo_raw["agencies"]:
        sub = a.get("mail_subdomain", "")
        mail = f"{sub}.{domain}" if sub else (domain if not a.get("parent_code") else "")
        demo.append(_entry(a, a["level"], mail_domain=mail, place_name=place))
    if not demo or demo[0].code != demo_raw["province_code"]:
        raise ValueError("demo_province.agencies must start with the province's own code")
    # The 34's entry for the demo province is the demo tree's root (its mail domain).
    listed = {p.code: p for p in provinces}
    if demo[0].code not in listed:
        raise ValueError(f"demo province {demo[0].code} is not one of the provinces")
    demo[0] = replace(demo[0], verified=listed[demo[0].code].verified)
    provinces = [demo[0] if p.code == demo[0].code else p for p in provinces]
    return NationalDirectory(ministries, provinces, former, demo, by_name)


@cache
def national_directory(path: Path = DATA_FILE) -> NationalDirectory:
    """The shared directory (read once per process)."""
    return parse(json.loads(path.read_text(encoding="utf-8")))

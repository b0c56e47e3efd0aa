"""`lgsp admin users list` and `lgsp admin agencies list`: a newcomer finds who to sign in as."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lgsp.cli import main
from services.identity.seed import officials

STP = "000.00.12.H27"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("cli")
    before = os.environ.get("LGSP_PLATFORM_DATA_DIR")
    os.environ["LGSP_PLATFORM_DATA_DIR"] = str(path)
    try:
        assert main(["admin", "seed-demo"]) == 0
        yield path
    finally:
        if before is None:
            del os.environ["LGSP_PLATFORM_DATA_DIR"]
        else:
            os.environ["LGSP_PLATFORM_DATA_DIR"] = before


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["admin", *args]) == 0
    return capsys.readouterr().out


def test_users_list_filters_by_agency_subtree_and_role(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    below_stp = {o["username"] for o in officials() if o["agency_code"].endswith(".12.H27")}
    listed = json.loads(run(capsys, "users", "list", "--agency", STP, "--include-sub", "--json"))
    assert {u["username"] for u in listed} == below_stp
    clerks = json.loads(run(capsys, "users", "list", "--role", "clerk", "--json"))
    expected = {o["username"] for o in officials() if "clerk" in o["roles"]}
    # Client systems' service accounts hold roles too, and are listed as such.
    people = {u["username"] for u in clerks if not u["username"].startswith("service-account-")}
    assert people == expected
    assert all("clerk" in u["roles"].split(",") for u in clerks)
    table = run(capsys, "users", "list", "--agency", STP, "--role", "leader")
    assert table.splitlines()[0].split() == [
        "USERNAME",
        "NAME",
        "AGENCY",
        "ID",
        "POSITION",
        "ROLES",
        "STATUS",
    ]
    assert "identity-demo.json" in table  # where the passwords are
    assert "(no account matches)" in run(capsys, "users", "list", "--agency", "000.00.99.H27")
    assert len(json.loads(run(capsys, "users", "list", "--limit", "3", "--json"))) == 3


def test_agencies_list_finds_by_accent_free_query_and_level(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = json.loads(run(capsys, "agencies", "list", "--query", "tu phap", "--json"))
    assert sorted(a["code"] for a in found) == ["000.00.12.H27", "000.01.12.H27", "000.02.12.H27"]
    communes = json.loads(run(capsys, "agencies", "list", "--level", "commune", "--json"))
    assert {a["level"] for a in communes} == {"commune"} and len(communes) == 4
    below = json.loads(run(capsys, "agencies", "list", "--parent", STP, "--json"))
    assert {a["parent_code"] for a in below} == {STP}


@pytest.mark.parametrize(
    "args",
    [
        ["users", "list", "--role", "sếp"],
        ["users", "list", "--limit", "0"],
        ["users", "list", "--status", "gone"],
        ["agencies", "list", "--level", "huyện"],
        ["users"],
    ],
)
def test_bad_filters_are_refused_by_name(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["admin", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and (args[-2] in err if len(args) > 2 else "COMMAND" in err)
